import assert from "node:assert/strict";
import { planShards, seededShuffle } from "./shards.ts";

const names = Array.from({ length: 50 }, (_, i) => `img-${i}.jpg`);

Deno.test("shards", async (t) => {
  await t.step("each shard has exactly imagesPerNode entries, disjoint when enough images", () => {
    const shards = planShards(names, { nodes: 3, imagesPerNode: 12, seed: 1 });
    assert.equal(shards.length, 3);
    for (const s of shards) assert.equal(s.length, 12);
    const all = shards.flat();
    assert.equal(new Set(all).size, 36, "no image in two shards");
    for (const n of all) assert.ok(names.includes(n));
  });

  await t.step("the same seed gives the same shards; another seed others", () => {
    const a = planShards(names, { nodes: 2, imagesPerNode: 10, seed: 7 });
    const b = planShards(names, { nodes: 2, imagesPerNode: 10, seed: 7 });
    const c = planShards(names, { nodes: 2, imagesPerNode: 10, seed: 8 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  await t.step("wraps around when the train set is smaller than nodes x imagesPerNode", () => {
    const few = names.slice(0, 5);
    const shards = planShards(few, { nodes: 2, imagesPerNode: 4, seed: 3 });
    assert.deepEqual(shards.map((s) => s.length), [4, 4]);
    const order = seededShuffle(few, 3);
    assert.deepEqual(shards[0], order.slice(0, 4));
    assert.deepEqual(shards[1], [order[4], order[0], order[1], order[2]]);
    const one = planShards(few, { nodes: 1, imagesPerNode: 12, seed: 3 });
    assert.equal(one[0].length, 12);
    assert.equal(new Set(one[0]).size, 5, "every image, some more than once");
  });

  await t.step("unset imagesPerNode divides the train set evenly", () => {
    const shards = planShards(names, { nodes: 4, seed: 0 });
    assert.deepEqual(shards.map((s) => s.length), [12, 12, 12, 12]);
    assert.equal(new Set(shards.flat()).size, 48);
    assert.deepEqual(planShards(names.slice(0, 1), { nodes: 3, seed: 0 }).map((s) => s.length), [
      1,
      1,
      1,
    ]);
  });

  await t.step("an empty train split is refused with a reason", () => {
    assert.throws(() => planShards([], { nodes: 1, seed: 0 }), { code: "empty_dataset" });
    assert.throws(() => planShards(names, { nodes: 0, seed: 0 }), { code: "invalid_shards" });
  });
});

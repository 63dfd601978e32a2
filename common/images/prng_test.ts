import assert from "node:assert/strict";
import { Prng, seedFrom } from "./prng.ts";

/** mulberry32 as published by its author (Tommy Ettinger's gist), as an independent oracle. */
function referenceMulberry32(a: number): () => number {
  return () => {
    let t = a += 0x6D2B79F5;
    t = Math.imul(t ^ t >>> 15, t | 1);
    t ^= t + Math.imul(t ^ t >>> 7, t | 61);
    return ((t ^ t >>> 14) >>> 0) / 4294967296;
  };
}

Deno.test("Prng", async (t) => {
  await t.step("matches the reference mulberry32 stream", () => {
    for (const seed of [0, 1, 42, 0xdeadbeef, 4294967295]) {
      const ours = new Prng(seed);
      const ref = referenceMulberry32(seed);
      for (let i = 0; i < 1000; i++) assert.equal(ours.next(), ref(), `seed ${seed} draw ${i}`);
    }
  });

  await t.step("fillUint32 continues the same stream as nextUint32", () => {
    const a = new Prng(7), b = new Prng(7);
    const bulk = a.fillUint32(new Uint32Array(100));
    for (let i = 0; i < 100; i++) assert.equal(bulk[i], b.nextUint32());
    assert.equal(a.nextUint32(), b.nextUint32());
  });

  await t.step("ranges: uniform, inclusive int, chance, normal moments", () => {
    const rng = new Prng(3);
    const seen = new Set<number>();
    let hits = 0, sum = 0, sq = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform(2, 3);
      assert.ok(u >= 2 && u < 3);
      seen.add(rng.int(1, 3));
      if (rng.chance(0.25)) hits++;
      const z = rng.normal();
      sum += z;
      sq += z * z;
    }
    assert.deepEqual([...seen].sort(), [1, 2, 3]);
    assert.ok(Math.abs(hits / n - 0.25) < 0.02, `chance(0.25) fired ${hits / n}`);
    assert.ok(Math.abs(sum / n) < 0.03, `normal mean ${sum / n}`);
    assert.ok(Math.abs(sq / n - 1) < 0.05, `normal variance ${sq / n}`);
  });

  await t.step("seedFrom: stable, 32-bit, sensitive to every part and to boundaries", () => {
    const s = seedFrom("img_1", "default", 0);
    assert.equal(s, seedFrom("img_1", "default", 0));
    assert.ok(Number.isInteger(s) && s >= 0 && s <= 0xffffffff);
    assert.notEqual(s, seedFrom("img_1", "default", 1));
    assert.notEqual(s, seedFrom("img_2", "default", 0));
    assert.notEqual(seedFrom("ab", "c"), seedFrom("a", "bc"));
  });
});

import assert from "node:assert/strict";
import { splitImages, splitOf, splitPoint } from "./split.ts";

const ids = Array.from({ length: 2000 }, (_, i) => `img_${i.toString(16).padStart(20, "0")}`);

Deno.test("split", async (t) => {
  await t.step("an image's side depends on its id only", () => {
    const a = splitImages(ids, 0.2);
    const b = splitImages([...ids].reverse(), 0.2);
    assert.deepEqual(new Set(a.val), new Set(b.val));
    for (const id of ids.slice(0, 50)) assert.equal(splitOf(id, 0.2), splitOf(id, 0.2));
  });

  await t.step("the share of validation images follows the fraction", () => {
    for (const f of [0.1, 0.2, 0.5]) {
      const share = splitImages(ids, f).val.length / ids.length;
      assert.ok(Math.abs(share - f) < 0.04, `fraction ${f}: found ${share}`);
    }
  });

  await t.step("adding images never moves existing ones", () => {
    const small = splitImages(ids.slice(0, 500), 0.2);
    const big = splitImages(ids, 0.2);
    const bigVal = new Set(big.val);
    for (const id of small.val) assert.ok(bigVal.has(id), id);
    for (const id of small.train) assert.ok(!bigVal.has(id), id);
  });

  await t.step("a tiny set still gets one validation and one training image", () => {
    // Pick ids whose points are all above the fraction, so the hash alone gives no val.
    const high = ids.filter((id) => splitPoint(id) > 0.5).slice(0, 3);
    const r = splitImages(high, 0.1);
    assert.equal(r.val.length, 1);
    assert.equal(r.train.length, 2);
    const low = ids.filter((id) => splitPoint(id) < 0.3).slice(0, 3);
    const r2 = splitImages(low, 0.5);
    assert.equal(r2.train.length, 1, "all below the fraction: one is kept for training");
  });

  await t.step("fraction 0 means no validation; out-of-range fractions are refused", () => {
    assert.deepEqual(splitImages(ids.slice(0, 10), 0).val, []);
    assert.throws(() => splitOf("img_a", 1), { code: "invalid_split" });
    assert.throws(() => splitImages(ids, -0.1), { code: "invalid_split" });
  });
});

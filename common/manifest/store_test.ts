import assert from "node:assert/strict";
import { augmentationIdFor, retryDelayMs } from "./store.ts";

Deno.test("retryDelayMs", async (t) => {
  await t.step("doubles from 500 ms and caps at 60 s", () => {
    const mid = () => 0.5;
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelayMs(n, mid)), [500, 1000, 2000, 4000]);
    assert.equal(retryDelayMs(8, mid), 60_000);
    assert.equal(retryDelayMs(50, mid), 60_000);
  });
  await t.step("jitters by ±20 %", () => {
    assert.equal(retryDelayMs(2, () => 0), 800);
    assert.equal(retryDelayMs(2, () => 1), 1200);
  });
});

Deno.test("augmentationIdFor is stable and distinguishes every part", async () => {
  const id = await augmentationIdFor("img_1", "flip", 0, 42);
  assert.match(id, /^aug_[0-9a-f]{20}$/);
  assert.equal(await augmentationIdFor("img_1", "flip", 0, 42), id);
  const others = await Promise.all([
    augmentationIdFor("img_2", "flip", 0, 42),
    augmentationIdFor("img_1", "crop", 0, 42),
    augmentationIdFor("img_1", "flip", 1, 42),
    augmentationIdFor("img_1", "flip", 0, 43),
  ]);
  assert.equal(new Set([id, ...others]).size, 5);
});

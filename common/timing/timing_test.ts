import assert from "node:assert/strict";
import { backoffDelayMs, exponentialDelayMs, sleep } from "./mod.ts";

Deno.test("sleep waits, and returns early without throwing when the signal aborts", async () => {
  let t0 = performance.now();
  await sleep(30);
  assert.ok(performance.now() - t0 >= 25, "waited about 30 ms");
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 10);
  t0 = performance.now();
  await sleep(10_000, ac.signal);
  assert.ok(performance.now() - t0 < 5_000, "returned on abort");
  t0 = performance.now();
  await sleep(10_000, ac.signal); // already aborted
  assert.ok(performance.now() - t0 < 100);
});

Deno.test("backoff doubles from the base up to the cap, with full jitter below it", () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => exponentialDelayMs(n, policy)), [
    100,
    200,
    400,
    800,
    1000,
    1000,
  ]);
  assert.equal(exponentialDelayMs(0, policy), 100);
  assert.equal(backoffDelayMs(3, policy, () => 0), 0);
  assert.equal(backoffDelayMs(3, policy, () => 0.5), 200);
  assert.equal(backoffDelayMs(3, policy, () => 0.999), 399);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelayMs(4, policy);
    assert.ok(d >= 0 && d < 800, `delay ${d} in [0, 800)`);
  }
});

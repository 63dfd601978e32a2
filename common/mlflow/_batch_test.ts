import assert from "node:assert/strict";
import { BATCH_LIMITS, chunkBatch, normalizeBatch } from "./_batch.ts";
import { MlflowError } from "./errors.ts";

Deno.test("normalizeBatch fills defaults and stringifies params", () => {
  const b = normalizeBatch({
    params: { lr: 0.01, n: 10, on: false, s: "x" },
    metrics: [{ key: "loss", value: NaN }, { key: "acc", value: 1, step: 3, timestamp: 5 }],
    tags: { t: "v" },
  }, 1234);
  assert.deepEqual(b.params, [
    { key: "lr", value: "0.01" },
    { key: "n", value: "10" },
    { key: "on", value: "false" },
    { key: "s", value: "x" },
  ]);
  assert.ok(Number.isNaN(b.metrics[0].value));
  assert.deepEqual([b.metrics[0].step, b.metrics[0].timestamp], [0, 1234]);
  assert.deepEqual(b.metrics[1], { key: "acc", value: 1, step: 3, timestamp: 5 });
  assert.deepEqual(b.tags, [{ key: "t", value: "v" }]);
});

Deno.test("normalizeBatch refuses bad input before anything is sent", () => {
  const bad = [
    { metrics: [{ key: "m", value: "1" as unknown as number }] },
    { metrics: [{ key: "m", value: 1, step: 1.5 }] },
    { metrics: [{ key: "", value: 1 }] },
    { params: { p: {} as unknown as string } },
    { tags: { t: 1 as unknown as string } },
  ];
  for (const b of bad) {
    assert.throws(
      () => normalizeBatch(b),
      (e: unknown) => e instanceof MlflowError && e.code === "invalid_argument",
    );
  }
});

Deno.test("chunkBatch respects MLflow's per-request limits and keeps order", () => {
  const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: "v" }));
  const tags = Array.from({ length: 130 }, (_, i) => ({ key: `t${i}`, value: "v" }));
  const metrics = Array.from(
    { length: 2600 },
    (_, i) => ({ key: "m", value: i, step: i, timestamp: 1 }),
  );
  const chunks = chunkBatch({ params, tags, metrics });
  for (const c of chunks) {
    assert.ok(c.params.length <= BATCH_LIMITS.params);
    assert.ok(c.tags.length <= BATCH_LIMITS.tags);
    assert.ok(c.metrics.length <= BATCH_LIMITS.metrics);
    assert.ok(c.params.length + c.tags.length + c.metrics.length <= BATCH_LIMITS.total);
    assert.ok(c.params.length + c.tags.length + c.metrics.length > 0);
  }
  assert.deepEqual(chunks.flatMap((c) => c.params), params);
  assert.deepEqual(chunks.flatMap((c) => c.tags), tags);
  assert.deepEqual(chunks.flatMap((c) => c.metrics), metrics);
  // 2980 entities fit in 3 requests of at most 1000 (params and tags ride along with metrics).
  assert.equal(chunks.length, 3);
  assert.deepEqual(chunkBatch({ params: [], tags: [], metrics: [] }), []);
});

Deno.test("chunkBatch splits by size, even below the count limits", () => {
  const big = "x".repeat(6000);
  const params = Array.from({ length: 100 }, (_, i) => ({ key: `p${i}`, value: big }));
  const tags = Array.from({ length: 100 }, (_, i) => ({ key: `t${i}`, value: big }));
  const chunks = chunkBatch({ params, tags, metrics: [] });
  assert.ok(chunks.length >= 2);
  for (const c of chunks) assert.ok(JSON.stringify(c).length < 1_000_000);
  assert.equal(chunks.flatMap((c) => c.params).length + chunks.flatMap((c) => c.tags).length, 200);
});

import assert from "node:assert/strict";
import {
  effectiveIngestConcurrency,
  ingestDecodeSlots,
  recommendedIngestConcurrency,
} from "./ingest_concurrency.ts";

Deno.test("ingest concurrency: one decode per core, two more items in flight for I/O", () => {
  assert.equal(ingestDecodeSlots(2), 2);
  assert.equal(ingestDecodeSlots(0), 1);
  assert.equal(recommendedIngestConcurrency(2), 4);
  assert.equal(recommendedIngestConcurrency(16), 18);
});

Deno.test("ingest concurrency: an explicit worker.concurrency wins", () => {
  assert.equal(effectiveIngestConcurrency(2, {}, 2), 4);
  assert.equal(effectiveIngestConcurrency(2, { "worker.concurrency": "flag" }, 2), 2);
  assert.equal(effectiveIngestConcurrency(7, { "worker.concurrency": "env" }, 2), 7);
});

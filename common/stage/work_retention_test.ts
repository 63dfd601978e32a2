/**
 * Work retention against a real SQLite manifest: expired done rows go in batches, fresh done,
 * pending and failed rows stay, and `--worker-done-retention-ms` turns it on for `runQueue`.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { loadConfig } from "../config/mod.ts";
import { openSqliteManifest } from "../manifest/sqlite.ts";
import { createStageMetrics } from "../metrics/mod.ts";
import { memoryLog } from "../../tests/support/memory_log.ts";
import { runQueue } from "./run_queue.ts";
import { PRUNE_BATCH, startWorkRetention } from "./work_retention.ts";

const ids = (n: number, p = "i") =>
  Array.from({ length: n }, (_, i) => `${p}-${String(i).padStart(6, "0")}`);

Deno.test("startWorkRetention deletes the queue's expired done rows in batches and logs how many", async () => {
  let t = 1_000_000;
  const store = await openSqliteManifest("sqlite::memory:", { now: () => t });
  await store.migrate();
  try {
    const n = PRUNE_BATCH + 5;
    await store.enqueue("normalize", ids(n));
    for (;;) {
      const claims = await store.claim("normalize", { max: 5000, owner: "w", leaseMs: 60_000 });
      if (claims.length === 0) break;
      await store.completeMany(claims.map((claim) => ({ claim })));
    }
    t += 3_600_000; // an hour later
    await store.enqueue("normalize", ["fresh"]);
    const [c] = await store.claim("normalize", { max: 1, owner: "w", leaseMs: 60_000 });
    await store.complete(c, {});
    await store.enqueue("normalize", ["waiting"]);
    const { log, lines } = memoryLog();
    const r = startWorkRetention({
      manifest: store,
      log,
      queue: "normalize",
      retentionMs: 1_800_000, // 30 minutes: the first n rows are older
      now: () => t,
    });
    assert.equal(await r.first, n, "two batches: PRUNE_BATCH, then 5");
    await r.stop();
    assert.deepEqual((await store.workCounts("normalize")).normalize, {
      pending: 1,
      leased: 0,
      done: 1,
      failed: 0,
    });
    const line = lines.find((l) => l.msg === "work retention: pruned done rows");
    assert.equal(line?.rows, n);
    assert.equal(line?.queue, "normalize");
  } finally {
    await store.close();
  }
});

Deno.test("a failing prune is logged, not thrown: retention never stops the work", async () => {
  const { log, lines } = memoryLog();
  const r = startWorkRetention({
    manifest: { pruneDoneWork: () => Promise.reject(new Error("connection reset")) },
    log,
    queue: "ingest",
    retentionMs: 1000,
  });
  assert.equal(await r.first, 0);
  await r.stop();
  const warn = lines.find((l) => l.msg === "work retention: pruning done rows failed");
  assert.match(String(warn?.error), /connection reset/);
});

Deno.test("--worker-done-retention-ms prunes the queue's old done rows when runQueue starts", async () => {
  let t = 5_000_000;
  const store = await openSqliteManifest("sqlite::memory:", { now: () => t });
  await store.migrate();
  try {
    await store.enqueue("normalize", ids(30, "old"));
    const old = await store.claim("normalize", { max: 30, owner: "w", leaseMs: 60_000 });
    await store.completeMany(old.map((claim) => ({ claim })));
    t += 10_000;
    await store.enqueue("normalize", ids(4, "new"));
    const config = await loadConfig({
      stage: "normalize",
      stageSchema: z.object({}),
      env: {},
      cwd: await Deno.makeTempDir(),
      argv: ["--worker-idle-poll-ms", "20", "--worker-done-retention-ms", "5000"],
    });
    assert.equal(config.worker.doneRetentionMs, 5000);
    const summary = await runQueue(
      {
        name: "normalize",
        manifest: store,
        log: memoryLog().log,
        metrics: createStageMetrics("normalize"),
        worker: config.worker,
      },
      { queue: "normalize", once: true, progress: false, process: () => Promise.resolve({}) },
    );
    assert.equal(summary.done, 4);
    // The 30 done 10 s ago are gone; the 4 just done are younger than 5 s.
    assert.deepEqual(
      (await store.listWork("normalize", undefined, 100)).map((w) => w.itemId),
      ids(4, "new"),
    );
  } finally {
    await store.close();
  }
});

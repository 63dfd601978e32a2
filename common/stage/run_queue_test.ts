import assert from "node:assert/strict";
import { loadConfig } from "../config/mod.ts";
import { SluiceError } from "../errors/mod.ts";
import { openManifest } from "../manifest/mod.ts";
import { createStageMetrics } from "../metrics/mod.ts";
import { z } from "zod";
import { RunGuard } from "./run_guard.ts";
import { runQueue } from "./run_queue.ts";
import { memoryLog } from "../../tests/support/memory_log.ts";

async function worker() {
  const config = await loadConfig({
    stage: "normalize",
    stageSchema: z.object({}),
    env: {},
    cwd: await Deno.makeTempDir(),
    argv: ["--worker-idle-poll-ms", "20", "--worker-concurrency", "2"],
  });
  return config.worker;
}

/** The value of one sample line in the exposition text (0 when absent). */
function sample(text: string, line: string): number {
  const found = text.split("\n").find((l) => l.startsWith(line + " "));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

Deno.test("runQueue drains the queue, counts results, lists failures and refreshes the depth", async () => {
  const manifest = await openManifest("sqlite::memory:");
  try {
    const { log } = memoryLog();
    const metrics = createStageMetrics("normalize");
    await manifest.enqueue("normalize", ["a", "b", "c"]);
    const seen: string[] = [];
    const summary = await runQueue(
      { name: "normalize", manifest, log, metrics, worker: await worker() },
      {
        queue: "normalize",
        once: true,
        progress: false,
        permanentCodes: ["decode_failed"],
        process: (claim) => {
          if (claim.itemId === "b") {
            return Promise.reject(new SluiceError("decode_failed", "b: expected a JPEG"));
          }
          return Promise.resolve({});
        },
        onResult: (claim, result) => seen.push(`${claim.itemId}:${result.outcome}`),
      },
    );
    assert.equal(summary.done, 2);
    assert.equal(summary.failed, 1);
    assert.deepEqual(summary.failures, [
      { itemId: "b", outcome: "failed", reason: "decode_failed", message: "b: expected a JPEG" },
    ]);
    assert.deepEqual(seen.sort(), ["a:done", "b:failed", "c:done"]);
    const text = await metrics.metrics();
    assert.equal(sample(text, 'sluice_normalize_items_total{result="done"}'), 2);
    assert.equal(sample(text, 'sluice_normalize_items_total{result="failed"}'), 1);
    assert.equal(sample(text, 'sluice_normalize_errors_total{reason="decode_failed"}'), 1);
    assert.equal(sample(text, "sluice_normalize_item_duration_seconds_count"), 3);
    // Refreshed after the run: nothing pending, two done, one failed.
    assert.equal(sample(text, 'sluice_normalize_queue_depth{state="pending"}'), 0);
    assert.equal(sample(text, 'sluice_normalize_queue_depth{state="done"}'), 2);
    assert.equal(sample(text, 'sluice_normalize_queue_depth{state="failed"}'), 1);
  } finally {
    await manifest.close();
  }
});

Deno.test("runQueue without result metrics still lists failures; a guard refuses a second run", async () => {
  const manifest = await openManifest("sqlite::memory:");
  try {
    const { log } = memoryLog();
    const metrics = createStageMetrics("train");
    await manifest.enqueue("train", ["r1"]);
    const guard = new RunGuard("train");
    let release!: () => void;
    const stage = { name: "train", manifest, log, metrics, worker: await worker(), guard };
    const first = runQueue(stage, {
      queue: "train",
      once: true,
      progress: false,
      resultMetrics: false,
      process: () => new Promise((r) => (release = () => r())),
    });
    await assert.rejects(
      () => runQueue(stage, { queue: "train", once: true, process: () => Promise.resolve() }),
      (e: unknown) => e instanceof SluiceError && e.code === "already_running",
    );
    while (!release) await new Promise((r) => setTimeout(r, 5));
    release();
    const summary = await first;
    assert.equal(summary.done, 1);
    const text = await metrics.metrics();
    assert.equal(sample(text, 'sluice_train_items_total{result="done"}'), 0);
    assert.equal(sample(text, 'sluice_train_queue_depth{state="done"}'), 1);
  } finally {
    await manifest.close();
  }
});

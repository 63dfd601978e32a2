import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../common/log/mod.ts";
import { FileTracker, type LogBatch } from "../../common/mlflow/mod.ts";
import { TrackerStream } from "./tracker_stream.ts";

async function withTracker(fn: (tracker: FileTracker, runId: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "sluice-stream-"));
  const tracker = new FileTracker({ root: join(dir, "mlruns") });
  try {
    const exp = await tracker.getOrCreateExperiment("stream");
    const run = await tracker.createRun(exp, {});
    await fn(tracker, run.runId);
  } finally {
    await tracker.close();
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("tracker stream", async (t) => {
  await t.step("values show up while the run goes on, not only at the end", async () => {
    await withTracker(async (tracker, runId) => {
      const stream = new TrackerStream(tracker, runId, { flushMs: 30 });
      stream.metric("train_loss", 1.5, 1);
      stream.metric("train_loss", 1.2, 2);
      stream.param("lr", "0.003");
      for (let i = 0; i < 100; i++) {
        if ((await tracker.getMetricHistory(runId, "train_loss")).length === 2) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(
        (await tracker.getMetricHistory(runId, "train_loss")).map((m) => [m.step, m.value]),
        [[1, 1.5], [2, 1.2]],
      );
      assert.equal((await tracker.getRun(runId)).params.lr, "0.003");
      await stream.close();
      assert.throws(() => stream.metric("x", 1, 0), { code: "tracking_closed" });
    });
  });

  await t.step("many values go out in few requests, NaN included", async () => {
    await withTracker(async (tracker, runId) => {
      let calls = 0;
      const counting = {
        logBatch: (id: string, b: LogBatch) => {
          calls++;
          return tracker.logBatch(id, b);
        },
      };
      const stream = new TrackerStream(counting, runId, { flushMs: 60_000, maxBatch: 500 });
      for (let i = 0; i < 1200; i++) stream.metric("m", i === 5 ? NaN : i, i);
      await stream.close();
      const history = await tracker.getMetricHistory(runId, "m");
      assert.equal(history.length, 1200);
      assert.ok(Number.isNaN(history[5].value));
      assert.ok(calls <= 3, `expected at most 3 requests, found ${calls}`);
      assert.equal(stream.stats.metrics, 1200);
    });
  });

  await t.step("a failed send is retried, nothing lost or doubled", async () => {
    await withTracker(async (tracker, runId) => {
      let fail = 1;
      const flaky = {
        logBatch: (id: string, b: LogBatch) => {
          if (fail-- > 0) return Promise.reject(new Error("connection reset"));
          return tracker.logBatch(id, b);
        },
      };
      const lines: string[] = [];
      const log = createLogger({ stage: "train", json: true, sink: (l) => lines.push(l) });
      const stream = new TrackerStream(flaky, runId, { flushMs: 60_000, log });
      stream.metric("a", 1, 1);
      stream.param("p", "x");
      await assert.rejects(stream.flush(), /connection reset/);
      stream.metric("a", 2, 2);
      await stream.close();
      assert.deepEqual((await tracker.getMetricHistory(runId, "a")).map((m) => m.value), [1, 2]);
      assert.equal((await tracker.getRun(runId)).params.p, "x");
      assert.equal(stream.stats.failures, 1);
      assert.ok(lines.some((l) => l.includes("will retry")));
    });
  });

  await t.step("a param logged twice keeps its first value", async () => {
    await withTracker(async (tracker, runId) => {
      const lines: string[] = [];
      const log = createLogger({ stage: "train", json: true, sink: (l) => lines.push(l) });
      const stream = new TrackerStream(tracker, runId, { flushMs: 60_000, log });
      stream.param("seed", "1");
      await stream.flush();
      stream.param("seed", "1");
      stream.param("seed", "2");
      await stream.close();
      assert.equal((await tracker.getRun(runId)).params.seed, "1");
      assert.equal(lines.filter((l) => l.includes("different values")).length, 1);
    });
  });

  await t.step("close reports values that could not be sent", async () => {
    await withTracker(async (_tracker, runId) => {
      const down = { logBatch: () => Promise.reject(new Error("503 Service Unavailable")) };
      const stream = new TrackerStream(down, runId, { flushMs: 60_000 });
      stream.metric("a", 1, 1);
      await assert.rejects(stream.close(), { code: "tracking_failed" });
    });
  });
});

/**
 * The stages' default queue batching through `runQueue`, against a real SQLite manifest: the
 * sizes follow the concurrency, completions go through `completeMany` in groups, and at
 * shutdown the waiting completions are flushed while prefetched claims that never started are
 * released (back to pending, the attempt not counted).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { loadConfig } from "../config/mod.ts";
import { ConfigError } from "../config/errors.ts";
import { type CompletionRequest, type ManifestStore, openManifest } from "../manifest/mod.ts";
import { createStageMetrics } from "../metrics/mod.ts";
import { memoryLog } from "../../tests/support/memory_log.ts";
import { COMPLETION_DELAY_MS, MAX_COMPLETION_GROUP, queueBatching } from "./queue_batching.ts";
import { runQueue } from "./run_queue.ts";

async function workerConfig(concurrency: number, extra: string[] = []) {
  const config = await loadConfig({
    stage: "normalize",
    stageSchema: z.object({}),
    env: {},
    cwd: await Deno.makeTempDir(),
    argv: [
      "--worker-idle-poll-ms",
      "20",
      "--worker-concurrency",
      String(concurrency),
      "--worker-batch-size",
      String(concurrency),
      ...extra,
    ],
  });
  return config.worker;
}

/** The store, with the calls the worker loop makes on it counted. */
function counted(store: ManifestStore) {
  const calls = { complete: 0, completeMany: 0, groups: [] as number[], claim: 0, claimed: 0 };
  const queue = {
    claim: async (...a: Parameters<ManifestStore["claim"]>) => {
      calls.claim++;
      const got = await store.claim(...a);
      calls.claimed += got.length;
      return got;
    },
    renew: store.renew.bind(store),
    fail: store.fail.bind(store),
    release: store.release.bind(store),
    workCounts: store.workCounts.bind(store),
    complete: (...a: Parameters<ManifestStore["complete"]>) => {
      calls.complete++;
      return store.complete(...a);
    },
    completeMany: (requests: CompletionRequest[]) => {
      calls.completeMany++;
      calls.groups.push(requests.length);
      return store.completeMany(requests);
    },
  };
  return { queue, calls };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `img-${String(i).padStart(3, "0")}`);

Deno.test("queueBatching sizes the prefetch buffer and the completion group from the concurrency", () => {
  // A group of one is the one-transaction-per-item path: no batcher in between.
  assert.deepEqual(queueBatching(1), { prefetch: 1 });
  assert.deepEqual(queueBatching(8), {
    prefetch: 8,
    completionBatch: { maxItems: 8, maxDelayMs: COMPLETION_DELAY_MS },
  });
  assert.deepEqual(queueBatching(500).completionBatch?.maxItems, MAX_COMPLETION_GROUP);
  assert.equal(queueBatching(500).prefetch, 500);
});

Deno.test("queueBatching: worker.prefetch, completionGroup and completionDelayMs override the defaults", () => {
  assert.deepEqual(queueBatching(8, { prefetch: 0, completionGroup: 1 }), { prefetch: 0 });
  assert.deepEqual(queueBatching(8, { prefetch: 3, completionGroup: 200, completionDelayMs: 2 }), {
    prefetch: 3,
    completionBatch: { maxItems: 200, maxDelayMs: 2 },
  });
  assert.deepEqual(queueBatching(4, { completionDelayMs: 0 }), {
    prefetch: 4,
    completionBatch: { maxItems: 4, maxDelayMs: 0 },
  });
});

Deno.test("the worker.* batching flags reach the worker loop: --worker-completion-group 1 records each item alone", async () => {
  const store = await openManifest("sqlite::memory:");
  try {
    const { queue, calls } = counted(store);
    await store.enqueue("normalize", ids(12));
    const worker = await workerConfig(4, [
      "--worker-prefetch",
      "0",
      "--worker-completion-group",
      "1",
    ]);
    assert.equal(worker.prefetch, 0);
    assert.equal(worker.completionGroup, 1);
    const summary = await runQueue(
      {
        name: "normalize",
        manifest: queue,
        log: memoryLog().log,
        metrics: createStageMetrics("normalize"),
        worker,
      },
      { queue: "normalize", once: true, progress: false, process: () => Promise.resolve({}) },
    );
    assert.equal(summary.done, 12);
    assert.equal(calls.complete, 12, "one complete per item");
    assert.equal(calls.completeMany, 0);
    assert.ok(calls.claimed <= 12);
  } finally {
    await store.close();
  }
});

Deno.test("worker.completionGroup rejects 0 with the field named", async () => {
  await assert.rejects(
    loadConfig({
      stage: "normalize",
      stageSchema: z.object({}),
      env: {},
      cwd: await Deno.makeTempDir(),
      argv: ["--worker-completion-group", "0"],
    }),
    /worker\.completionGroup.*expected an integer >= 1/s,
  );
});

Deno.test("runQueue records completions in completeMany groups by default, each item once", async () => {
  const store = await openManifest("sqlite::memory:");
  try {
    const { queue, calls } = counted(store);
    await store.enqueue("normalize", ids(40));
    const processed: string[] = [];
    const summary = await runQueue(
      {
        name: "normalize",
        manifest: queue,
        log: memoryLog().log,
        metrics: createStageMetrics("normalize"),
        worker: await workerConfig(4),
      },
      {
        queue: "normalize",
        once: true,
        progress: false,
        process: async (claim) => {
          processed.push(claim.itemId);
          await new Promise((r) => setTimeout(r, 2));
          return { enqueue: [{ stage: "infer", itemId: claim.itemId }] };
        },
      },
    );
    assert.equal(summary.done, 40);
    assert.deepEqual(processed.sort(), ids(40));
    assert.equal(calls.complete, 0, "no one-transaction-per-item completion");
    assert.equal(calls.groups.reduce((a, b) => a + b, 0), 40);
    assert.ok(calls.groups.every((n) => n >= 1 && n <= 4), `groups ${calls.groups}`);
    assert.ok(calls.completeMany < 40, `expected grouped completions, found ${calls.groups}`);
    assert.deepEqual(await store.workCounts(), {
      normalize: { pending: 0, leased: 0, done: 40, failed: 0 },
      infer: { pending: 40, leased: 0, done: 0, failed: 0 },
    });
  } finally {
    await store.close();
  }
});

Deno.test("runQueue shutdown flushes waiting completions and releases prefetched, unstarted claims", async () => {
  const store = await openManifest("sqlite::memory:");
  try {
    const { queue, calls } = counted(store);
    await store.enqueue("normalize", ids(10));
    const ac = new AbortController();
    const started: string[] = [];
    let gate!: () => void;
    const open = new Promise<void>((r) => (gate = r));
    const run = runQueue(
      {
        name: "normalize",
        manifest: queue,
        log: memoryLog().log,
        metrics: createStageMetrics("normalize"),
        worker: await workerConfig(2),
      },
      {
        queue: "normalize",
        graceMs: 5000,
        progress: false,
        signal: ac.signal,
        process: async (claim) => {
          started.push(claim.itemId);
          await open;
          return {};
        },
      },
    );
    // Two slots busy and two more claims held in the prefetch buffer.
    const deadline = Date.now() + 5000;
    while ((started.length < 2 || calls.claimed < 4) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(started.length, 2);
    assert.equal(calls.claimed, 4, "two slots plus a prefetch of two");
    const leased = (await store.listWork("normalize", "leased")).map((w) => w.itemId);
    assert.equal(leased.length, 4);
    ac.abort();
    gate();
    const summary = await run;
    assert.deepEqual(
      { done: summary.done, released: summary.released, leaseLost: summary.leaseLost },
      { done: 2, released: 2, leaseLost: 0 },
    );
    assert.equal(calls.complete, 0);
    assert.deepEqual(await store.workCounts("normalize"), {
      normalize: { pending: 8, leased: 0, done: 2, failed: 0 },
    });
    const done = (await store.listWork("normalize", "done")).map((w) => w.itemId);
    assert.deepEqual(done.sort(), [...started].sort());
    for (const id of leased.filter((i) => !started.includes(i))) {
      const row = (await store.listWork("normalize", "pending")).find((w) => w.itemId === id);
      assert.ok(row, `${id}: expected pending after release, found ${JSON.stringify(row)}`);
      assert.equal(row.attempts, 0, `${id}: a released prefetched claim is not an attempt`);
      assert.equal(row.leaseOwner, null);
    }
  } finally {
    await store.close();
  }
});

// worker.graceMs: the operator's grace period wins over the stage's own (train passes 30 s).
// An item that needs 1.5 s after SIGTERM is completed under the stage's 10 s grace and released
// under an operator's 100 ms (both far from the item's time, so the outcome is not a race).
for (
  const [extra, outcome] of [[[], "done"], [["--worker-grace-ms", "100"], "released"]] as const
) {
  Deno.test(`runQueue: worker.graceMs ${extra[1] ?? "unset"} → the slow item is ${outcome}`, async () => {
    const store = await openManifest("sqlite::memory:");
    try {
      await store.enqueue("normalize", ids(1));
      const worker = await workerConfig(1, [...extra]);
      assert.equal(worker.graceMs, extra[1] === undefined ? undefined : Number(extra[1]));
      const ac = new AbortController();
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const run = runQueue(
        {
          name: "normalize",
          manifest: store,
          log: memoryLog().log,
          metrics: createStageMetrics("normalize"),
          worker,
        },
        {
          queue: "normalize",
          graceMs: 10_000,
          progress: false,
          signal: ac.signal,
          process: async (_claim, ctx) => {
            started();
            // 1.5 s of work that stops when the loop aborts it (after the grace period).
            await new Promise<void>((resolve, reject) => {
              const t = setTimeout(resolve, 1500);
              ctx.signal.addEventListener("abort", () => {
                clearTimeout(t);
                reject(ctx.signal.reason);
              });
            });
            return {};
          },
        },
      );
      await running;
      ac.abort();
      const summary = await run;
      assert.equal(
        outcome === "done" ? summary.done : summary.released,
        1,
        JSON.stringify(summary),
      );
      const counts = (await store.workCounts("normalize")).normalize;
      assert.equal(outcome === "done" ? counts.done : counts.pending, 1, JSON.stringify(counts));
    } finally {
      await store.close();
    }
  });
}

Deno.test("worker.graceMs and worker.shutdownCallMs: bad values are refused, each named", async () => {
  for (
    const [flag, value, path] of [
      ["--worker-grace-ms", "-1", "worker.graceMs"],
      ["--worker-shutdown-call-ms", "0", "worker.shutdownCallMs"],
      ["--worker-shutdown-call-ms", "600000", "worker.shutdownCallMs"],
    ]
  ) {
    const err = await workerConfig(1, [flag, value]).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ConfigError, `${flag} ${value}: expected a ConfigError, found ${err}`);
    assert.ok(
      err.issues.some((i) => i.path === path),
      `${flag} ${value}: expected an issue at ${path}, found ${err.issues.map((i) => i.path)}`,
    );
  }
});

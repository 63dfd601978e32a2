import assert from "node:assert/strict";
import { SluiceError } from "../errors/mod.ts";
import { createLogger } from "../log/mod.ts";
import { type Claim, LeaseLostError } from "../manifest/mod.ts";
import { TestQueue } from "./_test_queue.ts";
import type { ProgressSnapshot } from "./progress.ts";
import { type ItemResult, runWorker, type RunWorkerOptions } from "./run_worker.ts";

const STAGE = "normalize";

function testLog() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    stage: STAGE,
    json: true,
    level: "debug",
    sink: (l) => lines.push(JSON.parse(l)),
  });
  return { log, lines };
}

function ids(n: number, prefix = "img_"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, "0")}`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves when the signal aborts (or after `ms`, so a broken worker cannot hang the test). */
function abortedOr(signal: AbortSignal, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

function base(queue: TestQueue): Omit<RunWorkerOptions, "process" | "log"> {
  return {
    manifest: queue,
    stage: STAGE,
    owner: "w1",
    leaseMs: 5000,
    idlePollMs: 20,
    progress: false,
  };
}

Deno.test("runWorker: once mode processes everything, records effects, and returns", async () => {
  const q = new TestQueue();
  q.add(STAGE, ids(10));
  q.add("ingest", ["other_stage_item"]);
  const { log } = testLog();
  const results: [string, ItemResult, number][] = [];
  const summary = await runWorker({
    ...base(q),
    log,
    once: true,
    concurrency: 2,
    process: async (claim) => {
      await sleep(1);
      return { image: { id: claim.itemId, status: "ingested" } };
    },
    onResult: (c, r, ms) => results.push([c.itemId, r, ms]),
  });
  assert.deepEqual(summary, { done: 10, failed: 0, retried: 0, leaseLost: 0, released: 0 });
  for (const id of ids(10)) {
    const row = q.row(STAGE, id);
    assert.equal(row.state, "done");
    assert.deepEqual(row.effects, { image: { id, status: "ingested" } });
    assert.equal(row.attempts, 1);
  }
  assert.equal(q.row("ingest", "other_stage_item").state, "pending");
  assert.deepEqual(results.map((r) => r[0]).sort(), ids(10));
  assert.ok(results.every(([, r, ms]) => r.outcome === "done" && ms >= 0));
});

Deno.test("runWorker: once mode on an empty queue returns at once", async () => {
  const q = new TestQueue();
  const { log } = testLog();
  const summary = await runWorker({
    ...base(q),
    log,
    once: true,
    process: () => Promise.resolve(),
  });
  assert.deepEqual(summary, { done: 0, failed: 0, retried: 0, leaseLost: 0, released: 0 });
});

Deno.test("runWorker: never runs or holds more than `concurrency` items", async () => {
  const q = new TestQueue();
  q.add(STAGE, ids(20));
  const { log } = testLog();
  let current = 0;
  let max = 0;
  let maxHeld = 0;
  const summary = await runWorker({
    ...base(q),
    log,
    once: true,
    concurrency: 3,
    batchSize: 2,
    process: async () => {
      current++;
      max = Math.max(max, current);
      const held = [...q.rows.values()].filter((r) => r.state === "leased").length;
      maxHeld = Math.max(maxHeld, held);
      await sleep(15);
      current--;
    },
  });
  assert.equal(summary.done, 20);
  assert.equal(max, 3, "three at once, and no more");
  assert.ok(maxHeld <= 3, `held ${maxHeld} claims`);
  // batchSize caps each round trip.
  assert.ok(q.calls.claim >= 20 / 2);
});

Deno.test("runWorker: renews leases of slow items so nobody else can take them", async () => {
  const q = new TestQueue();
  q.add(STAGE, ["slow_a", "slow_b"]);
  const { log } = testLog();
  const leaseMs = 300;
  const stolen: Claim[] = [];
  const summary = await runWorker({
    ...base(q),
    log,
    once: true,
    concurrency: 2,
    leaseMs,
    process: async () => {
      // Four lease lengths; another worker polls all the while.
      const until = Date.now() + 4 * leaseMs;
      while (Date.now() < until) {
        stolen.push(...await q.claim(STAGE, { max: 10, leaseMs, owner: "w2" }));
        await sleep(25);
      }
    },
  });
  assert.deepEqual(stolen, []);
  assert.deepEqual(summary, { done: 2, failed: 0, retried: 0, leaseLost: 0, released: 0 });
  assert.ok(q.calls.renew >= 6, `renewed ${q.calls.renew} times`);
  assert.ok(q.renewals.some((r) => r.includes("slow_a") && r.includes("slow_b")));
});

Deno.test("runWorker: failures go to fail() with the reason and the retry flag", async () => {
  class Unretryable extends Error {
    readonly retryable = false;
  }
  const q = new TestQueue();
  q.retryDelayMs = 5;
  q.add(STAGE, ["ok", "corrupt", "unretryable", "flaky", "always", "quota"]);
  const { log, lines } = testLog();
  const outcomes: Record<string, string[]> = {};
  const summary = await runWorker({
    ...base(q),
    log,
    once: true,
    concurrency: 2,
    maxAttempts: 3,
    permanentCodes: ["quota"],
    process: (claim, ctx) => {
      switch (claim.itemId) {
        case "corrupt":
          throw new SluiceError("corrupt_image", "truncated JPEG at byte 1234");
        case "unretryable":
          throw new Unretryable("bad input");
        case "flaky":
          if (ctx.attempt === 1) throw new SluiceError("staging_full", "disk full");
          return Promise.resolve({});
        case "always":
          throw new Error("ECONNRESET");
        case "quota":
          throw new SluiceError("quota", "over quota");
      }
      return Promise.resolve({});
    },
    onResult: (c, r) => (outcomes[c.itemId] ??= []).push(r.outcome),
  });
  assert.equal(q.row(STAGE, "ok").state, "done");
  assert.equal(q.row(STAGE, "flaky").state, "done");
  assert.deepEqual(q.row(STAGE, "flaky").failures, [
    { reason: "staging_full", message: "disk full", retry: true },
  ]);
  assert.deepEqual(q.row(STAGE, "corrupt").failures, [
    { reason: "corrupt_image", message: "truncated JPEG at byte 1234", retry: false },
  ]);
  assert.equal(q.row(STAGE, "corrupt").state, "failed");
  assert.equal(q.row(STAGE, "corrupt").attempts, 1);
  assert.deepEqual(q.row(STAGE, "unretryable").failures, [
    { reason: "internal", message: "bad input", retry: false },
  ]);
  assert.deepEqual(q.row(STAGE, "quota").failures.map((f) => f.retry), [false]);
  const always = q.row(STAGE, "always");
  assert.equal(always.state, "failed");
  assert.deepEqual(always.failures.map((f) => [f.reason, f.retry]), [
    ["internal", true],
    ["internal", true],
    ["internal", true],
  ]);
  assert.deepEqual(outcomes.always, ["retried", "retried", "failed"]);
  assert.deepEqual(outcomes.flaky, ["retried", "done"]);
  assert.deepEqual(summary, { done: 2, failed: 4, retried: 3, leaseLost: 0, released: 0 });
  const failLine = lines.find((l) => l.item === "corrupt" && l.level === "warn");
  assert.equal(failLine?.reason, "corrupt_image");
});

Deno.test("runWorker: a lost lease is counted, aborts the item, and is not fatal", async () => {
  const q = new TestQueue();
  q.add(STAGE, ["a", "stolen", "c"]);
  const { log, lines } = testLog();
  let reason: unknown;
  const summary = await runWorker({
    ...base(q),
    log,
    once: true,
    leaseMs: 150,
    process: async (claim, ctx) => {
      if (claim.itemId === "stolen" && ctx.attempt === 1) {
        // Another worker takes it over (briefly); the next renewal notices.
        q.steal(STAGE, "stolen", "thief", 200);
        await abortedOr(ctx.signal, 2000);
        reason = ctx.signal.reason;
      }
      return {};
    },
  });
  assert.ok(reason instanceof LeaseLostError, `signal reason: ${reason}`);
  assert.equal(summary.leaseLost, 1);
  // The thief never finished, so once its lease ran out this worker did the item.
  assert.equal(summary.done, 3);
  assert.equal(q.row(STAGE, "stolen").state, "done");
  assert.ok(lines.some((l) => l.msg === "lease lost while working" && l.item === "stolen"));
});

Deno.test("runWorker: LeaseLostError from complete() is logged and counted", async () => {
  const q = new TestQueue();
  q.add(STAGE, ["x", "y"]);
  const { log, lines } = testLog();
  const summary = await runWorker({
    ...base(q),
    log,
    once: true,
    process: (claim, ctx) => {
      // Taken over right before completing: no renewal had a chance to notice.
      if (claim.itemId === "x" && ctx.attempt === 1) q.steal(STAGE, "x", "thief", 30);
      return Promise.resolve({});
    },
  });
  assert.equal(summary.leaseLost, 1);
  assert.equal(summary.done, 2);
  assert.ok(lines.some((l) => /lease lost before completion/.test(String(l.msg))));
});

Deno.test("runWorker: abort releases unfinished claims after the grace period", async () => {
  const q = new TestQueue();
  q.add(STAGE, ids(5));
  const { log } = testLog();
  const ac = new AbortController();
  const started: string[] = [];
  const reasons: unknown[] = [];
  const t0 = performance.now();
  const run = runWorker({
    ...base(q),
    log,
    concurrency: 2,
    graceMs: 100,
    signal: ac.signal,
    process: async (claim, ctx) => {
      started.push(claim.itemId);
      if (started.length === 2) ac.abort();
      await abortedOr(ctx.signal, 10_000);
      reasons.push(ctx.signal.reason);
      throw ctx.signal.reason;
    },
  });
  const summary = await run;
  assert.ok(performance.now() - t0 < 5000);
  assert.deepEqual(summary, { done: 0, failed: 0, retried: 0, leaseLost: 0, released: 2 });
  assert.equal(started.length, 2);
  assert.equal(reasons.length, 2);
  assert.ok(reasons.every((r) => r instanceof SluiceError && r.code === "worker_stopping"));
  for (const id of ids(5)) {
    const row = q.row(STAGE, id);
    assert.equal(row.state, "pending", id);
    assert.equal(row.attempts, 0, "a released claim does not count as an attempt");
    assert.deepEqual(row.failures, []);
  }
  assert.equal(q.calls.release, 2);
  assert.equal(q.calls.fail, 0);
});

Deno.test("runWorker: abort stops claiming but lets in-flight items finish within the grace", async () => {
  const q = new TestQueue();
  q.add(STAGE, ids(6));
  const { log } = testLog();
  const ac = new AbortController();
  let claimsAtAbort = -1;
  const summary = await runWorker({
    ...base(q),
    log,
    concurrency: 2,
    graceMs: 5000,
    signal: ac.signal,
    process: async () => {
      if (!ac.signal.aborted) {
        claimsAtAbort = q.calls.claim;
        ac.abort();
      }
      await sleep(80);
      return {};
    },
  });
  assert.deepEqual(summary, { done: 2, failed: 0, retried: 0, leaseLost: 0, released: 0 });
  assert.equal(q.calls.claim, claimsAtAbort, "no claim after abort");
  assert.equal([...q.rows.values()].filter((r) => r.state === "pending").length, 4);
});

Deno.test("runWorker: an already-aborted signal claims nothing", async () => {
  const q = new TestQueue();
  q.add(STAGE, ids(3));
  const { log } = testLog();
  const summary = await runWorker({
    ...base(q),
    log,
    signal: AbortSignal.abort(),
    process: () => Promise.resolve({}),
  });
  assert.equal(summary.done, 0);
  assert.equal(q.calls.claim, 0);
});

Deno.test("runWorker: once mode waits out another worker's lease", async () => {
  const q = new TestQueue();
  q.add(STAGE, ["a", "b", "c"]);
  q.steal(STAGE, "b", "crashed-worker", 150);
  const { log } = testLog();
  const t0 = Date.now();
  const summary = await runWorker({
    ...base(q),
    log,
    once: true,
    process: () => Promise.resolve({}),
  });
  assert.equal(summary.done, 3);
  assert.ok(Date.now() - t0 >= 140, "it waited for the lease to expire");
  assert.equal(q.row(STAGE, "b").attempts, 2);
});

Deno.test("runWorker: progress reports done/total/rate/ETA", async () => {
  const q = new TestQueue();
  q.add(STAGE, ids(12));
  const { log } = testLog();
  const seen: ProgressSnapshot[] = [];
  await runWorker({
    ...base(q),
    log,
    once: true,
    progress: { everyItems: 5, everyMs: 60_000, onProgress: (p) => seen.push(p) },
    process: async () => {
      await sleep(2);
      return {};
    },
  });
  assert.deepEqual(seen.map((p) => p.processed), [5, 10, 12]);
  assert.ok(seen.every((p) => p.total === 12));
  assert.ok(seen[0].ratePerSec > 0);
  assert.ok(seen[0].etaMs !== undefined && seen[0].etaMs > 0);
  assert.equal(seen.at(-1)!.etaMs, 0);
});

Deno.test("runWorker: progress log lines in plain (non-TTY) mode", async () => {
  const q = new TestQueue();
  q.add(STAGE, ids(4));
  const { log, lines } = testLog();
  await runWorker({
    ...base(q),
    log,
    progress: { everyItems: 2 },
    signal: AbortSignal.timeout(300),
    process: () => Promise.resolve({}),
  });
  const progress = lines.filter((l) => String(l.msg).startsWith("progress:"));
  assert.ok(progress.length >= 1, JSON.stringify(lines));
  assert.ok(progress.every((l) => typeof l.ratePerSec === "number"));
  const finished = lines.find((l) => String(l.msg).startsWith("finished:"));
  assert.equal(finished?.done, 4);
});

Deno.test("runWorker: invalid options are refused with the field named", async () => {
  const q = new TestQueue();
  const { log } = testLog();
  await assert.rejects(
    runWorker({ ...base(q), log, concurrency: 0, process: () => Promise.resolve() }),
    (err: SluiceError) => err.code === "invalid_options" && /concurrency/.test(err.message),
  );
});

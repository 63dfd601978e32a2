/**
 * The worker loop against the real SQLite manifest (a file in a temp dir, so other workers can
 * open their own connections). `RecordingQueue` only counts and records the calls the loop makes
 * and passes every one of them to the real store unchanged.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SluiceError } from "../errors/mod.ts";
import { createLogger } from "../log/mod.ts";
import {
  type Claim,
  type Effects,
  type FailOptions,
  LeaseLostError,
  type ManifestStore,
  type QueueName,
  type WorkRow,
} from "../manifest/mod.ts";
import { openSqliteManifest } from "../manifest/sqlite.ts";
import type { ProgressSnapshot } from "./progress.ts";
import { type ItemResult, runWorker, type RunWorkerOptions, type WorkQueue } from "./run_worker.ts";

const STAGE = "normalize";

/** Passes every call to the real store, counting calls and keeping what `fail` was told. */
class RecordingQueue implements WorkQueue {
  readonly calls = { claim: 0, renew: 0, complete: 0, fail: 0, release: 0, workCounts: 0 };
  /** Item ids sent to each `renew` call. */
  readonly renewals: string[][] = [];
  /** Every `fail` call, by item. */
  readonly failures = new Map<string, { reason: string; message: string; retry: boolean }[]>();

  constructor(readonly store: ManifestStore) {}

  claim(stage: QueueName, opts: Parameters<ManifestStore["claim"]>[1]): Promise<Claim[]> {
    this.calls.claim++;
    return this.store.claim(stage, opts);
  }
  renew(claims: Claim[], leaseMs: number): Promise<Claim[]> {
    this.calls.renew++;
    this.renewals.push(claims.map((c) => c.itemId));
    return this.store.renew(claims, leaseMs);
  }
  complete(claim: Claim, effects?: Effects): Promise<void> {
    this.calls.complete++;
    return this.store.complete(claim, effects);
  }
  fail(claim: Claim, reason: string, message: string, opts?: FailOptions) {
    this.calls.fail++;
    const list = this.failures.get(claim.itemId) ?? [];
    list.push({ reason, message, retry: opts?.retry ?? true });
    this.failures.set(claim.itemId, list);
    return this.store.fail(claim, reason, message, opts);
  }
  release(claim: Claim): Promise<void> {
    this.calls.release++;
    return this.store.release(claim);
  }
  workCounts(stage?: QueueName) {
    this.calls.workCounts++;
    return this.store.workCounts(stage);
  }

  async row(stage: QueueName, itemId: string): Promise<WorkRow> {
    const row = (await this.store.listWork(stage, undefined, 10_000)).find((r) =>
      r.itemId === itemId
    );
    if (!row) throw new Error(`no work row ${stage}/${itemId}`);
    return row;
  }
}

interface Env {
  q: RecordingQueue;
  /** Another worker's store on the same database; `skewMs` shifts its clock. */
  other(skewMs?: number): Promise<ManifestStore>;
}

async function withQueue(fn: (env: Env) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-worker-"));
  const url = `sqlite://${join(dir, "manifest.db")}`;
  const stores: ManifestStore[] = [];
  const open = async (skewMs = 0) => {
    const s = await openSqliteManifest(url, skewMs ? { now: () => Date.now() + skewMs } : {});
    stores.push(s);
    await s.migrate();
    return s;
  };
  try {
    await fn({ q: new RecordingQueue(await open()), other: open });
  } finally {
    for (const s of stores) await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

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

function base(queue: RecordingQueue): Omit<RunWorkerOptions, "process" | "log"> {
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
  await withQueue(async ({ q }) => {
    await q.store.enqueue(STAGE, ids(10));
    await q.store.enqueue("ingest", ["other_stage_item"]);
    const { log } = testLog();
    const results: [string, ItemResult, number][] = [];
    const summary = await runWorker({
      ...base(q),
      log,
      once: true,
      concurrency: 2,
      process: async (claim) => {
        await sleep(1);
        return { enqueue: [{ stage: "train", itemId: `${claim.itemId}-next` }] };
      },
      onResult: (c, r, ms) => results.push([c.itemId, r, ms]),
    });
    assert.deepEqual(summary, { done: 10, failed: 0, retried: 0, leaseLost: 0, released: 0 });
    for (const id of ids(10)) {
      const row = await q.row(STAGE, id);
      assert.equal(row.state, "done");
      assert.equal(row.attempts, 1);
    }
    // The effects were applied with each completion.
    const next = await q.store.listWork("train", "pending", 100);
    assert.deepEqual(next.map((r) => r.itemId), ids(10).map((id) => `${id}-next`));
    assert.equal((await q.row("ingest", "other_stage_item")).state, "pending");
    assert.deepEqual(results.map((r) => r[0]).sort(), ids(10));
    assert.ok(results.every(([, r, ms]) => r.outcome === "done" && ms >= 0));
  });
});

Deno.test("runWorker: once mode on an empty queue returns at once", async () => {
  await withQueue(async ({ q }) => {
    const { log } = testLog();
    const summary = await runWorker({
      ...base(q),
      log,
      once: true,
      process: () => Promise.resolve(),
    });
    assert.deepEqual(summary, { done: 0, failed: 0, retried: 0, leaseLost: 0, released: 0 });
  });
});

Deno.test("runWorker: never runs or holds more than `concurrency` items", async () => {
  await withQueue(async ({ q }) => {
    await q.store.enqueue(STAGE, ids(20));
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
        const held = (await q.store.workCounts(STAGE))[STAGE].leased;
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
});

Deno.test("runWorker: renews leases of slow items so nobody else can take them", async () => {
  await withQueue(async ({ q, other }) => {
    await q.store.enqueue(STAGE, ["slow_a", "slow_b"]);
    const w2 = await other();
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
        // Four lease lengths; another worker, on its own connection, polls all the while.
        const until = Date.now() + 4 * leaseMs;
        while (Date.now() < until) {
          stolen.push(...await w2.claim(STAGE, { max: 10, leaseMs, owner: "w2" }));
          await sleep(25);
        }
      },
    });
    assert.deepEqual(stolen, []);
    assert.deepEqual(summary, { done: 2, failed: 0, retried: 0, leaseLost: 0, released: 0 });
    assert.ok(q.calls.renew >= 6, `renewed ${q.calls.renew} times`);
    assert.ok(q.renewals.some((r) => r.includes("slow_a") && r.includes("slow_b")));
  });
});

Deno.test("runWorker: failures go to fail() with the reason and the retry flag", async () => {
  class Unretryable extends Error {
    readonly retryable = false;
  }
  await withQueue(async ({ q }) => {
    await q.store.enqueue(STAGE, ["ok", "corrupt", "unretryable", "flaky", "always", "quota"]);
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
    assert.equal((await q.row(STAGE, "ok")).state, "done");
    const flaky = await q.row(STAGE, "flaky");
    assert.deepEqual([flaky.state, flaky.attempts], ["done", 2]);
    assert.deepEqual(q.failures.get("flaky"), [
      { reason: "staging_full", message: "disk full", retry: true },
    ]);
    assert.deepEqual(q.failures.get("corrupt"), [
      { reason: "corrupt_image", message: "truncated JPEG at byte 1234", retry: false },
    ]);
    const corrupt = await q.row(STAGE, "corrupt");
    assert.deepEqual([corrupt.state, corrupt.attempts], ["failed", 1]);
    assert.equal(corrupt.lastError, "corrupt_image: truncated JPEG at byte 1234");
    assert.deepEqual(q.failures.get("unretryable"), [
      { reason: "internal", message: "bad input", retry: false },
    ]);
    assert.equal((await q.row(STAGE, "unretryable")).state, "failed");
    assert.deepEqual(q.failures.get("quota")?.map((f) => f.retry), [false]);
    const always = await q.row(STAGE, "always");
    assert.deepEqual([always.state, always.attempts], ["failed", 3]);
    assert.equal(always.lastError, "internal: ECONNRESET");
    assert.deepEqual(q.failures.get("always")?.map((f) => [f.reason, f.retry]), [
      ["internal", true],
      ["internal", true],
      ["internal", true],
    ]);
    assert.deepEqual(outcomes.always, ["retried", "retried", "failed"]);
    assert.deepEqual(outcomes.flaky, ["retried", "done"]);
    assert.deepEqual(summary, { done: 2, failed: 4, retried: 3, leaseLost: 0, released: 0 });
    assert.deepEqual(await q.store.workCounts(STAGE), {
      [STAGE]: { pending: 0, leased: 0, done: 2, failed: 4 },
    });
    const failLine = lines.find((l) => l.item === "corrupt" && l.level === "warn");
    assert.equal(failLine?.reason, "corrupt_image");
  });
});

Deno.test("runWorker: a lost lease is counted, aborts the item, and is not fatal", async () => {
  await withQueue(async ({ q, other }) => {
    await q.store.enqueue(STAGE, ["a_stolen", "b", "c"]);
    // A worker whose clock runs a second ahead sees this worker's 150 ms lease as expired.
    const thief = await other(1000);
    const { log, lines } = testLog();
    let reason: unknown;
    let taken: Claim[] = [];
    const summary = await runWorker({
      ...base(q),
      log,
      once: true,
      leaseMs: 150,
      process: async (claim, ctx) => {
        if (claim.itemId === "a_stolen" && ctx.attempt === 1) {
          // The other worker takes it over (briefly); the next renewal notices.
          taken = await thief.claim(STAGE, { max: 1, owner: "thief", leaseMs: 200 });
          await abortedOr(ctx.signal, 2000);
          reason = ctx.signal.reason;
        }
        return {};
      },
    });
    assert.deepEqual(taken.map((c) => c.itemId), ["a_stolen"]);
    assert.ok(reason instanceof LeaseLostError, `signal reason: ${reason}`);
    assert.equal(summary.leaseLost, 1);
    // The thief never finished, so once its lease ran out this worker did the item.
    assert.equal(summary.done, 3);
    const row = await q.row(STAGE, "a_stolen");
    assert.deepEqual([row.state, row.attempts, row.leaseOwner], ["done", 3, "w1"]);
    assert.ok(lines.some((l) => l.msg === "lease lost while working" && l.item === "a_stolen"));
  });
});

Deno.test("runWorker: LeaseLostError from complete() is logged and counted", async () => {
  await withQueue(async ({ q, other }) => {
    await q.store.enqueue(STAGE, ["x", "y"]);
    const thief = await other(1000);
    const { log, lines } = testLog();
    let taken: Claim[] = [];
    const summary = await runWorker({
      ...base(q),
      log,
      once: true,
      leaseMs: 300,
      process: async (claim, ctx) => {
        // Taken over right before completing: no renewal had a chance to notice.
        if (claim.itemId === "x" && ctx.attempt === 1) {
          taken = await thief.claim(STAGE, { max: 1, owner: "thief", leaseMs: 30 });
        }
        return {};
      },
    });
    assert.deepEqual(taken.map((c) => c.itemId), ["x"]);
    assert.equal(summary.leaseLost, 1);
    assert.equal(summary.done, 2);
    assert.ok(lines.some((l) => /lease lost before completion/.test(String(l.msg))));
    assert.equal((await q.row(STAGE, "x")).state, "done");
  });
});

Deno.test("runWorker: abort releases unfinished claims after the grace period", async () => {
  await withQueue(async ({ q }) => {
    await q.store.enqueue(STAGE, ids(5));
    const { log } = testLog();
    const ac = new AbortController();
    const started: string[] = [];
    const reasons: unknown[] = [];
    const t0 = performance.now();
    const summary = await runWorker({
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
    assert.ok(performance.now() - t0 < 5000);
    assert.deepEqual(summary, { done: 0, failed: 0, retried: 0, leaseLost: 0, released: 2 });
    assert.equal(started.length, 2);
    assert.equal(reasons.length, 2);
    assert.ok(reasons.every((r) => r instanceof SluiceError && r.code === "worker_stopping"));
    for (const id of ids(5)) {
      const row = await q.row(STAGE, id);
      assert.equal(row.state, "pending", id);
      assert.equal(row.attempts, 0, "a released claim does not count as an attempt");
      assert.equal(row.lastError, null);
      assert.equal(row.leaseOwner, null);
    }
    assert.equal(q.calls.release, 2);
    assert.equal(q.calls.fail, 0);
  });
});

Deno.test("runWorker: abort stops claiming but lets in-flight items finish within the grace", async () => {
  await withQueue(async ({ q }) => {
    await q.store.enqueue(STAGE, ids(6));
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
    assert.deepEqual(await q.store.workCounts(STAGE), {
      [STAGE]: { pending: 4, leased: 0, done: 2, failed: 0 },
    });
  });
});

Deno.test("runWorker: an already-aborted signal claims nothing", async () => {
  await withQueue(async ({ q }) => {
    await q.store.enqueue(STAGE, ids(3));
    const { log } = testLog();
    const summary = await runWorker({
      ...base(q),
      log,
      signal: AbortSignal.abort(),
      process: () => Promise.resolve({}),
    });
    assert.equal(summary.done, 0);
    assert.equal(q.calls.claim, 0);
    assert.equal((await q.store.workCounts(STAGE))[STAGE].pending, 3);
  });
});

Deno.test("runWorker: once mode waits out another worker's lease", async () => {
  await withQueue(async ({ q, other }) => {
    await q.store.enqueue(STAGE, ["a", "b", "c"]);
    // A worker that claimed "a" and crashed: its lease runs 150 ms more.
    const crashed = await other();
    const [gone] = await crashed.claim(STAGE, { max: 1, owner: "crashed-worker", leaseMs: 150 });
    assert.equal(gone.itemId, "a");
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
    const row = await q.row(STAGE, "a");
    assert.deepEqual([row.state, row.attempts, row.leaseOwner], ["done", 2, "w1"]);
    await assert.rejects(crashed.complete(gone), LeaseLostError);
  });
});

Deno.test("runWorker: progress reports done/total/rate/ETA", async () => {
  await withQueue(async ({ q }) => {
    await q.store.enqueue(STAGE, ids(12));
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
});

Deno.test("runWorker: progress log lines in plain (non-TTY) mode", async () => {
  await withQueue(async ({ q }) => {
    await q.store.enqueue(STAGE, ids(4));
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
});

Deno.test("runWorker: invalid options are refused with the field named", async () => {
  await withQueue(async ({ q }) => {
    const { log } = testLog();
    await assert.rejects(
      runWorker({ ...base(q), log, concurrency: 0, process: () => Promise.resolve() }),
      (err: SluiceError) => err.code === "invalid_options" && /concurrency/.test(err.message),
    );
    assert.equal(q.calls.claim, 0);
  });
});

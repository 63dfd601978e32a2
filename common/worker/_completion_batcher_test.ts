/**
 * Grouped completions against the real SQLite manifest (a file in a temp dir): the batcher's
 * count and time bounds, a lost lease failing only its own item, and the worker loop with a
 * prefetch buffer and grouped completions (exactly once across two workers; graceful shutdown
 * leaves every item either done or pending, never leased).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../log/mod.ts";
import {
  type CompletionOutcome,
  type CompletionRequest,
  LeaseLostError,
  type ManifestStore,
} from "../manifest/mod.ts";
import { openSqliteManifest } from "../manifest/sqlite.ts";
import { CompletionBatcher } from "./_completion_batcher.ts";
import { runWorker } from "./run_worker.ts";

const STAGE = "normalize";

async function withStores(
  fn: (open: (now?: () => number) => Promise<ManifestStore>) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-batcher-"));
  const url = `sqlite://${join(dir, "manifest.db")}`;
  const stores: ManifestStore[] = [];
  try {
    await fn(async (now) => {
      const s = await openSqliteManifest(url, now ? { now } : {});
      stores.push(s);
      await s.migrate();
      return s;
    });
  } finally {
    for (const s of stores) await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `img_${String(i).padStart(4, "0")}`);
}

/** The store's completeMany, with the size of every group it was handed. */
function recording(store: ManifestStore) {
  const groups: number[] = [];
  const many = (r: CompletionRequest[]): Promise<CompletionOutcome[]> => {
    groups.push(r.length);
    return store.completeMany(r);
  };
  return { groups, many };
}

const log = createLogger({ stage: STAGE, json: true, level: "error", sink: () => {} });

Deno.test("CompletionBatcher: flushes at maxItems, the rest on flush(), each item recorded", async () => {
  await withStores(async (open) => {
    const store = await open();
    await store.enqueue(STAGE, ids(10));
    const claims = await store.claim(STAGE, { max: 10, owner: "w", leaseMs: 60_000 });
    const { groups, many } = recording(store);
    const b = new CompletionBatcher(many, { maxItems: 4, maxDelayMs: 10_000 });
    const done = claims.map((c) =>
      b.complete(c, { enqueue: [{ stage: "infer", itemId: c.itemId }] })
    );
    assert.deepEqual(groups, [4, 4]);
    assert.equal(b.waiting, 2);
    await b.flush();
    await Promise.all(done);
    assert.deepEqual(groups, [4, 4, 2]);
    assert.equal((await store.workCounts(STAGE))[STAGE].done, 10);
    assert.equal((await store.workCounts("infer")).infer.pending, 10);
  });
});

Deno.test("CompletionBatcher: a lone completion is flushed after maxDelayMs", async () => {
  await withStores(async (open) => {
    const store = await open();
    await store.enqueue(STAGE, ids(3));
    const claims = await store.claim(STAGE, { max: 3, owner: "w", leaseMs: 60_000 });
    const { groups, many } = recording(store);
    const b = new CompletionBatcher(many, { maxItems: 100, maxDelayMs: 30 });
    const t0 = performance.now();
    await Promise.all(claims.map((c) => b.complete(c)));
    const ms = performance.now() - t0;
    assert.ok(ms >= 25, `flushed after ${ms} ms, expected the 30 ms delay`);
    assert.deepEqual(groups, [3]);
  });
});

Deno.test("CompletionBatcher: a lost lease rejects only its own item", async () => {
  await withStores(async (open) => {
    let clock = 1_000_000;
    const a = await open(() => clock);
    const other = await open(() => clock);
    await a.enqueue(STAGE, ids(3));
    const claims = await a.claim(STAGE, { max: 3, owner: "a", leaseMs: 1000 });
    clock += 5000;
    await a.renew([claims[0], claims[2]], 60_000);
    const [stolen] = await other.claim(STAGE, { max: 3, owner: "b", leaseMs: 60_000 });
    assert.equal(stolen.itemId, claims[1].itemId);
    const b = new CompletionBatcher((r) => a.completeMany(r), { maxItems: 3 });
    const settled = await Promise.allSettled(claims.map((c) => b.complete(c)));
    assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "rejected", "fulfilled"]);
    const lost = settled[1];
    assert.ok(lost.status === "rejected" && lost.reason instanceof LeaseLostError);
  });
});

Deno.test("CompletionBatcher: a failed group rejects every item with the error", async () => {
  await withStores(async (open) => {
    const store = await open();
    await store.enqueue(STAGE, ids(2));
    const claims = await store.claim(STAGE, { max: 2, owner: "w", leaseMs: 60_000 });
    const boom = new Error("database went away");
    const b = new CompletionBatcher(() => Promise.reject(boom), { maxItems: 2 });
    const settled = await Promise.allSettled(claims.map((c) => b.complete(c)));
    assert.ok(settled.every((s) => s.status === "rejected" && s.reason === boom));
    assert.equal((await store.workCounts(STAGE))[STAGE].leased, 2, "nothing recorded");
  });
});

Deno.test("runWorker with prefetch and grouped completions: two workers, each item done once", async () => {
  await withStores(async (open) => {
    const seed = await open();
    const all = ids(400);
    await seed.enqueue(STAGE, all);
    const processed = new Map<string, number>();
    const workers = await Promise.all(["w1", "w2"].map(async (owner) => {
      const store = await open();
      const { groups, many } = recording(store);
      const summary = await runWorker({
        manifest: { ...pick(store), completeMany: many },
        stage: STAGE,
        owner,
        log,
        concurrency: 4,
        prefetch: 4,
        batchSize: 8,
        completionBatch: { maxItems: 8, maxDelayMs: 5 },
        idlePollMs: 20,
        once: true,
        progress: false,
        process: async (claim) => {
          processed.set(claim.itemId, (processed.get(claim.itemId) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 1));
          return { enqueue: [{ stage: "infer", itemId: claim.itemId }] };
        },
      });
      return { summary, groups };
    }));
    assert.equal(workers.reduce((n, w) => n + w.summary.done, 0), all.length);
    for (const id of all) assert.equal(processed.get(id), 1, id);
    const counts = await seed.workCounts();
    assert.deepEqual(counts[STAGE], { pending: 0, leased: 0, done: all.length, failed: 0 });
    assert.equal(counts.infer.pending, all.length);
    const groups = workers.flatMap((w) => w.groups);
    assert.equal(groups.reduce((n, g) => n + g, 0), all.length);
    assert.ok(groups.some((g) => g > 1), `groups ${groups.join(",")}: expected some of >1`);
  });
});

Deno.test("runWorker with prefetch and grouped completions: shutdown leaves items done or pending", async () => {
  await withStores(async (open) => {
    const store = await open();
    const all = ids(60);
    await store.enqueue(STAGE, all);
    const ac = new AbortController();
    let started = 0;
    const summary = await runWorker({
      manifest: store,
      stage: STAGE,
      owner: "w1",
      log,
      concurrency: 2,
      prefetch: 4,
      completionBatch: { maxItems: 16, maxDelayMs: 50 },
      idlePollMs: 20,
      graceMs: 2000,
      signal: ac.signal,
      progress: false,
      process: async () => {
        if (++started === 10) ac.abort();
        await new Promise((r) => setTimeout(r, 5));
      },
    });
    const c = (await store.workCounts(STAGE))[STAGE];
    assert.equal(c.leased, 0, "nothing left leased");
    assert.equal(c.done, summary.done, "every item reported done was recorded");
    assert.equal(c.pending, all.length - summary.done);
    assert.ok(summary.released >= 1, "the prefetched claims were given back");
    assert.equal(summary.leaseLost + summary.failed + summary.retried, 0);
    const pending = await store.listWork(STAGE, "pending", 1000);
    assert.ok(pending.every((r) => r.attempts === 0), "released claims count no attempt");
  });
});

/** The store's queue methods, bound, as a plain object (so completeMany can be swapped). */
function pick(s: ManifestStore) {
  return {
    claim: s.claim.bind(s),
    renew: s.renew.bind(s),
    complete: s.complete.bind(s),
    fail: s.fail.bind(s),
    release: s.release.bind(s),
    workCounts: s.workCounts.bind(s),
  };
}

/**
 * Issue 12 item 5: "lease lost while working" must mean the lease was lost. A renewal that
 * was sent while an item was in flight, but answered after the same worker had completed the
 * item, used to report the completed item as lost. The real SQLite manifest is used; the only
 * change is a delay in front of `renew` so that the renewal reaches the store after the
 * completion (the timing seen under load), every call still going to the real store.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../log/mod.ts";
import type { Claim, ManifestStore } from "../manifest/mod.ts";
import { openSqliteManifest } from "../manifest/sqlite.ts";
import { runWorker, type WorkQueue } from "./run_worker.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The real store, with each renewal arriving `delayMs` late. */
function lateRenewals(store: ManifestStore, delayMs: number): WorkQueue {
  return {
    claim: (stage, opts) => store.claim(stage, opts),
    renew: async (claims: Claim[], leaseMs: number) => {
      await sleep(delayMs);
      return store.renew(claims, leaseMs);
    },
    complete: (claim, effects) => store.complete(claim, effects),
    fail: (claim, reason, message, opts) => store.fail(claim, reason, message, opts),
    release: (claim) => store.release(claim),
    workCounts: (stage) => store.workCounts(stage),
  };
}

Deno.test("runWorker: items completed while a renewal is in flight are not reported lost", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-renew-race-"));
  const store = await openSqliteManifest(`sqlite://${join(dir, "manifest.db")}`);
  try {
    await store.migrate();
    const ids = Array.from({ length: 80 }, (_, i) => `img_${String(i).padStart(3, "0")}`);
    await store.enqueue("normalize", ids);
    const warnings: string[] = [];
    const log = createLogger({
      stage: "normalize",
      json: true,
      level: "warn",
      sink: (l) => warnings.push(JSON.parse(l).msg),
    });
    const summary = await runWorker({
      manifest: lateRenewals(store, 60),
      stage: "normalize",
      owner: "w1",
      // Renewals every 100 ms, each answered 60 ms late: items finishing in ~25 ms complete
      // while a renewal that included them is on its way.
      leaseMs: 300,
      concurrency: 4,
      idlePollMs: 5,
      once: true,
      progress: false,
      log,
      process: () => sleep(25),
    });
    assert.deepEqual(summary, { done: 80, failed: 0, retried: 0, leaseLost: 0, released: 0 });
    const lost = warnings.filter((m) => m === "lease lost while working");
    assert.deepEqual(lost, [], `expected no lease-lost warnings, found ${lost.length}`);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

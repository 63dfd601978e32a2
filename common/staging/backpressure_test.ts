/**
 * Issue 12 item 3 without privilege: the staging free space comes from an injected probe (the
 * tmpfs case in tests/faults/staging_tmpfs_test.ts uses a real full filesystem). The worker
 * loop, the SQLite manifest and the staging leases are the real ones.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../log/mod.ts";
import { openSqliteManifest } from "../manifest/sqlite.ts";
import { runWorker } from "../worker/run_worker.ts";
import { stagingBackpressure } from "./backpressure.ts";
import { StagingFullError } from "./errors.ts";
import { openStaging } from "./mod.ts";

const FLOOR = 64 * 1024 * 1024;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), "sluice-backpressure-"));
  const manifest = await openSqliteManifest(`sqlite://${join(dir, "manifest.db")}`);
  await manifest.migrate();
  const lines: { level: string; msg: string }[] = [];
  const log = createLogger({
    stage: "normalize",
    json: true,
    level: "info",
    sink: (l) => lines.push(JSON.parse(l)),
  });
  const staging = await openStaging({
    root: join(dir, "staging"),
    minFreeMb: 0,
    stage: "normalize",
    workerId: "w1",
    log,
  });
  let free = 0;
  const bp = stagingBackpressure({
    root: staging.root,
    minFreeBytes: FLOOR,
    log,
    freeBytes: () => Promise.resolve(free),
    holdMs: 50,
  });
  return {
    manifest,
    staging,
    bp,
    lines,
    log,
    setFree: (b: number) => free = b,
    getFree: () => free,
    close: async () => {
      await manifest.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

Deno.test("backpressure: below the floor nothing is claimed; claiming resumes by itself", async () => {
  const env = await setup();
  try {
    const ids = Array.from({ length: 10 }, (_, i) => `img_${i}`);
    await env.manifest.enqueue("normalize", ids);
    const ac = new AbortController();
    const worker = runWorker({
      manifest: env.manifest,
      stage: "normalize",
      owner: "w1",
      concurrency: 2,
      idlePollMs: 20,
      leaseMs: 5000,
      progress: false,
      signal: ac.signal,
      log: env.log,
      canClaim: env.bp.canClaim,
      isBackpressure: env.bp.isBackpressure,
      process: async (claim) => {
        await using lease = await env.staging.lease(claim.itemId);
        await lease.publish("input", new Uint8Array(1024));
      },
    });
    await sleep(400);
    const paused = await env.manifest.listWork("normalize", undefined, 100);
    assert.deepEqual(
      paused.map((r) => [r.state, r.attempts]),
      ids.map(() => ["pending", 0]),
      "expected no claim and no attempt while below the floor",
    );
    assert.equal(env.bp.paused, true);
    env.setFree(FLOOR * 4);
    for (let i = 0; i < 200; i++) {
      const c = (await env.manifest.workCounts("normalize")).normalize;
      if (c?.done === 10) break;
      await sleep(20);
    }
    ac.abort();
    const summary = await worker;
    assert.equal(summary.done, 10);
    const rows = await env.manifest.listWork("normalize", undefined, 100);
    assert.deepEqual(rows.map((r) => [r.state, r.attempts]), ids.map(() => ["done", 1]));
    assert.equal(env.bp.pauses, 1);
    // One pause line and one resume line, not one per poll.
    assert.equal(env.lines.filter((l) => l.msg.startsWith("staging below")).length, 1);
    assert.equal(env.lines.filter((l) => l.msg.startsWith("staging free space is back")).length, 1);
  } finally {
    await env.close();
  }
});

Deno.test("backpressure: a disk that fills after the claim releases the item, attempt uncounted", async () => {
  const env = await setup();
  try {
    env.setFree(FLOOR * 4);
    await env.manifest.enqueue("normalize", ["img_a"]);
    let tries = 0;
    const summary = await runWorker({
      manifest: env.manifest,
      stage: "normalize",
      owner: "w1",
      idlePollMs: 20,
      leaseMs: 5000,
      maxAttempts: 2,
      once: true,
      progress: false,
      log: env.log,
      canClaim: env.bp.canClaim,
      isBackpressure: env.bp.isBackpressure,
      process: async (claim) => {
        tries++;
        if (tries <= 4) {
          // The disk fills while the item runs (four times: more than maxAttempts) and
          // frees up a little later.
          env.setFree(0);
          setTimeout(() => env.setFree(FLOOR * 4), 60);
          throw new StagingFullError(env.staging.root, 1024, 0, FLOOR);
        }
        await using lease = await env.staging.lease(claim.itemId);
        await lease.publish("input", new Uint8Array(1024));
      },
    });
    assert.equal(summary.done, 1);
    assert.equal(summary.failed, 0);
    const [row] = await env.manifest.listWork("normalize", undefined, 10);
    assert.equal(row.state, "done");
    assert.equal(row.attempts, 1, "expected the full-disk tries not to count");
    assert.equal(tries, 5);
  } finally {
    await env.close();
  }
});

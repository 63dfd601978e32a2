/**
 * Fault case (issue 12 item 3, as root): staging on a real 8 MiB tmpfs that is filled and
 * freed under a running worker. While the filesystem is below the free-space floor nothing is
 * claimed and no attempt is counted; once the filler is removed the queue drains by itself,
 * every item done on its first counted attempt, and staging is left empty. Needs root for
 * `mount -t tmpfs`: skipped with the reason otherwise, and a failure under CI=true.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../common/log/mod.ts";
import { openSqliteManifest } from "../../common/manifest/sqlite.ts";
import { runWorker } from "../../common/worker/run_worker.ts";
import { stagingBackpressure } from "../../common/staging/backpressure.ts";
import { openStaging } from "../../common/staging/mod.ts";

const isRoot = Deno.uid() === 0;
if (!isRoot) {
  const reason = "staging tmpfs fault case needs root (mount -t tmpfs)";
  if (Deno.env.get("CI") === "true") throw new Error(`${reason}; CI=true makes this fatal`);
  console.warn(`${reason}: skipped`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function sh(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (out.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")}: expected exit 0, found ${out.code}: ` +
        new TextDecoder().decode(out.stderr),
    );
  }
}

Deno.test({
  name: "faults: staging on a full tmpfs pauses claiming, counts no attempt, resumes when freed",
  ignore: !isRoot,
  fn: async () => {
    const t0 = performance.now();
    const dir = await mkdtemp(join(tmpdir(), "sluice-faults-tmpfs-"));
    const mnt = join(dir, "mnt");
    await Deno.mkdir(mnt);
    await sh("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt]);
    const manifest = await openSqliteManifest(`sqlite://${join(dir, "manifest.db")}`);
    try {
      await manifest.migrate();
      const log = createLogger({ stage: "normalize", json: true, level: "error", sink: () => {} });
      const staging = await openStaging({
        root: join(mnt, "staging"),
        minFreeMb: 2,
        stage: "normalize",
        workerId: "w1",
        log,
      });
      const bp = stagingBackpressure({
        root: staging.root,
        minFreeBytes: staging.minFreeBytes,
        log,
        holdMs: 100,
      });
      // Leave ~1 MiB free: below the 2 MiB floor.
      const filler = join(mnt, "filler");
      await writeFile(filler, new Uint8Array(7 * 1024 * 1024));
      const ids = Array.from({ length: 20 }, (_, i) => `img_${String(i).padStart(2, "0")}`);
      await manifest.enqueue("normalize", ids);
      const ac = new AbortController();
      const worker = runWorker({
        manifest,
        stage: "normalize",
        owner: "w1",
        concurrency: 2,
        idlePollMs: 20,
        leaseMs: 5000,
        progress: false,
        signal: ac.signal,
        log,
        canClaim: bp.canClaim,
        isBackpressure: bp.isBackpressure,
        process: async (claim) => {
          await using lease = await staging.lease(claim.itemId);
          await lease.publish("input", new Uint8Array(256 * 1024));
        },
      });
      await sleep(500);
      const full = await manifest.listWork("normalize", undefined, 100);
      assert.deepEqual(
        full.map((r) => [r.state, r.attempts]),
        ids.map(() => ["pending", 0]),
        "expected nothing claimed while the tmpfs is below the floor",
      );
      assert.ok(bp.paused);

      await rm(filler);
      for (let i = 0; i < 250; i++) {
        if ((await manifest.workCounts("normalize")).normalize?.done === ids.length) break;
        await sleep(20);
      }
      ac.abort();
      const summary = await worker;
      const rows = await manifest.listWork("normalize", undefined, 100);
      assert.deepEqual(rows.map((r) => [r.state, r.attempts]), ids.map(() => ["done", 1]));
      assert.equal(summary.failed + summary.retried, 0);
      const left = await readdir(staging.workerDir).catch(() => []);
      assert.deepEqual(left, [], "expected staging empty");
      console.log(
        `tmpfs audit: ${ids.length}/${ids.length} done, attempts all 1, 0 failed, 0 retried, ` +
          `pauses ${bp.pauses}, staging empty; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      await manifest.close();
      await sh("umount", [mnt]).catch((err) => console.error(String(err)));
      await rm(dir, { recursive: true, force: true });
    }
  },
});

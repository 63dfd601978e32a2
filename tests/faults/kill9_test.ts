/**
 * Fault case: a worker process killed with SIGKILL mid-batch, then a fresh worker started on
 * the same PostgreSQL queue. The killed worker's leases run out (2 s) and its items are
 * claimed again: audit at the end, every item done, nothing pending, leased or failed, and no
 * item needed more than two attempts.
 */
import assert from "node:assert/strict";
import { openManifest } from "../../common/manifest/mod.ts";
import { postgresAvailability, startPostgres } from "../harness/postgres.ts";

const ITEMS = 150;
const child = new URL("./_pg_worker_child.ts", import.meta.url).pathname;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function spawn(url: string, owner: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, url, owner],
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

Deno.test({
  name: "faults: kill -9 mid-batch and restart: every item done, none stuck, ≤ 2 attempts",
  ignore: !postgresAvailability().ok,
  fn: async () => {
    const t0 = performance.now();
    const pg = await startPostgres();
    const m = await openManifest(pg.url);
    try {
      const ids = Array.from({ length: ITEMS }, (_, i) => `item_${String(i).padStart(4, "0")}`);
      await m.enqueue("normalize", ids);
      const first = spawn(pg.url, "victim");
      // Kill it once it has done part of the batch and holds leases.
      let doneBefore = 0;
      for (let i = 0; i < 400; i++) {
        doneBefore = (await m.workCounts("normalize")).normalize?.done ?? 0;
        if (doneBefore >= ITEMS / 4) break;
        await sleep(50);
      }
      first.kill("SIGKILL");
      const killed = await first.status;
      assert.equal(killed.signal, "SIGKILL");
      await first.stdout.cancel();
      const heldAtKill = (await m.workCounts("normalize")).normalize?.leased ?? 0;

      const second = spawn(pg.url, "survivor");
      let counts: Record<string, number> = {};
      for (let i = 0; i < 600; i++) {
        counts = (await m.workCounts("normalize")).normalize ?? {};
        if (counts.done === ITEMS) break;
        await sleep(100);
      }
      second.kill("SIGTERM");
      assert.equal((await second.status).code, 0);
      await second.stdout.cancel();

      assert.equal(counts.done, ITEMS, `expected all done, found ${JSON.stringify(counts)}`);
      assert.equal((counts.pending ?? 0) + (counts.leased ?? 0) + (counts.failed ?? 0), 0);
      const rows = await m.listWork("normalize", undefined, ITEMS + 10);
      const maxAttempts = Math.max(...rows.map((r) => r.attempts));
      assert.ok(maxAttempts <= 2, `expected at most 2 attempts, found ${maxAttempts}`);
      console.log(
        `kill -9 audit: killed after ${doneBefore} done holding ${heldAtKill} leases; ` +
          `${counts.done}/${ITEMS} done, 0 pending/leased/failed, max attempts ${maxAttempts}; ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      await m.close();
      await pg.stop();
    }
  },
});

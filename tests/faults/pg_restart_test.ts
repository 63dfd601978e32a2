/**
 * Fault case (issue 12 item 1): PostgreSQL restarted repeatedly (`pg_ctl restart -m fast`)
 * under two worker processes on the same queue. Before the driver patches (`vendor/postgres`,
 * see its SLUICE_PATCH.md) workers died at a restart with an uncaught error thrown from the
 * driver's `nextWrite` (porsager/postgres#1154), and about one run in four a worker did not stop
 * after SIGTERM: a claim waited on a connection that kept reconnecting under a 20 s backoff, and
 * a reconnect fired after `sql.end()` kept the process alive. Now: no worker exits, the queue
 * drains with every item done exactly once and nothing stuck, and each worker stops within
 * 7 s of SIGTERM (its grace period is 2 s, plus `close()`'s 5 s timeout; a wedged worker is
 * given up on at 20 s).
 *
 * The workers run with `--node-modules-dir=manual`: Deno re-copies the linked driver into
 * `node_modules` at the start of every command, and two processes starting at once could load
 * it half copied.
 */
import assert from "node:assert/strict";
import { openManifest } from "../../common/manifest/mod.ts";
import { postgresAvailability, startPostgres } from "../harness/postgres.ts";

const ITEMS = 200;
const RESTARTS = 6;
/** The child's graceMs (2 s) plus the manifest's close() timeout (5 s). */
const STOP_BUDGET_S = 7;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Reads a stream line by line: `next()` one line, `rest()` everything after. */
function readLines(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return {
    async next(): Promise<string> {
      while (!buf.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) return buf;
        buf += value;
      }
      const i = buf.indexOf("\n");
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      return line;
    },
    async rest(): Promise<string> {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return buf;
        buf += value;
      }
    },
  };
}

const child = new URL("./_pg_worker_child.ts", import.meta.url).pathname;

Deno.test({
  name: "faults: PostgreSQL restarted 6 times under two workers: no worker exits, queue drains",
  ignore: !postgresAvailability().ok,
  fn: async () => {
    const t0 = performance.now();
    const pg = await startPostgres();
    const kids: Deno.ChildProcess[] = [];
    try {
      assert.ok(pg.restart, "the harness must own the cluster to restart it");
      const manifest = await openManifest(pg.url);
      const ids = Array.from({ length: ITEMS }, (_, i) => `item_${String(i).padStart(4, "0")}`);
      await manifest.enqueue("normalize", ids);
      await manifest.close();

      const exits: (number | null)[] = [];
      for (const owner of ["w1", "w2"]) {
        const k = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--node-modules-dir=manual", child, pg.url, owner],
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const i = kids.push(k) - 1;
        exits[i] = null;
        k.status.then((s) => exits[i] = s.code);
      }
      // Restarts begin once both workers are running (stdout "ready"); stdout is then drained
      // in the background and kept for the summaries.
      const stdouts = kids.map((k) => readLines(k.stdout));
      for (const s of stdouts) assert.equal(await s.next(), "ready");
      for (let r = 1; r <= RESTARTS; r++) {
        await pg.restart();
        await sleep(400 + 100 * r);
        assert.deepEqual(exits, [null, null], `after restart ${r}: expected both workers running`);
      }

      // The server stays up now: the queue must drain.
      const tDrain = performance.now();
      const check = await openManifest(pg.url);
      let counts: Record<string, number> = {};
      const deadline = performance.now() + 90_000;
      while (performance.now() < deadline) {
        counts = (await check.workCounts("normalize")).normalize ?? {};
        if ((counts.done ?? 0) === ITEMS) break;
        await sleep(250);
      }
      const drainS = (performance.now() - tDrain) / 1000;
      const rows = await check.listWork("normalize", undefined, ITEMS + 10);
      await check.close();
      assert.equal(counts.done, ITEMS, `expected ${ITEMS} done, found ${JSON.stringify(counts)}`);
      assert.equal(rows.length, ITEMS);
      assert.deepEqual(exits, [null, null], "expected both workers still running after the drain");
      const attempts = rows.reduce((n, r) => n + r.attempts, 0);

      // Stop both workers during one more restart: SIGTERM lands while their connections fail
      // and reconnect, where the hang was. A worker wedged on a database call would never exit:
      // fail instead of hanging.
      const restarting = pg.restart();
      await sleep(150);
      const tStop = performance.now();
      for (const k of kids) k.kill("SIGTERM");
      const stopped = await Promise.all(kids.map(async (k) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const status = await Promise.race([
          k.status,
          new Promise<null>((r) => timer = setTimeout(() => r(null), 20_000)),
        ]);
        clearTimeout(timer);
        return { status, s: (performance.now() - tStop) / 1000 };
      }));
      await restarting;
      const summaries = [];
      for (const [i, { status }] of stopped.entries()) {
        assert.ok(status, `worker ${i + 1}: expected it to stop within 20 s of SIGTERM`);
        assert.equal(status.code, 0, `worker ${i + 1}: expected exit 0 after SIGTERM`);
        // Its budget: the 2 s grace period for items in flight, then close()'s 5 s timeout.
        assert.ok(
          stopped[i].s <= STOP_BUDGET_S,
          `worker ${i + 1}: expected it to stop within ${STOP_BUDGET_S} s of SIGTERM ` +
            `(grace 2 s + close 5 s), took ${stopped[i].s.toFixed(1)} s`,
        );
        summaries.push(JSON.parse((await stdouts[i].rest()).trim().split("\n").at(-1)!).summary);
      }
      kids.length = 0;
      const done = summaries.reduce((n, s) => n + s.done, 0);
      assert.equal(done, ITEMS, `expected each item completed once, workers report ${done}`);
      console.log(
        `pg restart audit: ${RESTARTS + 1} restarts (the last during SIGTERM), 2/2 workers ` +
          `alive, ${ITEMS}/${ITEMS} done, 0 leased, 0 failed, ${attempts} attempts ` +
          `(${attempts - ITEMS} retries); drained ${drainS.toFixed(1)} s after the restarts; ` +
          `stopped ${stopped.map((x) => x.s.toFixed(1)).join(" s and ")} s after SIGTERM; ` +
          `workers ${JSON.stringify(summaries)}; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      for (const k of kids) {
        try {
          k.kill("SIGKILL");
        } catch { /* already gone */ }
        const status = await k.status;
        const err = await new Response(k.stderr).text().catch(() => "");
        console.error(`worker (exit ${status.code}) stderr:`, err.slice(-6000));
      }
      await pg.stop();
    }
  },
});

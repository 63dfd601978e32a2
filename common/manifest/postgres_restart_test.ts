/**
 * The PostgreSQL manifest across `pg_ctl restart -m fast` (issue 12 item 1): every call made
 * while the server goes away and comes back settles (done or a connection-loss error) within a
 * bound, the store serves calls again once the server is back, and `close()` returns within its
 * 5 s timeout and leaves no timer or socket behind (Deno's sanitizers fail the test otherwise:
 * the driver's pending reconnect used to open a connection after `end()`, and a worker process
 * then never exited).
 */
import assert from "node:assert/strict";
import { openManifest } from "./mod.ts";
import { isConnectionLoss } from "./_connection_loss_guard.ts";
import { reconnectDelayS } from "./postgres.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

const pg = postgresAvailability();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Longest a call may take while the server restarts: one restart plus the 2 s reconnect cap. */
const CALL_BOUND_MS = 8000;

Deno.test("reconnectDelayS: doubles from 0.1 s, never above the cap", () => {
  for (let n = 0; n < 40; n++) {
    const s = reconnectDelayS(n, 2);
    assert.ok(s > 0 && s <= Math.min(0.1 * 2 ** n, 2), `try ${n}: ${s} s`);
  }
  assert.ok(reconnectDelayS(30, 2) >= 1, "the jitter keeps at least half the cap");
});

Deno.test({
  name: "postgres manifest: calls across three fast restarts settle within 8 s each, the store " +
    "recovers, close() is bounded",
  ignore: !pg.ok,
  async fn() {
    const server = await startPostgres();
    assert.ok(server.restart, "the harness must own the cluster to restart it");
    const store = await openManifest(server.url);
    try {
      await store.enqueue("restart", Array.from({ length: 20 }, (_, i) => `item_${i}`));
      let stop = false;
      let slowest = { ms: 0, call: "" };
      const stats = { ok: 0, lost: 0, other: [] as string[] };
      // Four callers, as a worker has: claims (transactions) and counts (single queries).
      const callers = Array.from({ length: 4 }, async (_, i) => {
        const call = i % 2 === 0 ? "claim+release" : "workCounts";
        while (!stop) {
          const t0 = performance.now();
          try {
            if (i % 2 === 0) {
              const claims = await store.claim("restart", { max: 1, owner: `c${i}`, leaseMs: 500 });
              for (const c of claims) await store.release(c);
            } else {
              await store.workCounts("restart");
            }
            stats.ok++;
          } catch (err) {
            if (isConnectionLoss(err)) stats.lost++;
            else stats.other.push(String(err));
          }
          const ms = performance.now() - t0;
          if (ms > slowest.ms) slowest = { ms, call };
          await sleep(5);
        }
      });
      await sleep(200);
      for (let r = 0; r < 3; r++) {
        await server.restart();
        await sleep(300);
      }
      await sleep(CALL_BOUND_MS / 2);
      stop = true;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const all = await Promise.race([
        Promise.all(callers).then(() => "settled"),
        new Promise<string>((r) => timer = setTimeout(r, CALL_BOUND_MS * 2, "pending")),
      ]);
      clearTimeout(timer);
      assert.equal(all, "settled", "a manifest call never settled after the restarts");
      assert.ok(
        slowest.ms < CALL_BOUND_MS,
        `expected every call to settle within ${CALL_BOUND_MS} ms, ${slowest.call} took ` +
          `${Math.round(slowest.ms)} ms`,
      );
      assert.ok(stats.lost > 0, `expected the restarts to be felt, found ${JSON.stringify(stats)}`);
      assert.deepEqual(stats.other, [], "expected only connection-loss errors");
      console.log(
        `restarts: ${stats.ok} calls done, ${stats.lost} lost the connection, slowest ` +
          `${slowest.call} ${Math.round(slowest.ms)} ms`,
      );
      // Back to normal: every item pending, nothing left leased by a call the restart cut off.
      const deadline = performance.now() + 5000;
      let counts = (await store.workCounts("restart")).restart;
      while (counts.leased && performance.now() < deadline) {
        await sleep(100);
        counts = (await store.workCounts("restart")).restart;
      }
      assert.equal(counts.pending, 20, `expected 20 pending, found ${JSON.stringify(counts)}`);
    } finally {
      const t0 = performance.now();
      await store.close();
      const closeMs = performance.now() - t0;
      await server.stop();
      assert.ok(closeMs < 6000, `expected close() within its 5 s timeout, took ${closeMs} ms`);
    }
  },
});

/**
 * Fault case: the network to PostgreSQL goes silent (no FIN, no RST: a host or a NAT entry that
 * vanished) while a worker is busy, and then the worker is told to stop. Its database calls
 * would wait for the kernel's TCP timeouts (many minutes); SIGTERM must still stop it within its
 * grace period plus the manifest's bounded close. Nothing is lost: once the network is back (a
 * fresh connection), the items the silent worker held come back when their leases expire and a
 * second worker drains the queue.
 */
import assert from "node:assert/strict";
import { openManifest } from "../../common/manifest/mod.ts";
import { postgresAvailability, startPostgres } from "../harness/postgres.ts";
import { startFreezingProxy } from "../support/freezing_proxy.ts";

const ITEMS = 120;
/**
 * The child's graceMs (2 s) + the worker's shutdown-call budget (`shutdownCallMs`, 3 s) + the
 * manifest close()'s 5 s timeout + the driver's 1 s before it destroys a silent socket, with 3 s
 * of room. Before the fix the worker was still running 60 s after SIGTERM.
 */
const STOP_BUDGET_S = 14;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const child = new URL("./_pg_worker_child.ts", import.meta.url).pathname;

Deno.test({
  name:
    "faults: the network to PostgreSQL goes silent; SIGTERM still stops the worker, nothing lost",
  ignore: !postgresAvailability().ok,
  fn: async () => {
    const pg = await startPostgres();
    const target = new URL(pg.url);
    const proxy = startFreezingProxy(Number(target.port));
    let kid: Deno.ChildProcess | undefined;
    let out: ReadableStreamDefaultReader<string> | undefined;
    try {
      const manifest = await openManifest(pg.url);
      const ids = Array.from({ length: ITEMS }, (_, i) => `item_${String(i).padStart(4, "0")}`);
      await manifest.enqueue("normalize", ids);
      await manifest.close();

      const viaProxy = new URL(pg.url);
      viaProxy.port = String(proxy.port);
      kid = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--node-modules-dir=manual", child, viaProxy.href, "silent"],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      out = kid.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("ready\n")) {
        const { value, done } = await out.read();
        if (done) break;
        text += value;
      }
      assert.match(text, /ready/);
      // Let it work, then cut the wire silently mid-exchange and give its calls time to hang.
      const check = await openManifest(pg.url);
      const deadline = performance.now() + 30_000;
      while (performance.now() < deadline) {
        const c = (await check.workCounts("normalize")).normalize ?? {};
        if ((c.done ?? 0) >= 20) break;
        await sleep(50);
      }
      proxy.freeze();
      await sleep(1500);
      const doneAtFreeze = (await check.workCounts("normalize")).normalize?.done ?? 0;
      assert.ok(doneAtFreeze < ITEMS, `expected work left when the wire went silent`);

      const t0 = performance.now();
      kid.kill("SIGTERM");
      const status = await Promise.race([kid.status, sleep(60_000).then(() => null)]);
      const stopS = (performance.now() - t0) / 1000;
      // A worker still running is killed first: its stderr ends only when it does.
      if (!status) kid.kill("SIGKILL");
      const rest = await new Response(kid.stderr).text().catch(() => "");
      if (!status) await kid.status;
      await out.cancel().catch(() => {});
      out = undefined;
      kid = undefined;
      assert.ok(status, `expected the worker to stop within 60 s of SIGTERM\n${rest.slice(-2000)}`);
      assert.ok(
        stopS <= STOP_BUDGET_S,
        `expected the worker to stop within ${STOP_BUDGET_S} s of SIGTERM, found ` +
          `${stopS.toFixed(1)} s\n${rest.slice(-2000)}`,
      );

      // The network comes back: the proxy lets its connections close, so PostgreSQL sees the
      // stopped worker's sessions end and rolls back the transaction the freeze caught mid-way
      // (until then its row locks would make a new worker's SKIP LOCKED claims pass those items).
      await proxy.close();
      // A new worker drains the queue, every item done once.
      const { runWorker } = await import("../../common/worker/run_worker.ts");
      const { createLogger } = await import("../../common/log/mod.ts");
      const seen = new Map<string, number>();
      const summary = await runWorker({
        manifest: check,
        stage: "normalize",
        owner: "after",
        leaseMs: 2000,
        concurrency: 4,
        idlePollMs: 50,
        once: true,
        progress: false,
        log: createLogger({ stage: "normalize", json: true, level: "error" }),
        process: (claim) => {
          seen.set(claim.itemId, (seen.get(claim.itemId) ?? 0) + 1);
          return Promise.resolve({});
        },
      });
      const counts = (await check.workCounts("normalize")).normalize;
      await check.close();
      assert.equal(
        counts?.done,
        ITEMS,
        `expected all ${ITEMS} done, found ${JSON.stringify(counts)}`,
      );
      assert.equal(summary.done + doneAtFreeze >= ITEMS, true);
      assert.ok([...seen.values()].every((n) => n === 1), "each left item processed once after");
      console.log(
        `pg blackhole: wire silent after ${doneAtFreeze} items; worker stopped ${
          stopS.toFixed(1)
        } s after SIGTERM (budget ${STOP_BUDGET_S} s); ${summary.done} drained after, ` +
          `${ITEMS} done`,
      );
    } finally {
      if (kid) {
        try {
          kid.kill("SIGKILL");
        } catch { /* gone */ }
        await kid.status;
        await out?.cancel().catch(() => {});
        await kid.stderr.cancel().catch(() => {});
      }
      await proxy.close();
      await pg.stop();
    }
  },
});

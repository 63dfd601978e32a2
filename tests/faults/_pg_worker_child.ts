/**
 * A worker process for the PostgreSQL-restart fault case: runs the real worker loop on the
 * `normalize` queue of a PostgreSQL manifest (argv[0]) with a 2 s lease; each item does a few
 * manifest reads (so there is always traffic when the server goes away) and completes. Prints
 * `ready` once the store is open, and a JSON summary line when SIGTERM stops it.
 */
import { openManifest } from "../../common/manifest/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { runWorker } from "../../common/worker/run_worker.ts";
import { shutdownSignal } from "../../common/worker/shutdown_signal.ts";

const [url, owner] = Deno.args;
const manifest = await openManifest(url);
const { signal } = shutdownSignal(["SIGTERM"]);
const log = createLogger({ stage: "normalize", json: true, level: "warn" });
console.log("ready");
const summary = await runWorker({
  manifest,
  stage: "normalize",
  owner,
  leaseMs: 2000,
  concurrency: 3,
  idlePollMs: 20,
  graceMs: 2000,
  // Attempts burnt by the outage itself are not what this case measures.
  maxAttempts: 50,
  progress: false,
  signal,
  log,
  process: async () => {
    for (let i = 0; i < 3; i++) {
      await manifest.workCounts("normalize");
      await new Promise((r) => setTimeout(r, 3));
    }
  },
});
await manifest.close();
console.log(JSON.stringify({ summary }));

/**
 * A worker process for the PostgreSQL-restart fault case: runs the real worker loop on the
 * `normalize` queue of a PostgreSQL manifest (argv[0]) with a 2 s lease; each item does a few
 * manifest reads (so there is always traffic when the server goes away) and completes. Prints
 * `ready` once the store is open, and a JSON summary line when SIGTERM stops it. If it has not
 * stopped 5 s after SIGTERM it writes the manifest calls still waiting (name and age) to
 * stderr, which the test prints when it fails.
 */
import { openManifest } from "../../common/manifest/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { runWorker } from "../../common/worker/run_worker.ts";
import { shutdownSignal } from "../../common/worker/shutdown_signal.ts";

const [url, owner] = Deno.args;
const waiting = new Map<number, { call: string; since: number }>();
let calls = 0;
/** The store, with every call that returns a promise tracked until it settles. */
const manifest = new Proxy(await openManifest(url), {
  get(target, prop) {
    const value = Reflect.get(target, prop, target);
    if (typeof value !== "function") return value;
    return (...args: unknown[]) => {
      const result = value.apply(target, args);
      if (!(result instanceof Promise)) return result;
      const id = ++calls;
      waiting.set(id, { call: String(prop), since: performance.now() });
      return result.finally(() => waiting.delete(id));
    };
  },
}) as ManifestStore;
const { signal } = shutdownSignal(["SIGTERM"]);
signal.addEventListener("abort", () => {
  for (const s of [5, 20]) {
    const timer = setTimeout(() => {
      const now = performance.now();
      console.error(JSON.stringify({
        msg: `still running ${s} s after SIGTERM; manifest calls waiting`,
        owner,
        waiting: [...waiting.values()].map((w) => ({
          call: w.call,
          ms: Math.round(now - w.since),
        })),
      }));
    }, s * 1000);
    Deno.unrefTimer(timer);
  }
});
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
console.error(JSON.stringify({ msg: "worker loop returned; closing the manifest", owner }));
await manifest.close();
console.error(JSON.stringify({ msg: "manifest closed", owner }));
console.log(JSON.stringify({ summary }));

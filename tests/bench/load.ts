/**
 * Load benchmark (issue 12): N small images (default 10,000; 64–256 px JPEG and PNG made with
 * sharp by `tests/support/small_images.ts`) through ingest and normalize with two worker
 * processes per stage on PostgreSQL (the throwaway cluster of `tests/harness/postgres.ts`) and
 * a local directory object store. Each worker is a real stage CLI (`stages/ingest/main.ts once`,
 * `stages/normalize/main.ts once|run`) run under `_rusage.py`, so every worker reports its wall
 * time, CPU-seconds and peak RSS. At the end the pipeline audit of
 * `tests/support/pipeline_audit.ts` must hold: every image has every variant, nothing failed,
 * pending or leased, no orphan object, staging empty; otherwise the bench fails.
 *
 * Modes:
 * - `sequential` (default): the ingest workers drain the source, then the normalize workers
 *   (`once`) drain their queue: images/s per stage, end to end = the sum of both phases;
 * - `overlap`: both stages at once (normalize in `run` mode, stopped with SIGTERM once its queue
 *   is drained), as a deployment runs them: end to end from the start to the drain.
 *
 * Options: `--images N` (10000), `--workers N` per stage (2), `--mode sequential|overlap`,
 * `--batching on|off` (`off`: every worker with `--worker-prefetch 0 --worker-completion-group 1`,
 * the one-transaction-per-item queue path, for an A/B against the default batching),
 * `--keep` (keep the work directory). Prints a table, then the figures as one JSON line.
 *
 * @example
 * ```sh
 * deno task bench load                       # 10,000 images, 2 + 2 workers
 * deno task bench load --images 500 --mode overlap
 * ```
 * @module
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import { type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { startPostgres } from "../harness/postgres.ts";
import { auditPipeline, formatAudit, type PipelineAudit } from "../support/pipeline_audit.ts";
import { writeSmallImages } from "../support/small_images.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));

const OptionsSchema = z.strictObject({
  images: z.coerce.number().int().min(1).default(10_000),
  workers: z.coerce.number().int().min(1).max(16).default(2),
  mode: z.enum(["sequential", "overlap"]).default("sequential"),
  batching: z.enum(["on", "off"]).default("on"),
  keep: z.boolean().default(false),
});
type Options = z.infer<typeof OptionsSchema>;

function parseOptions(args: string[]): Options {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        images: { type: "string" },
        workers: { type: "string" },
        mode: { type: "string" },
        batching: { type: "string" },
        keep: { type: "boolean" },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new SluiceError("invalid_options", `load bench: ${(err as Error).message}`);
  }
  const r = OptionsSchema.safeParse(values);
  if (!r.success) {
    throw new SluiceError(
      "invalid_options",
      `load bench: ${r.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  return r.data;
}

/** What `_rusage.py` reports for one worker process. */
interface Usage {
  wall_s: number;
  cpu_s: number;
  max_rss_mb: number;
  rc: number;
}

/** One worker process under `_rusage.py`. */
interface Worker {
  name: string;
  /** The `_rusage.py` process; the stage CLI is its only child. */
  proc: Deno.ChildProcess;
  usage: Promise<Usage>;
}

interface Work {
  dir: string;
  pgUrl: string;
  /** Extra worker flags (`--batching off`). */
  workerArgs: string[];
}

function stageArgs(w: Work, stage: "ingest" | "normalize", mode: string, id: string): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    // Workers start at once: none re-copies the linked vendor/postgres under another's feet.
    "--node-modules-dir=manual",
    join(REPO, `stages/${stage}/main.ts`),
    mode,
    "--manifest-url",
    w.pgUrl,
    "--source-url",
    join(w.dir, "raw"),
    "--object-store-url",
    join(w.dir, "objects"),
    "--staging-root",
    join(w.dir, "staging"),
    "--staging-min-free-mb",
    "0",
    "--runtime-cache-dir",
    join(w.dir, "runtime-cache"),
    "--worker-id",
    id,
    "--worker-idle-poll-ms",
    "100",
    "--http-port",
    "0",
    "--log-level",
    "warn",
    "--log-format",
    "json",
    ...w.workerArgs,
  ];
}

function startWorker(
  w: Work,
  stage: "ingest" | "normalize",
  mode: string,
  id: string,
): Worker {
  const out = join(w.dir, `usage-${id}.json`);
  const proc = new Deno.Command("/usr/bin/python3", {
    args: [join(HERE, "_rusage.py"), out, "--", ...stageArgs(w, stage, mode, id)],
    env: { MALLOC_ARENA_MAX: "2" },
    cwd: w.dir,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const usage = Promise.all([proc.status, new Response(proc.stderr).text()]).then(
    async ([status, stderr]) => {
      const u = JSON.parse(await Deno.readTextFile(out).catch(() => "null")) as Usage | null;
      if (!status.success || !u || u.rc !== 0) {
        throw new SluiceError(
          "bench_failed",
          `${stage} ${id}: expected exit 0, found ${u?.rc ?? status.code}\n` +
            stderr.trim().split("\n").slice(-15).join("\n"),
        );
      }
      return u;
    },
  );
  return { name: `${stage} ${id}`, proc, usage };
}

/** SIGTERM to the stage CLI under `_rusage.py` (python then writes its figures and exits). */
async function stopWorker(wk: Worker): Promise<void> {
  const children = await Deno.readTextFile(`/proc/${wk.proc.pid}/task/${wk.proc.pid}/children`)
    .catch(() => "");
  for (const pid of children.trim().split(/\s+/).filter(Boolean)) {
    try {
      Deno.kill(Number(pid), "SIGTERM");
    } catch { /* already gone */ }
  }
}

async function counts(m: ManifestStore, stage: "ingest" | "normalize") {
  return (await m.workCounts(stage))[stage] ?? {};
}

/** Figures of one stage: its workers, its wall time (first start to last exit). */
interface StageFigures {
  wall_s: number;
  images_per_s: number;
  cpu_s: number;
  workers: Record<string, { wall_s: number; cpu_s: number; max_rss_mb: number }>;
}

function stageFigures(images: number, wall: number, usages: [string, Usage][]): StageFigures {
  return {
    wall_s: wall,
    images_per_s: images / wall,
    cpu_s: usages.reduce((n, [, u]) => n + u.cpu_s, 0),
    workers: Object.fromEntries(
      usages.map(([n, u]) => [n, { wall_s: u.wall_s, cpu_s: u.cpu_s, max_rss_mb: u.max_rss_mb }]),
    ),
  };
}

async function runStages(
  w: Work,
  o: Options,
  manifest: ManifestStore,
): Promise<{ ingest: StageFigures; normalize: StageFigures; endToEnd: number }> {
  const ids = Array.from({ length: o.workers }, (_, i) => i + 1);
  const started: Worker[] = [];
  const start = (stage: "ingest" | "normalize", mode: string) =>
    ids.map((i) => {
      const wk = startWorker(w, stage, mode, `${stage}-${i}`);
      started.push(wk);
      return wk;
    });
  const all = async (ws: Worker[]) =>
    await Promise.all(ws.map(async (x) => [x.name, await x.usage] as [string, Usage]));
  const t0 = performance.now();
  try {
    const ingest = start("ingest", "once");
    if (o.mode === "sequential") {
      const iu = await all(ingest);
      const t1 = performance.now();
      const nu = await all(start("normalize", "once"));
      const t2 = performance.now();
      return {
        ingest: stageFigures(o.images, (t1 - t0) / 1000, iu),
        normalize: stageFigures(o.images, (t2 - t1) / 1000, nu),
        endToEnd: (t2 - t0) / 1000,
      };
    }
    const normalize = start("normalize", "run");
    const iu = await all(ingest);
    const t1 = performance.now();
    for (;;) {
      const c = await counts(manifest, "normalize");
      const ingested = (await counts(manifest, "ingest")).done ?? 0;
      if ((c.done ?? 0) + (c.failed ?? 0) >= ingested && !(c.pending ?? 0) && !(c.leased ?? 0)) {
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const t2 = performance.now();
    for (const n of normalize) await stopWorker(n);
    const nu = await all(normalize);
    return {
      ingest: stageFigures(o.images, (t1 - t0) / 1000, iu),
      normalize: stageFigures(o.images, (t2 - t0) / 1000, nu),
      endToEnd: (t2 - t0) / 1000,
    };
  } finally {
    // A failed worker fails the run: stop the others before the database goes away.
    for (const wk of started) await stopWorker(wk);
    await Promise.allSettled(started.map((wk) => wk.usage));
  }
}

function printTable(
  o: Options,
  r: { ingest: StageFigures; normalize: StageFigures; endToEnd: number },
  audit: PipelineAudit,
): void {
  console.log(
    `\nresults: ${o.images} images, ${o.workers} workers per stage, mode ${o.mode}, queue batching ${o.batching}, ` +
      `PostgreSQL manifest + local directory store, ${navigator.hardwareConcurrency} cores`,
  );
  const row = (a: string, b: string, c: string, d: string, e: string) =>
    console.log(
      `  ${a.padEnd(22)}${b.padStart(9)}${c.padStart(9)}${d.padStart(9)}${e.padStart(14)}`,
    );
  row("", "wall s", "img/s", "CPU s", "peak RSS MB");
  for (const [stage, f] of [["ingest", r.ingest], ["normalize", r.normalize]] as const) {
    row(stage, f.wall_s.toFixed(1), f.images_per_s.toFixed(1), f.cpu_s.toFixed(1), "");
    for (const [name, u] of Object.entries(f.workers)) {
      row(`  ${name}`, u.wall_s.toFixed(1), "", u.cpu_s.toFixed(1), u.max_rss_mb.toFixed(0));
    }
  }
  row(
    "end to end",
    r.endToEnd.toFixed(1),
    (o.images / r.endToEnd).toFixed(1),
    (r.ingest.cpu_s + r.normalize.cpu_s).toFixed(1),
    "",
  );
  console.log(`  audit: ${formatAudit(audit)}`);
  if (o.mode === "overlap") {
    console.log("  (overlap: normalize's wall time runs from the start, alongside ingest)");
  }
}

/** Runs the benchmark; see the module documentation for options. */
export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-load-"));
  const pg = await startPostgres();
  let manifest: ManifestStore | undefined;
  try {
    await mkdir(join(dir, "raw"));
    await mkdir(join(dir, "staging"));
    const g0 = performance.now();
    await writeSmallImages(join(dir, "raw"), o.images);
    const generate = (performance.now() - g0) / 1000;
    console.log(`generated ${o.images} images (64–256 px JPEG/PNG) in ${generate.toFixed(1)} s`);
    manifest = await openManifest(pg.url);
    await manifest.migrate();
    const work = {
      dir,
      pgUrl: pg.url,
      workerArgs: o.batching === "off"
        ? ["--worker-prefetch", "0", "--worker-completion-group", "1"]
        : [],
    };
    const r = await runStages(work, o, manifest);
    const store = await openObjectStore(join(dir, "objects"));
    let audit: PipelineAudit;
    try {
      audit = await auditPipeline({
        manifest,
        store,
        sources: o.images,
        stagingRoots: [join(dir, "staging")],
      });
    } finally {
      await store.close();
    }
    printTable(o, r, audit);
    console.log(JSON.stringify({
      bench: "load",
      images: o.images,
      workers: o.workers,
      mode: o.mode,
      batching: o.batching,
      generate_s: generate,
      ingest: r.ingest,
      normalize: r.normalize,
      end_to_end: {
        wall_s: r.endToEnd,
        images_per_s: o.images / r.endToEnd,
        cpu_s: r.ingest.cpu_s + r.normalize.cpu_s,
      },
      audit,
    }));
    if (audit.problems.length > 0) {
      throw new SluiceError("bench_failed", `load audit: ${audit.problems.join("; ")}`);
    }
  } finally {
    await manifest?.close();
    await pg.stop();
    if (o.keep) console.log(`work dir kept: ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await run(Deno.args);

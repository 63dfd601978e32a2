/**
 * The fault cases' pipeline: small images in a raw bucket of the S3 emulator, a throwaway
 * PostgreSQL manifest, and the real stage CLIs (`stages/ingest/main.ts once`,
 * `stages/normalize/main.ts run`) as worker processes whose every S3 request goes through the
 * request-counting fault proxy. `drivePipeline` runs two workers per stage at once (optionally
 * killing one of each with SIGKILL mid-batch and restarting it under the same worker id), waits
 * for both queues to drain, stops the normalize workers with SIGTERM, and returns the audit of
 * `tests/support/pipeline_audit.ts`.
 *
 * @example
 * ```ts
 * await using env = await openPipelineEnv({ images: 40 });
 * env.proxy.setRate(0.1);
 * const run = await drivePipeline(env, { kill: true });
 * assert.deepEqual(run.audit.problems, []);
 * ```
 * @module
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { S3ObjectStore } from "../../common/objectstore/s3.ts";
import { type PostgresTestServer, startPostgres } from "../harness/postgres.ts";
import { type S3TestServer, startS3Server } from "../harness/s3.ts";
import { type S3FaultProxy, startS3FaultProxy } from "../harness/s3_fault_proxy.ts";
import { auditPipeline, type PipelineAudit } from "../support/pipeline_audit.ts";
import { generateSmallImages } from "../support/small_images.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The running servers, buckets and manifest of one fault case. */
export interface PipelineEnv extends AsyncDisposable {
  dir: string;
  pg: PostgresTestServer;
  s3: S3TestServer;
  proxy: S3FaultProxy;
  /** The manifest, opened by the test (the workers open their own). */
  manifest: ManifestStore;
  /** The dataset store, read directly (not through the proxy). */
  store: S3ObjectStore;
  rawBucket: string;
  dataBucket: string;
  images: number;
  stagingRoot: string;
}

/** Options of {@link openPipelineEnv}. */
export interface PipelineEnvOptions {
  images: number;
  /** Seed of the proxy's fault choices. */
  seed?: number;
}

let counter = 0;

/** Starts PostgreSQL, the S3 emulator and the proxy, and writes the raw images (directly). */
export async function openPipelineEnv(opts: PipelineEnvOptions): Promise<PipelineEnv> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-faults-pipeline-"));
  const pg = await startPostgres();
  const s3 = await startS3Server();
  const proxy = await startS3FaultProxy(s3.endpoint, { seed: opts.seed ?? 7 });
  const n = `${Date.now().toString(36)}-${counter++}`;
  const rawBucket = `raw-${n}`, dataBucket = `data-${n}`;
  await s3.createBucket(rawBucket);
  await s3.createBucket(dataBucket);
  const creds = {
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  };
  const raw = S3ObjectStore.fromUrl(`s3://${rawBucket}`, creds);
  try {
    await generateSmallImages(opts.images, (img) => raw.put(img.name, img.bytes).then(() => {}));
  } finally {
    await raw.close();
  }
  const manifest = await openManifest(pg.url);
  await manifest.migrate();
  const store = S3ObjectStore.fromUrl(`s3://${dataBucket}/dataset`, creds);
  const stagingRoot = join(dir, "staging");
  await mkdir(stagingRoot);
  return {
    dir,
    pg,
    s3,
    proxy,
    manifest,
    store,
    rawBucket,
    dataBucket,
    images: opts.images,
    stagingRoot,
    async [Symbol.asyncDispose]() {
      await store.close();
      await manifest.close();
      await proxy.stop();
      await s3.stop();
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One stage worker process. */
export interface StageWorker {
  id: string;
  stage: "ingest" | "normalize";
  child: Deno.ChildProcess;
  /** Exit status; stdout and stderr (logs) are collected meanwhile. */
  done: Promise<{ status: Deno.CommandStatus; stdout: string; stderr: string }>;
  exited: boolean;
}

/** Starts a stage CLI as a worker (`once` for ingest, `run` for normalize). */
export function spawnStageWorker(
  env: PipelineEnv,
  stage: "ingest" | "normalize",
  id: string,
  opts: { leaseMs?: number; maxAttempts?: number } = {},
): StageWorker {
  // `manual`: Deno re-copies the linked driver (vendor/postgres) into node_modules at the start
  // of every command, and workers starting at once could load it half copied.
  const args = [
    "run",
    "-A",
    "--node-modules-dir=manual",
    join(REPO, `stages/${stage}/main.ts`),
    stage === "ingest" ? "once" : "run",
    "--manifest-url",
    env.pg.url,
    "--source-url",
    `s3://${env.rawBucket}`,
    "--object-store-url",
    `s3://${env.dataBucket}/dataset`,
    "--staging-root",
    env.stagingRoot,
    "--staging-min-free-mb",
    "0",
    // Kept apart, so that the staging root holds only the stages' item leases.
    "--runtime-cache-dir",
    join(env.dir, "runtime-cache"),
    "--worker-id",
    id,
    "--worker-concurrency",
    "2",
    "--worker-lease-ms",
    String(opts.leaseMs ?? 3000),
    "--worker-max-attempts",
    String(opts.maxAttempts ?? 10),
    "--worker-idle-poll-ms",
    "50",
    "--http-port",
    "0",
    "--log-level",
    "warn",
    "--log-format",
    "json",
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: env.dir,
    env: {
      MALLOC_ARENA_MAX: "2",
      SLUICE_S3_ENDPOINT: env.proxy.endpoint,
      SLUICE_S3_REGION: env.s3.region,
      SLUICE_S3_FORCE_PATH_STYLE: "true",
      SLUICE_S3_ACCESS_KEY_ID: env.s3.accessKeyId,
      SLUICE_S3_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w: StageWorker = {
    id,
    stage,
    child,
    exited: false,
    done: Promise.all([
      child.status,
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ]).then(([status, stdout, stderr]) => {
      w.exited = true;
      return { status, stdout, stderr };
    }),
  };
  return w;
}

/** What {@link drivePipeline} did, with the audit at the end. */
export interface PipelineRun {
  /** Per killed worker: items of its stage done when it was killed, and its leases then. */
  kills: { id: string; doneAtKill: number; leasedAtKill: number }[];
  /** Ingest workers' JSON summaries (`once` mode), by worker id. */
  ingestSummaries: Record<string, unknown>;
  audit: PipelineAudit;
  seconds: number;
}

async function counts(manifest: ManifestStore, stage: "ingest" | "normalize") {
  return (await manifest.workCounts(stage))[stage] ?? {};
}

/** Waits for `pred`, failing after `ms` with `what` and the workers' log tails. */
async function waitFor(
  pred: () => Promise<boolean>,
  ms: number,
  what: string,
  workers: StageWorker[],
): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await pred()) return;
    await sleep(50);
  }
  for (const w of workers) {
    try {
      w.child.kill("SIGKILL");
    } catch { /* gone */ }
  }
  const tails = await Promise.all(
    workers.map(async (w) => `${w.stage} ${w.id}: ${(await w.done).stderr.slice(-1500)}`),
  );
  throw new Error(`timed out after ${ms} ms waiting for ${what}\n${tails.join("\n")}`);
}

async function killMidBatch(
  env: PipelineEnv,
  workers: StageWorker[],
  victim: StageWorker,
  total: number,
): Promise<PipelineRun["kills"][number]> {
  const stage = victim.stage;
  const held = async () =>
    (await env.manifest.listWork(stage, "leased", total)).filter((r) => r.leaseOwner === victim.id)
      .length;
  // Mid-batch: a quarter of the stage done, and the victim holding leases.
  let leased = 0;
  await waitFor(
    async () =>
      ((await counts(env.manifest, stage)).done ?? 0) >= Math.ceil(total / 4) &&
      (leased = await held()) > 0,
    90_000,
    `${stage}: a quarter of the items done and ${victim.id} holding a lease`,
    workers,
  );
  victim.child.kill("SIGKILL");
  const c = await counts(env.manifest, stage);
  const { status } = await victim.done;
  if (status.signal !== "SIGKILL") {
    throw new Error(`${victim.id}: expected death by SIGKILL, found ${JSON.stringify(status)}`);
  }
  return { id: victim.id, doneAtKill: c.done ?? 0, leasedAtKill: leased };
}

/**
 * Two ingest and two normalize workers at once; with `kill`, one worker of each stage is killed
 * with SIGKILL once a quarter of its stage's items are done, and restarted with the same id.
 * Returns once both queues drained and the normalize workers stopped (exit 0 on SIGTERM).
 */
export async function drivePipeline(
  env: PipelineEnv,
  opts: { kill?: boolean; maxAttempts?: number } = {},
): Promise<PipelineRun> {
  const t0 = performance.now();
  const wopts = { maxAttempts: opts.maxAttempts };
  const ingest = ["i1", "i2"].map((id) => spawnStageWorker(env, "ingest", id, wopts));
  const normalize = ["n1", "n2"].map((id) => spawnStageWorker(env, "normalize", id, wopts));
  const all = () => [...ingest, ...normalize];
  const kills: PipelineRun["kills"] = [];
  const killed = new Set<StageWorker>();
  const live = (ws: StageWorker[]) => ws.filter((w) => !killed.has(w));
  try {
    if (opts.kill) {
      for (const ws of [ingest, normalize]) {
        killed.add(ws[0]);
        kills.push(await killMidBatch(env, all(), ws[0], env.images));
        ws.push(spawnStageWorker(env, ws[0].stage, ws[0].id, wopts));
      }
    }
    await waitFor(
      () => Promise.resolve(ingest.every((w) => w.exited)),
      120_000,
      "the ingest workers (once) to exit",
      all(),
    );
    const ingestSummaries: Record<string, unknown> = {};
    for (const w of live(ingest)) {
      const { status, stdout, stderr } = await w.done;
      if (status.code !== 0) {
        throw new Error(
          `ingest ${w.id}: expected exit 0, found ${status.code}\n${stderr.slice(-2000)}`,
        );
      }
      try {
        ingestSummaries[w.id] = (JSON.parse(stdout) as { worker: unknown }).worker;
      } catch {
        ingestSummaries[w.id] = stdout.slice(0, 200);
      }
    }
    await waitFor(
      async () => {
        const c = await counts(env.manifest, "normalize");
        const n = (await counts(env.manifest, "ingest")).done ?? 0;
        return (c.done ?? 0) + (c.failed ?? 0) >= n && (c.pending ?? 0) + (c.leased ?? 0) === 0;
      },
      120_000,
      "the normalize queue to drain",
      all(),
    );
    for (const w of live(normalize)) w.child.kill("SIGTERM");
    for (const w of live(normalize)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        w.done,
        new Promise<null>((res) => timer = setTimeout(() => res(null), 20_000)),
      ]);
      clearTimeout(timer);
      if (r === null) throw new Error(`normalize ${w.id}: expected exit within 20 s of SIGTERM`);
      if (r.status.code !== 0) {
        throw new Error(
          `normalize ${w.id}: expected exit 0 on SIGTERM, found ${r.status.code}\n` +
            r.stderr.slice(-2000),
        );
      }
    }
    const audit = await auditPipeline({
      manifest: env.manifest,
      store: env.store,
      sources: env.images,
      puts: env.proxy.puts,
      stagingRoots: [env.stagingRoot],
    });
    return { kills, ingestSummaries, audit, seconds: (performance.now() - t0) / 1000 };
  } finally {
    for (const w of all()) {
      if (!w.exited) {
        try {
          w.child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await w.done;
    }
  }
}

/**
 * Queue benchmark: claim + complete throughput of the manifest work queue, for several worker
 * counts and claim batch sizes, on SQLite (one file) and PostgreSQL (the throwaway cluster of
 * `tests/harness/postgres.ts`: fsync off, so it measures CPU and round trips, not the disk; set
 * `SLUICE_TEST_POSTGRES_URL` for a real server). Every worker is its own store (its own
 * connections, as separate processes would have). Each item completes with one follow-up
 * enqueue, as a pipeline hop does. Two paths are timed in the same run:
 *
 * - `single`: `claim(max = batch)` then `complete(claim, effects)` per item (one transaction
 *   each, all of a batch in flight at once): the path the worker loop used before batching;
 * - `batched`: `claim(max = batch)` then one `completeMany` for the batch;
 * - `pipelined`: as `batched`, with the next claim in flight while the batch completes (what the
 *   worker loop does with `prefetch` and `completionBatch`).
 *
 * Each run checks exactly-once: every item completed once, the stage all `done`, one follow-up
 * per item. Then it measures manifest growth on a fresh database: `--growth N` images recorded
 * as the pipeline does (source object, ingest with metadata, normalize and infer hops) and the
 * bytes per image of each table with its indexes (PostgreSQL `pg_total_relation_size`, SQLite the
 * file size).
 *
 * Options: `--items N` (default 20000), `--workers 1,4,16`, `--batch 10,100`,
 * `--backends sqlite,postgres`, `--paths single,batched,pipelined`, `--growth N` (10000; 0 skips), `--json`.
 *
 * @example
 * ```sh
 * deno task bench queue --items 100000 --workers 1,4,16 --batch 10,100,500
 * ```
 * @module
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import type { Claim, ManifestStore } from "../../common/manifest/mod.ts";
import { openPostgresManifest } from "../../common/manifest/postgres.ts";
import { openSqliteManifest } from "../../common/manifest/sqlite.ts";
import { startPostgres } from "../harness/postgres.ts";
import postgres from "postgres";

const list = (what: string) =>
  z.string().transform((s, ctx) => {
    const v = s.split(",").map(Number);
    if (v.some((n) => !Number.isInteger(n) || n < 1)) {
      ctx.addIssue({ code: "custom", message: `${what}: expected integers >= 1, found ${s}` });
    }
    return v;
  });

const OptionsSchema = z.object({
  items: z.coerce.number().int().min(1),
  workers: list("--workers"),
  batch: list("--batch"),
  backends: z.string().transform((s) => s.split(",")).pipe(
    z.array(z.enum(["sqlite", "postgres"])),
  ),
  paths: z.string().transform((s) => s.split(",")).pipe(
    z.array(z.enum(["single", "batched", "pipelined"])),
  ),
  growth: z.coerce.number().int().min(0),
  json: z.boolean(),
});

/** One timed drain. */
export interface QueueResult {
  backend: "sqlite" | "postgres";
  path: Path;
  workers: number;
  batch: number;
  items: number;
  seconds: number;
  perSecond: number;
}

type Open = () => Promise<ManifestStore>;

type Path = "single" | "batched" | "pipelined";

async function drain(
  stores: ManifestStore[],
  stage: string,
  path: Path,
  batch: number,
  completions: Map<string, number>,
): Promise<void> {
  await Promise.all(stores.map(async (s, w) => {
    const claim = () => s.claim(stage, { max: batch, owner: `w${w}`, leaseMs: 600_000 });
    let next: Promise<Claim[]> | null = null;
    while (true) {
      const claims: Claim[] = await (next ?? claim());
      next = null;
      if (claims.length === 0) return;
      // Pipelined: the next batch is claimed while this one completes (the worker loop's
      // prefetch buffer), on the same store's connection pool.
      if (path === "pipelined") next = claim();
      const requests = claims.map((claim) => ({
        claim,
        effects: { enqueue: [{ stage: `${stage}-next`, itemId: claim.itemId }] },
      }));
      if (path === "single") {
        await Promise.all(requests.map((r) => s.complete(r.claim, r.effects)));
      } else {
        for (const o of await s.completeMany(requests)) {
          if (!o.ok) {
            throw new SluiceError(
              "bench_failed",
              `${stage}/${o.claim.itemId}: expected completion, found ${String(o.error)}`,
            );
          }
        }
      }
      for (const c of claims) completions.set(c.itemId, (completions.get(c.itemId) ?? 0) + 1);
    }
  }));
}

async function measure(
  backend: "sqlite" | "postgres",
  open: Open,
  o: z.output<typeof OptionsSchema>,
  results: QueueResult[],
): Promise<void> {
  const admin = await open();
  await admin.migrate();
  let run = 0;
  try {
    for (const workers of o.workers) {
      for (const batch of o.batch) {
        for (const path of o.paths) {
          const stage = `q${++run}`;
          const ids = Array.from({ length: o.items }, (_, i) => `i${String(i).padStart(9, "0")}`);
          await admin.enqueue(stage, ids);
          const stores: ManifestStore[] = [];
          for (let i = 0; i < workers; i++) stores.push(await open());
          // Connections open lazily: open each store's two before the clock starts (32
          // connection set-ups at 16 workers would otherwise be timed as queue work).
          await Promise.all(stores.map((s) => Promise.all([s.workCounts(stage), s.stats()])));
          const completions = new Map<string, number>();
          const t0 = performance.now();
          try {
            await drain(stores, stage, path, batch, completions);
          } finally {
            for (const s of stores) await s.close();
          }
          const seconds = (performance.now() - t0) / 1000;
          const counts = (await admin.workCounts())[stage];
          const next = (await admin.workCounts())[`${stage}-next`];
          const twice = [...completions.values()].filter((n) => n !== 1).length;
          if (
            counts?.done !== o.items || completions.size !== o.items || twice > 0 ||
            next?.pending !== o.items
          ) {
            throw new SluiceError(
              "bench_failed",
              `${backend} ${path} ${workers}w b${batch}: expected ${o.items} items done once ` +
                `with ${o.items} follow-ups, found done=${counts?.done} completed=${completions.size} ` +
                `twice=${twice} follow-ups=${next?.pending}`,
            );
          }
          const r: QueueResult = {
            backend,
            path,
            workers,
            batch,
            items: o.items,
            seconds,
            perSecond: o.items / seconds,
          };
          results.push(r);
          if (!o.json) {
            console.log(
              `${backend.padEnd(8)} ${path.padEnd(7)} workers=${String(workers).padStart(2)} ` +
                `batch=${String(batch).padStart(4)}  ${
                  Math.round(r.perSecond).toString().padStart(7)
                } ` +
                `claim+complete/s  (${o.items} items in ${seconds.toFixed(2)} s, exactly once)`,
            );
          }
        }
      }
    }
  } finally {
    await admin.close();
  }
}

/** Bytes on disk per table (tables with their indexes and TOAST). */
type SizeOf = () => Promise<Record<string, number>>;

function pgSizeOf(url: string): SizeOf {
  return async () => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql.unsafe<{ name: string; bytes: string }[]>(
        `SELECT c.relname AS name, pg_total_relation_size(c.oid)::text AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r'`,
      );
      return Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
    } finally {
      await sql.end({ timeout: 5 });
    }
  };
}

function sqliteSizeOf(path: string): SizeOf {
  return async () => {
    let bytes = 0;
    for (const f of [path, `${path}-wal`]) {
      try {
        bytes += (await stat(f)).size;
      } catch {
        // no WAL file
      }
    }
    return { "(whole file)": bytes };
  };
}

/**
 * Manifest growth: `n` images through the queue as the pipeline records them (source object,
 * ingest completion with the image's metadata, normalize and infer hops), then the bytes per
 * image of every table with its indexes. Variants, annotations and predictions rows are not
 * written here (their size depends on the stage settings).
 */
async function growth(
  backend: string,
  open: Open,
  sizeOf: SizeOf,
  n: number,
  json: boolean,
): Promise<Record<string, number>> {
  const store = await open();
  try {
    await store.migrate();
    const before = await sizeOf();
    const t0 = performance.now();
    // As discovery records them: 500 keys per upsertSourceObjects transaction.
    for (let i = 0; i < n; i += 500) {
      await store.upsertSourceObjects(
        Array.from({ length: Math.min(500, n - i) }, (_, j) => {
          const key = `growth/${String(i + j).padStart(9, "0")}.jpg`;
          return {
            sourceUri: `s3://bench/${key}`,
            sourceKey: key,
            etag: `"${(i + j).toString(16).padStart(32, "0")}"`,
            size: 250_000,
          };
        }),
      );
    }
    const workers: ManifestStore[] = [];
    for (let w = 0; w < 8; w++) workers.push(await open());
    try {
      for (
        const [stage, next] of [["ingest", "normalize"], ["normalize", "infer"], ["infer", ""]]
      ) {
        await Promise.all(workers.map(async (s, w) => {
          while (true) {
            const claims = await s.claim(stage, { max: 200, owner: `g${w}`, leaseMs: 600_000 });
            if (claims.length === 0) return;
            const out = await s.completeMany(claims.map((claim) => ({
              claim,
              effects: {
                ...(stage === "ingest"
                  ? {
                    image: {
                      status: "ingested" as const,
                      sha256: claim.itemId.padEnd(64, "0").slice(0, 64),
                      width: 1920,
                      height: 1080,
                      format: "jpeg",
                    },
                  }
                  : {}),
                enqueue: next ? [{ stage: next, itemId: claim.itemId }] : [],
              },
            })));
            const bad = out.find((o) => !o.ok);
            if (bad && !bad.ok) {
              throw new SluiceError(
                "bench_failed",
                `growth ${stage}/${bad.claim.itemId}: expected completion, found ${
                  String(bad.error)
                }`,
              );
            }
          }
        }));
      }
    } finally {
      for (const s of workers) await s.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    const after = await sizeOf();
    const perImage: Record<string, number> = {};
    let total = 0;
    for (const [name, bytes] of Object.entries(after)) {
      const grown = bytes - (before[name] ?? 0);
      if (grown <= 0) continue;
      perImage[name] = grown / n;
      total += grown;
    }
    perImage.total = total / n;
    if (!json) {
      console.log(
        `${backend} manifest growth over ${n} images (${seconds.toFixed(1)} s): ` +
          Object.entries(perImage).map(([k, v]) => `${k} ${Math.round(v)} B`).join(", ") +
          " per image (tables + indexes)",
      );
    }
    return perImage;
  } finally {
    await store.close();
  }
}

/**
 * Runs the benchmark (see the module docs for options) and prints one line per drain plus the
 * batched/single ratio for each (backend, workers, batch).
 *
 * @example
 * ```ts
 * await run(["--items", "2000", "--workers", "4", "--batch", "50"]);
 * ```
 */
export async function run(args: string[]): Promise<QueueResult[]> {
  const { values } = parseArgs({
    args,
    options: {
      items: { type: "string", default: "20000" },
      workers: { type: "string", default: "1,4,16" },
      batch: { type: "string", default: "10,100" },
      backends: { type: "string", default: "sqlite,postgres" },
      paths: { type: "string", default: "single,batched,pipelined" },
      growth: { type: "string", default: "10000" },
      json: { type: "boolean", default: false },
    },
  });
  const parsed = OptionsSchema.safeParse(values);
  if (!parsed.success) {
    throw new SluiceError("invalid_options", `bench queue: ${z.prettifyError(parsed.error)}`);
  }
  const o = parsed.data;
  const results: QueueResult[] = [];
  for (const backend of o.backends) {
    if (backend === "sqlite") {
      const dir = await mkdtemp(join(tmpdir(), "bench-queue-"));
      try {
        const url = `sqlite://${join(dir, "m.db")}`;
        await measure("sqlite", () => openSqliteManifest(url), o, results);
        if (o.growth > 0) {
          const g = join(dir, "growth.db");
          await growth(
            "sqlite",
            () => openSqliteManifest(`sqlite://${g}`),
            sqliteSizeOf(g),
            o.growth,
            o.json,
          );
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } else {
      const server = await startPostgres();
      try {
        await measure(
          "postgres",
          () => openPostgresManifest(server.url, { maxConnections: 2 }),
          o,
          results,
        );
        if (o.growth > 0) {
          const g = await startPostgres();
          try {
            await growth(
              "postgres",
              () => openPostgresManifest(g.url, { maxConnections: 2 }),
              pgSizeOf(g.url),
              o.growth,
              o.json,
            );
          } finally {
            await g.stop();
          }
        }
      } finally {
        await server.stop();
      }
    }
  }
  for (const r of results.filter((r) => r.path !== "single")) {
    const base = results.find((s) =>
      s.path === "single" && s.backend === r.backend && s.workers === r.workers &&
      s.batch === r.batch
    );
    if (base && !o.json) {
      console.log(
        `${r.backend} workers=${r.workers} batch=${r.batch}: ${r.path} ${
          (r.perSecond / base.perSecond).toFixed(1)
        }× single`,
      );
    }
  }
  if (o.json) console.log(JSON.stringify(results));
  return results;
}

/**
 * Discovery benchmark: keys per second through the S3 test server (the in-process emulator of
 * `tests/harness/s3.ts`, or `SLUICE_TEST_S3_ENDPOINT`) for
 *
 * - `list`: one ListObjectsV2 stream (1,000 keys per page), listing only;
 * - `parallel list`: 16 streams, one per hex prefix (`discoverPrefixes`' split), listing only;
 * - `inventory csv` / `inventory parquet`: reading an S3 Inventory report of the same keys
 *   (gzip CSV / Parquet, 4 data files) from the same server;
 * - `discover list` / `discover parallel` / `discover inventory`: the full discovery into a
 *   SQLite manifest (upserts in groups of 500 keys, one transaction each), on `--discover-keys`
 *   keys (default: all).
 *
 * Keys are `imgs/<8 hex>.jpg` (hashed layout), each object a few bytes.
 *
 * Options: `--keys N` (default 10000), `--discover-keys N`, `--json`.
 *
 * @example
 * ```sh
 * deno task bench discover --keys 100000 --discover-keys 10000
 * ```
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import { openSqliteManifest } from "../../common/manifest/sqlite.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import { discoverSource } from "../../stages/ingest/discover.ts";
import { discoverPrefixes, hexPrefixes } from "../../stages/ingest/discover_prefixes.ts";
import {
  discoverInventory,
  inventoryFileObjects,
  readInventoryManifest,
} from "../../stages/ingest/inventory.ts";
import { sourceLocation } from "../../stages/ingest/source_location.ts";
import { startS3Server } from "../harness/s3.ts";
import { type InventoryRow, writeInventoryReport } from "../support/s3_inventory.ts";

const OptionsSchema = z.object({
  keys: z.coerce.number().int().min(16),
  "discover-keys": z.coerce.number().int().min(0).optional(),
  json: z.boolean(),
});

/** One timed pass. */
export interface DiscoverResult {
  what: string;
  keys: number;
  seconds: number;
  perSecond: number;
}

async function timed(what: string, fn: () => Promise<number>, out: DiscoverResult[]) {
  const t0 = performance.now();
  const keys = await fn();
  const seconds = (performance.now() - t0) / 1000;
  out.push({ what, keys, seconds, perSecond: keys / seconds });
}

async function countList(store: ObjectStore, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of store.list({ prefix, pageSize: 1000 })) n++;
  return n;
}

/**
 * Runs the benchmark (see the module docs).
 *
 * @example
 * ```ts
 * await run(["--keys", "2000"]);
 * ```
 */
export async function run(args: string[]): Promise<DiscoverResult[]> {
  const { values } = parseArgs({
    args,
    options: {
      keys: { type: "string", default: "10000" },
      "discover-keys": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const parsed = OptionsSchema.safeParse(values);
  if (!parsed.success) {
    throw new SluiceError("invalid_options", `bench discover: ${z.prettifyError(parsed.error)}`);
  }
  const o = parsed.data;
  const server = await startS3Server();
  const dir = await mkdtemp(join(tmpdir(), "bench-discover-"));
  const results: DiscoverResult[] = [];
  const s3 = {
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
  };
  try {
    await server.createBucket("bench-raw");
    await server.createBucket("bench-inv");
    const source = await openObjectStore("s3://bench-raw", { s3 });
    const inventory = await openObjectStore("s3://bench-inv", { s3 });
    try {
      const rows: InventoryRow[] = [];
      const t0 = performance.now();
      for (let i = 0; i < o.keys; i += 200) {
        const part = await Promise.all(
          Array.from({ length: Math.min(200, o.keys - i) }, async (_, j) => {
            const hex = (((i + j) * 2654435761) >>> 0).toString(16).padStart(8, "0");
            const info = await source.put(
              `imgs/${hex}-${i + j}.jpg`,
              new Uint8Array([i + j & 255]),
            );
            return { key: info.key, size: info.size, etag: info.etag };
          }),
        );
        rows.push(...part);
      }
      if (!o.json) {
        console.log(
          `seeded ${o.keys} objects in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
      }
      const reports: Record<string, string> = {};
      for (const format of ["CSV", "Parquet"] as const) {
        reports[format] = await writeInventoryReport(inventory, {
          prefix: "inv",
          sourceBucket: "bench-raw",
          config: format.toLowerCase(),
          format,
          rows,
          files: 4,
        });
      }

      const expect = (what: string, n: number) => {
        if (n !== o.keys) {
          throw new SluiceError("bench_failed", `${what}: expected ${o.keys} keys, found ${n}`);
        }
        return n;
      };
      await timed("list", async () => expect("list", await countList(source, "imgs/")), results);
      await timed("parallel list (16 prefixes)", async () => {
        const counts = await Promise.all(hexPrefixes("imgs/").map((p) => countList(source, p)));
        return expect("parallel list", counts.reduce((a, b) => a + b, 0));
      }, results);
      for (const format of ["CSV", "Parquet"] as const) {
        await timed(`inventory ${format.toLowerCase()} (read)`, async () => {
          const m = await readInventoryManifest(inventory, reports[format]);
          const counts = await Promise.all(m.files.map(async (f) => {
            let n = 0;
            for await (const _ of inventoryFileObjects(inventory, m, f.key)) n++;
            return n;
          }));
          return expect(`inventory ${format}`, counts.reduce((a, b) => a + b, 0));
        }, results);
      }

      const dk = Math.min(o["discover-keys"] ?? o.keys, o.keys);
      if (dk > 0) {
        // Full discovery (listing + one manifest upsert per key) on the first `dk` keys' worth:
        // a fresh SQLite manifest per method.
        const location = sourceLocation({
          sourceUrl: source.url,
          prefix: "imgs/",
          suffixes: [".jpg"],
        });
        const limited = rows.slice(0, dk);
        const invReport = await writeInventoryReport(inventory, {
          prefix: "inv-limited",
          sourceBucket: "bench-raw",
          config: "csv",
          format: "CSV",
          rows: limited,
          files: 4,
        });
        const fresh = async (name: string) => {
          const m = await openSqliteManifest(`sqlite://${join(dir, `${name}.db`)}`);
          await m.migrate();
          return m;
        };
        const m1 = await fresh("list");
        await timed("discover list (into SQLite)", async () => {
          const s = await discoverSource({
            manifest: m1,
            source,
            location,
            pageSize: 1000,
            maxObjects: dk,
          });
          return s.created;
        }, results);
        await m1.close();
        const m3 = await fresh("inventory");
        await timed("discover inventory csv (into SQLite)", async () => {
          const s = await discoverInventory({
            manifest: m3,
            source,
            location,
            inventoryStore: inventory,
            report: invReport,
          });
          return s.created;
        }, results);
        await m3.close();
        if (dk === o.keys) {
          const m2 = await fresh("parallel");
          await timed("discover parallel list (into SQLite)", async () => {
            const s = await discoverPrefixes({
              manifest: m2,
              source,
              location,
              pageSize: 1000,
              prefixes: hexPrefixes("imgs/"),
            });
            return s.created;
          }, results);
          await m2.close();
        }
      }
    } finally {
      await source.close();
      await inventory.close();
    }
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
  if (o.json) console.log(JSON.stringify(results));
  else {
    for (const r of results) {
      console.log(
        `${r.what.padEnd(38)} ${Math.round(r.perSecond).toString().padStart(8)} keys/s ` +
          `(${r.keys} keys in ${r.seconds.toFixed(2)} s)`,
      );
    }
  }
  return results;
}

/**
 * How the ingest stage discovers its source, chosen in its config (`ingest.discovery`):
 *
 * - `list` (default): one ListObjectsV2 pass (`discoverSource`);
 * - `prefixes`: one pass per prefix, `discoveryConcurrency` at once, each with its own
 *   checkpoint (`discoverPrefixes`); the prefixes are `discoveryPrefixes`, by default the 16
 *   hex digits after `ingest.prefix` (a hashed key layout);
 * - `inventory`: the newest S3 Inventory report under `inventoryUri` (CSV or Parquet), applied
 *   file by file (`discoverInventory`); `maxObjects` does not apply (a report resumes by file).
 *
 * Each mode answers with the same {@link DiscoverSummary}, so poll and reconcile loops do not
 * care which one ran.
 *
 * @example
 * ```ts
 * const summary = await discoverByMode(config.stage, { manifest, source, location, pageSize },
 *   (uri) => openObjectStore(uri, { s3: config.s3 }));
 * ```
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { type DiscoverOptions, discoverSource, type DiscoverSummary } from "./discover.ts";
import { discoverPrefixes, hexPrefixes } from "./discover_prefixes.ts";
import { discoverInventory, latestInventoryReport } from "./inventory.ts";

/** The config fields of `ingest` that choose the discovery (spread into its schema). */
export const DISCOVERY_SETTINGS = {
  discovery: z.enum(["list", "prefixes", "inventory"]).default("list").describe(
    "How once/poll/reconcile passes find source objects: list | prefixes | inventory",
  ),
  discoveryPrefixes: z.array(z.string().min(1)).optional().describe(
    "prefixes mode: key prefixes listed in parallel (default: prefix + each hex digit)",
  ),
  discoveryConcurrency: z.int().min(1).max(256).default(16).describe(
    "prefixes mode: prefixes listed at once",
  ),
  inventoryUri: z.string().regex(/^[a-z][a-z0-9+.-]*:\/\//, {
    error: "expected a URI such as s3://inventory-bucket/inv/raw/daily/",
  }).optional().describe(
    "inventory mode: destination bucket and path of the source's S3 Inventory configuration " +
      "(s3://bucket/<prefix>/<source bucket>/<config id>/); its newest report is applied",
  ),
};

/** The settings {@link discoverByMode} reads. */
export interface DiscoverySettings {
  prefix: string;
  discovery: "list" | "prefixes" | "inventory";
  discoveryPrefixes?: string[];
  discoveryConcurrency: number;
  inventoryUri?: string;
}

/**
 * Runs one discovery pass the configured way (see the module docs).
 *
 * @example
 * ```ts
 * await discoverByMode({ ...settings, discovery: "prefixes" }, opts, openStore);
 * ```
 */
export async function discoverByMode(
  s: DiscoverySettings,
  opts: DiscoverOptions,
  openStore: (uri: string) => Promise<ObjectStore>,
): Promise<DiscoverSummary> {
  if (s.discovery === "list") return await discoverSource(opts);
  if (s.discovery === "prefixes") {
    const r = await discoverPrefixes({
      ...opts,
      prefixes: s.discoveryPrefixes ?? hexPrefixes(opts.location.prefix),
      concurrency: s.discoveryConcurrency,
    });
    const passes = Object.values(r.byPrefix).map((p) => p.pass);
    const { byPrefix: _, ...totals } = r;
    return { ...totals, resumedAfter: null, pass: passes.length ? Math.min(...passes) : 1 };
  }
  if (!s.inventoryUri) {
    throw new SluiceError(
      "invalid_config",
      "ingest.inventoryUri: expected the URI of the inventory reports when discovery is " +
        "inventory, found none",
    );
  }
  const empty: DiscoverSummary = {
    listed: 0,
    seen: 0,
    skipped: 0,
    created: 0,
    changed: 0,
    unchanged: 0,
    complete: false,
    resumedAfter: null,
    pass: 1,
  };
  // Data files are named by their key in the destination bucket: open the bucket, list the path.
  const { root, prefix } = bucketAndPrefix(s.inventoryUri);
  const inventoryStore = await openStore(root);
  try {
    const report = await latestInventoryReport(inventoryStore, prefix);
    if (report === null) {
      opts.log?.warn("no inventory report found", { inventoryUri: s.inventoryUri });
      return empty;
    }
    const r = await discoverInventory({
      manifest: opts.manifest,
      source: opts.source,
      location: opts.location,
      inventoryStore,
      report,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    return {
      ...empty,
      listed: r.listed,
      seen: r.seen,
      skipped: r.skipped,
      created: r.created,
      changed: r.changed,
      unchanged: r.unchanged,
      complete: r.complete,
    };
  } finally {
    await inventoryStore.close();
  }
}

/** `s3://bucket/a/b/` → `{ root: "s3://bucket", prefix: "a/b/" }`; other schemes: no prefix. */
function bucketAndPrefix(uri: string): { root: string; prefix: string } {
  const m = /^(s3:\/\/[^/]+)\/?(.*)$/.exec(uri);
  if (!m) return { root: uri, prefix: "" };
  const path = m[2];
  return { root: m[1], prefix: path === "" || path.endsWith("/") ? path : `${path}/` };
}

/**
 * Discovery by listing: ListObjectsV2 over the source (page by page), the suffix filter, and
 * an idempotent upsert per object (recorded in groups, `UpsertBuffer`) keyed by source URI + etag/version, so re-listing never
 * re-ingests an unchanged object. A checkpoint in the manifest (`getCheckpoint`/
 * `setCheckpoint`) remembers the last key of an unfinished pass, so a pass cut short (by a
 * budget, a shutdown or a crash) resumes where it stopped; a finished pass starts the next one
 * from the beginning, which is how changed and re-created objects are found.
 *
 * In events mode the same listing reconciles: whatever it finds new or changed was missed by
 * the notifier, and is counted in `sluice_ingest_found_by_reconcile_total`.
 *
 * @example
 * ```ts
 * const s = await discoverSource({ manifest, source, location, pageSize: 1000, log });
 * console.log(`${s.created} new, ${s.changed} changed, ${s.unchanged} unchanged`);
 * ```
 * @module
 */
import { z } from "zod";
import type { Logger } from "../../common/log/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { IngestMetrics } from "./metrics.ts";
import { type SourceLocation, sourceUriFor } from "./source_location.ts";
import { recordedKey } from "./recorded_key.ts";
import { recordUnsupportedSuffix } from "./refused_suffix.ts";
import { UPSERT_GROUP, UpsertBuffer } from "./upsert_buffer.ts";

export interface DiscoverOptions {
  manifest: ManifestStore;
  source: ObjectStore;
  location: SourceLocation;
  /** Keys per listing page. */
  pageSize: number;
  /** A reconciling pass (events mode): new and changed objects are counted as missed events. */
  reconcile?: boolean;
  /** Stop after this many listed keys; the checkpoint lets the next call go on from there. */
  maxObjects?: number;
  /** Aborting stops after the current object, keeping the checkpoint. */
  signal?: AbortSignal;
  metrics?: IngestMetrics;
  log?: Logger;
}

/** What one call did. */
export interface DiscoverSummary {
  /** Keys listed (accepted or not). */
  listed: number;
  /** Keys with an accepted suffix, upserted. */
  seen: number;
  /** Keys refused by the suffix filter (recorded `failed`, `unsupported_suffix`). */
  skipped: number;
  created: number;
  changed: number;
  unchanged: number;
  /** True when the pass reached the end of the listing. */
  complete: boolean;
  /** The key this call resumed after (an earlier pass was cut short), or null. */
  resumedAfter: string | null;
  /** Number of the pass (1 for the first pass ever over this source and prefix). */
  pass: number;
}

/** The checkpoint stored in the manifest. */
export const ListCheckpointSchema = z.object({
  /** Last key handled by an unfinished pass; `""` when the next pass starts afresh. */
  startAfter: z.string(),
  /** Passes finished so far. */
  passes: z.int().min(0),
  updatedAt: z.number(),
});
export type ListCheckpoint = z.infer<typeof ListCheckpointSchema>;

/**
 * The manifest checkpoint name of a listing over a source and prefix.
 *
 * @example
 * ```ts
 * listCheckpointName("s3://raw", "cams/"); // "ingest:list:s3://raw|cams/"
 * ```
 */
export function listCheckpointName(sourceUrl: string, prefix: string): string {
  return `ingest:list:${sourceUrl}|${prefix}`;
}

/**
 * Reads a listing checkpoint; a missing or unreadable one means "start afresh".
 *
 * @example
 * ```ts
 * const cp = await readListCheckpoint(manifest, listCheckpointName(source.url, ""));
 * ```
 */
export async function readListCheckpoint(
  manifest: ManifestStore,
  name: string,
  log?: Logger,
): Promise<ListCheckpoint> {
  const raw = await manifest.getCheckpoint(name);
  if (raw === null) return { startAfter: "", passes: 0, updatedAt: 0 };
  try {
    return ListCheckpointSchema.parse(JSON.parse(raw));
  } catch {
    log?.warn("listing checkpoint unreadable: starting a fresh pass", { checkpoint: name, raw });
    return { startAfter: "", passes: 0, updatedAt: 0 };
  }
}

/**
 * Lists the source (resuming an unfinished pass) and upserts every accepted object.
 *
 * @example
 * ```ts
 * await discoverSource({ manifest, source, location, pageSize: 2, maxObjects: 3 }); // cut short
 * await discoverSource({ manifest, source, location, pageSize: 2 }); // resumes after key 3
 * ```
 */
export async function discoverSource(opts: DiscoverOptions): Promise<DiscoverSummary> {
  const { manifest, source, location, metrics, log } = opts;
  const name = listCheckpointName(source.url, location.prefix);
  const cp = await readListCheckpoint(manifest, name, log);
  const summary: DiscoverSummary = {
    listed: 0,
    seen: 0,
    skipped: 0,
    created: 0,
    changed: 0,
    unchanged: 0,
    complete: false,
    resumedAfter: cp.startAfter === "" ? null : cp.startAfter,
    pass: cp.passes + 1,
  };
  const via = opts.reconcile ? "reconcile" : "list";
  // Keys are upserted in groups; a checkpoint is written only once its keys are recorded.
  const upserts = new UpsertBuffer(manifest, Math.min(opts.pageSize, UPSERT_GROUP));
  const save = async (startAfter: string, passes: number) => {
    await upserts.flush();
    await manifest.setCheckpoint(
      name,
      JSON.stringify({ startAfter, passes, updatedAt: Date.now() }),
    );
  };

  let last = cp.startAfter;
  let sinceSave = 0;
  let stopped = false;
  for await (
    const obj of source.list({
      prefix: location.prefix,
      pageSize: opts.pageSize,
      ...(cp.startAfter ? { startAfter: cp.startAfter } : {}),
    })
  ) {
    if (
      opts.signal?.aborted || (opts.maxObjects !== undefined && summary.listed >= opts.maxObjects)
    ) {
      stopped = true;
      break;
    }
    summary.listed++;
    if (!location.accepts(obj.key)) {
      summary.skipped++;
      const { etag, versionId, size } = obj;
      await recordUnsupportedSuffix({ ...opts, key: obj.key, etag: etag || null, versionId, size });
    } else {
      summary.seen++;
      metrics?.objectsSeen.inc({ via });
      await upserts.add({
        sourceUri: sourceUriFor(source, recordedKey(obj.key)),
        sourceKey: recordedKey(obj.key),
        etag: obj.etag || null,
        versionId: obj.versionId ?? null,
        size: obj.size,
      }, (r) => {
        if (r.created) summary.created++;
        else if (r.changed) summary.changed++;
        else summary.unchanged++;
        if (opts.reconcile && (r.created || r.changed)) {
          metrics?.foundByReconcile.inc();
          log?.info("reconciliation found an object no event announced", {
            key: obj.key,
            item: r.image.id,
            change: r.created ? "new" : "changed",
          });
        }
      });
    }
    last = obj.key;
    if (++sinceSave >= opts.pageSize) {
      sinceSave = 0;
      await save(last, cp.passes);
    }
  }
  if (stopped) {
    await save(last, cp.passes);
  } else {
    summary.complete = true;
    await save("", cp.passes + 1);
  }
  log?.info(opts.reconcile ? "reconciling list done" : "listing done", { ...summary });
  return summary;
}

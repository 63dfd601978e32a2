/**
 * Records S3 events in the manifest: creations as idempotent upserts (a duplicate delivery of
 * the same etag changes nothing), removals as `markSourceDeleted`, both ordered per key by
 * `sequencer` (the manifest remembers the newest sequencer applied, so an older event that
 * arrives later, in this batch or a later one, is recognised as stale). Events for another
 * bucket, outside the source prefix, or with a suffix that is not accepted are ignored and
 * counted. When this returns, every accepted event is durably recorded.
 *
 * A creation that names no etag (MinIO's summary-only body, notifiers that leave `eTag` out) is
 * completed from a HEAD of the object first: recorded with a null etag, the next listing would
 * see the object's etag as a change and ingest it a second time.
 *
 * @example
 * ```ts
 * const { events } = parseS3Notification(body);
 * const s = await applySourceEvents(events, { manifest, source, location, origin: "webhook" });
 * ```
 * @module
 */
import type { Logger } from "../../common/log/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import { isStaleSequencer } from "../../common/manifest/sequencer.ts";
import { messageOf } from "../../common/errors/mod.ts";
import { type ObjectStore, validateKey } from "../../common/objectstore/mod.ts";
import { recordedKey } from "./recorded_key.ts";
import type { IngestMetrics } from "./metrics.ts";
import { orderEvents, type SourceEvent } from "./s3_event.ts";
import { type SourceLocation, sourceUriFor } from "./source_location.ts";
import { recordUnsupportedSuffix } from "./refused_suffix.ts";

/** Where events came from (a metrics label). */
export type EventOrigin = "webhook" | "sqs";

/** What happened to each event. */
export type EventResult =
  | "created"
  | "changed"
  | "unchanged"
  | "stale"
  | "removed"
  | "wrong_bucket"
  | "outside_prefix"
  | "ignored_suffix";

export interface ApplyOptions {
  manifest: ManifestStore;
  source: ObjectStore;
  location: SourceLocation;
  origin: EventOrigin;
  metrics?: IngestMetrics;
  log?: Logger;
  /** Clock for event lag (tests). */
  now?: () => number;
}

export interface ApplySummary {
  /** Events recorded (created + changed + unchanged + stale + removed). */
  accepted: number;
  /** Count per result. */
  results: Partial<Record<EventResult, number>>;
}

/**
 * Applies events in sequencer order per key. Throws when the manifest fails (nothing after the
 * failing event is applied; callers must not acknowledge the notification).
 *
 * @example
 * ```ts
 * const s = await applySourceEvents(events, { manifest, source, location, origin: "sqs" });
 * s.results.created; // new objects recorded
 * ```
 */
export async function applySourceEvents(
  events: readonly SourceEvent[],
  opts: ApplyOptions,
): Promise<ApplySummary> {
  const { manifest, source, location, origin, metrics, log } = opts;
  const now = opts.now ?? Date.now;
  const summary: ApplySummary = { accepted: 0, results: {} };
  const count = (r: EventResult) => {
    summary.results[r] = (summary.results[r] ?? 0) + 1;
    metrics?.events.inc({ source: origin, result: r });
  };
  for (const e of orderEvents(events)) {
    if (location.bucket === null || e.bucket !== location.bucket) {
      log?.warn("event for another bucket ignored", {
        bucket: e.bucket,
        expected: location.bucket,
        key: e.key,
      });
      count("wrong_bucket");
      continue;
    }
    const relative = location.relativeKey(e.key);
    const key = relative === null ? null : recordedKey(relative);
    if (key === null || !location.inPrefix(key)) {
      count("outside_prefix");
      continue;
    }
    if (!location.accepts(key)) {
      const { etag, versionId, size } = e;
      if (e.kind === "created") {
        await recordUnsupportedSuffix({ ...opts, key, etag, versionId, size });
      }
      count("ignored_suffix");
      continue;
    }
    const sourceUri = sourceUriFor(source, key);
    let result: EventResult;
    if (e.kind === "created") {
      metrics?.objectsSeen.inc({ via: origin });
      const filled = e.etag === null ? await headOf(source, key, log) : null;
      const r = await manifest.upsertSourceObject({
        sourceUri,
        sourceKey: key,
        etag: e.etag ?? filled?.etag ?? null,
        versionId: e.versionId ?? filled?.versionId ?? null,
        sequencer: e.sequencer,
        size: e.size ?? filled?.size ?? null,
      });
      result = r.stale ? "stale" : r.created ? "created" : r.changed ? "changed" : "unchanged";
    } else {
      // Read first only to label the outcome; markSourceDeleted itself ignores stale removals.
      const before = await manifest.getImageBySource(sourceUri);
      const stale = isStaleSequencer(e.sequencer, before?.sourceSequencer);
      await manifest.markSourceDeleted(sourceUri, e.sequencer);
      result = stale ? "stale" : "removed";
    }
    summary.accepted++;
    count(result);
    if (e.eventTime !== null) {
      metrics?.eventLag.observe({ source: origin }, (now() - e.eventTime) / 1000);
    }
    log?.debug("event recorded", {
      origin,
      event: e.eventName,
      key,
      sequencer: e.sequencer,
      result,
    });
  }
  return summary;
}

/**
 * The etag, size and version of an object an event did not describe; null when the key is one
 * the store refuses, the object is gone, or the HEAD fails (the event is still recorded).
 */
async function headOf(
  source: ObjectStore,
  key: string,
  log: Logger | undefined,
): Promise<{ etag: string | null; size: number; versionId: string | null } | null> {
  try {
    validateKey(key);
  } catch {
    return null;
  }
  try {
    const info = await source.head(key);
    if (info === null) return null;
    return { etag: info.etag || null, size: info.size, versionId: info.versionId ?? null };
  } catch (err) {
    log?.warn("could not complete an event without an etag from HEAD", {
      key,
      error: messageOf(err),
    });
    return null;
  }
}

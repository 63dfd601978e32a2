/**
 * Objects whose suffix ingest does not accept (an `.svg`, a `.txt`) still get a manifest row
 * with their verdict: `failed`, `unsupported_suffix: …`, nothing queued and nothing
 * downloaded, so that every object seen is accounted for (issue 12 item 8).
 *
 * @example
 * ```ts
 * if (!location.accepts(key)) await recordUnsupportedSuffix({ manifest, source, key });
 * ```
 * @module
 */
import type { Logger } from "../../common/log/mod.ts";
import type { ManifestStore, UpsertResult } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { IngestMetrics } from "./metrics.ts";
import { sourceUriFor } from "./source_location.ts";

/** The reason recorded for an object with a suffix ingest does not accept. */
export const UNSUPPORTED_SUFFIX = "unsupported_suffix";

/**
 * Records a refused object once (a row already there is left alone) and counts it as a failure
 * when the row is new.
 *
 * @example
 * ```ts
 * await recordUnsupportedSuffix({ manifest, source, key: "logo.svg", size: 120 });
 * ```
 */
export async function recordUnsupportedSuffix(o: {
  manifest: ManifestStore;
  source: ObjectStore;
  key: string;
  etag?: string | null;
  versionId?: string | null;
  size?: number | null;
  metrics?: IngestMetrics;
  log?: Logger;
}): Promise<UpsertResult> {
  const suffix = /\.[^./]*$/.exec(o.key)?.[0] ?? "(none)";
  const r = await o.manifest.recordRefusedSource(
    {
      sourceUri: sourceUriFor(o.source, o.key),
      sourceKey: o.key,
      etag: o.etag ?? null,
      versionId: o.versionId ?? null,
      size: o.size ?? null,
    },
    UNSUPPORTED_SUFFIX,
    `expected a key with an accepted suffix (ingest.suffixes), found ${suffix} in ${
      JSON.stringify(o.key)
    }`,
  );
  if (r.created) {
    o.metrics?.failures.inc({ reason: UNSUPPORTED_SUFFIX });
    o.log?.info("object refused: unsupported suffix", { key: o.key, item: r.image.id });
  }
  return r;
}

/**
 * Parallel listing: the source's key space split into prefixes, each listed by its own
 * `discoverSource` pass at the same time, each with its own checkpoint
 * (`listCheckpointName(source, prefix)`), so a cut-short run resumes every prefix where it
 * stopped. One LIST stream is bounded by round trips (1,000 keys per page); N streams list about
 * N times as fast until the store or the manifest saturates.
 *
 * The prefixes must cover the keys to discover (for example one per top-level folder, or the 16
 * hex digits under a hashed layout); each must lie under the location's prefix, and none may
 * contain another (a key would be listed twice).
 *
 * @example
 * ```ts
 * const prefixes = hexPrefixes("cams/"); // cams/0 ... cams/f
 * const s = await discoverPrefixes({ manifest, source, location, pageSize: 1000, prefixes });
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import { type DiscoverOptions, discoverSource, type DiscoverSummary } from "./discover.ts";
import type { SourceLocation } from "./source_location.ts";

export interface DiscoverPrefixesOptions extends DiscoverOptions {
  /** Sub-prefixes of `location.prefix`, listed in parallel. */
  prefixes: readonly string[];
  /** Prefixes listed at once (default: all of them). `maxObjects` applies to each prefix. */
  concurrency?: number;
}

/** Totals over all prefixes, and each prefix's own summary. */
export interface DiscoverPrefixesSummary extends Omit<DiscoverSummary, "resumedAfter" | "pass"> {
  byPrefix: Record<string, DiscoverSummary>;
}

/**
 * `prefix` followed by each of the 16 lower-case hex digits: a cover of a hashed key layout.
 *
 * @example
 * ```ts
 * hexPrefixes("cams/").length; // 16
 * ```
 */
export function hexPrefixes(prefix: string): string[] {
  return [..."0123456789abcdef"].map((c) => prefix + c);
}

function narrowed(location: SourceLocation, prefix: string): SourceLocation {
  return {
    ...location,
    prefix,
    inPrefix: (key) => key.startsWith(prefix),
    accepts: (key) => key.startsWith(prefix) && location.accepts(key),
  };
}

/**
 * Lists every prefix (at most `concurrency` at once) and upserts what it finds.
 *
 * @example
 * ```ts
 * await discoverPrefixes({ manifest, source, location, pageSize: 1000, prefixes: ["a/", "b/"] });
 * ```
 */
export async function discoverPrefixes(
  opts: DiscoverPrefixesOptions,
): Promise<DiscoverPrefixesSummary> {
  const prefixes = [...new Set(opts.prefixes)].sort();
  for (const p of prefixes) {
    if (!p.startsWith(opts.location.prefix)) {
      throw new SluiceError(
        "invalid_options",
        `prefix ${JSON.stringify(p)}: expected one under ${JSON.stringify(opts.location.prefix)}`,
      );
    }
  }
  for (let i = 1; i < prefixes.length; i++) {
    if (prefixes[i].startsWith(prefixes[i - 1])) {
      throw new SluiceError(
        "invalid_options",
        `prefixes ${JSON.stringify(prefixes[i - 1])} and ${
          JSON.stringify(prefixes[i])
        }: expected none inside another (keys would be listed twice)`,
      );
    }
  }
  const concurrency = Math.max(1, opts.concurrency ?? prefixes.length);
  const byPrefix: Record<string, DiscoverSummary> = {};
  let next = 0;
  const lane = async () => {
    while (next < prefixes.length) {
      const p = prefixes[next++];
      byPrefix[p] = await discoverSource({ ...opts, location: narrowed(opts.location, p) });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, prefixes.length) }, lane));
  const all = Object.values(byPrefix);
  const sum = (k: "listed" | "seen" | "skipped" | "created" | "changed" | "unchanged") =>
    all.reduce((n, s) => n + s[k], 0);
  return {
    listed: sum("listed"),
    seen: sum("seen"),
    skipped: sum("skipped"),
    created: sum("created"),
    changed: sum("changed"),
    unchanged: sum("unchanged"),
    complete: all.length === prefixes.length && all.every((s) => s.complete),
    byPrefix,
  };
}

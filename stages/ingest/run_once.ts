/**
 * Backfill in one call, for `sluice-ingest once`, the demo and tests: list the source, import
 * the configured annotation files, drain the ingest queue, and report. Whatever is not passed
 * in `deps` is opened from the configuration and closed again before returning.
 *
 * @example
 * ```ts
 * const summary = await runIngestOnce(config, { manifest });
 * console.log(summary.worker.done, summary.images);
 * ```
 * @module
 */
import type { ProgressOptions } from "../../common/worker/mod.ts";
import type { IngestConfig } from "./config.ts";
import { type GivenIngestDeps, type IngestOnceSummary, openIngestStage } from "./stage.ts";

/** Stage dependencies, any of which may be left out to be opened from the configuration. */
export type IngestOnceDeps = GivenIngestDeps & {
  progress?: ProgressOptions | false;
  signal?: AbortSignal;
};

/**
 * Discovers from the source store, imports the configured annotation files, drains the ingest
 * queue, and returns a summary.
 *
 * @example
 * ```ts
 * const s = await runIngestOnce(config, { manifest, source, objectStore, staging, progress: false });
 * s.worker.failed; // items that failed for good
 * ```
 */
export async function runIngestOnce(
  config: IngestConfig,
  deps: IngestOnceDeps = {},
): Promise<IngestOnceSummary> {
  const { progress, signal, ...given } = deps;
  const stage = await openIngestStage(config, given);
  try {
    return await stage.runOnce({
      ...(signal ? { signal } : {}),
      ...(progress !== undefined ? { progress } : {}),
    });
  } finally {
    await stage.close();
  }
}

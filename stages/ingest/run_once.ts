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
import type { Logger } from "../../common/log/mod.ts";
import { type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { createStageMetrics } from "../../common/metrics/mod.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import { openStaging, type Staging } from "../../common/staging/mod.ts";
import type { ProgressOptions } from "../../common/worker/mod.ts";
import type { IngestConfig } from "./config.ts";
import {
  createIngestLogger,
  createIngestStage,
  type IngestDeps,
  type IngestOnceSummary,
  s3OpenOptions,
} from "./stage.ts";

/** Stage dependencies, any of which may be left out to be opened from the configuration. */
export type IngestOnceDeps = Partial<IngestDeps> & {
  progress?: ProgressOptions | false;
  signal?: AbortSignal;
};

/** Opened dependencies and a `close` for the ones this call opened. */
export interface OpenedDeps extends IngestDeps {
  close(): Promise<void>;
}

/**
 * Opens whatever `given` lacks from `config` (manifest, source store, dataset store, staging).
 *
 * @example
 * ```ts
 * const deps = await openIngestDeps(config, {}, log);
 * try { ... } finally { await deps.close(); }
 * ```
 */
export async function openIngestDeps(
  config: IngestConfig,
  given: Partial<IngestDeps>,
  log: Logger,
): Promise<OpenedDeps> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    const metrics = given.metrics ?? createStageMetrics("ingest");
    const manifest: ManifestStore = given.manifest ?? await openManifest(config.manifest.url);
    if (!given.manifest) closers.push(() => manifest.close());
    const s3 = s3OpenOptions(config);
    const source: ObjectStore = given.source ?? await openObjectStore(config.source.url, s3);
    if (!given.source) closers.push(() => source.close());
    const objectStore: ObjectStore = given.objectStore ??
      await openObjectStore(config.objectStore.url, s3);
    if (!given.objectStore) closers.push(() => objectStore.close());
    const staging: Staging = given.staging ?? await openStaging({
      root: config.staging.root,
      fallbackRoot: config.staging.fallbackRoot,
      requireNvme: config.staging.requireNvme,
      minFreeMb: config.staging.minFreeMb,
      leaseTimeoutMs: config.staging.leaseTimeoutMs,
      stage: "ingest",
      workerId: config.worker.id,
      log,
      metrics: {
        setStagedBytes: (b: number) => metrics.stagingBytes.set(b),
        setFreeBytes: (b: number) => metrics.stagingFreeBytes.set(b),
      },
    });
    if (!given.staging) await staging.sweep();
    return { ...given, manifest, source, objectStore, staging, metrics, log, close };
  } catch (err) {
    await close();
    throw err;
  }
}

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
  const log = given.log ?? createIngestLogger(config);
  const opened = await openIngestDeps(config, given, log);
  const stage = createIngestStage(config, opened);
  try {
    return await stage.runOnce({
      ...(signal ? { signal } : {}),
      ...(progress !== undefined ? { progress } : {}),
    });
  } finally {
    await stage.close();
    await opened.close();
  }
}

/**
 * Opens what a stage runs against from its configuration, for whatever the caller did not pass
 * in: the manifest, the dataset object store, staging (with its stale-lease sweep), and on
 * request the raw source store and the MLflow tracker. What is opened here is closed by
 * `close()` under one policy ({@link Closers}); what was passed in stays open.
 *
 * @example
 * ```ts
 * const res = await openResources(config, deps, { stage: "infer", log, metrics, tracker: true });
 * try {
 *   await res.manifest.workCounts("infer");
 *   res.tracker.searchModelVersions("sluice-detector");
 * } finally {
 *   await res.close();
 * }
 * ```
 * @module
 */
import type { Gauge } from "prom-client";
import type { SharedConfig } from "../config/schema.ts";
import type { Logger } from "../log/mod.ts";
import { type ManifestStore, openManifest } from "../manifest/mod.ts";
import { openTracker, type Tracker } from "../mlflow/mod.ts";
import { type ObjectStore, openObjectStore } from "../objectstore/mod.ts";
import { relativizeRecordedUris } from "../manifest/relative_uris.ts";
import { openStaging, type Staging } from "../staging/mod.ts";
import { Closers } from "./closers.ts";

/** The sections of a stage configuration that resources are opened from. */
export type ResourceConfig = Pick<
  SharedConfig,
  "manifest" | "objectStore" | "source" | "s3" | "staging" | "worker" | "mlflow"
>;

/** Resources a caller already has (tests, the demo, a stage sharing another's). */
export interface GivenResources {
  manifest?: ManifestStore;
  /** The dataset store (`objectStore.url`). */
  store?: ObjectStore;
  /** The raw bucket (`source.url`). */
  source?: ObjectStore;
  tracker?: Tracker;
  staging?: Staging;
}

/** The staging gauges every stage exports (any `StageMetrics` has them). */
export interface StagingGauges {
  stagingBytes: Pick<Gauge, "set">;
  stagingFreeBytes: Pick<Gauge, "set">;
}

/** What to open besides the manifest, the dataset store and staging. */
export interface OpenResourcesOptions {
  /** The stage name: staging directory and log field. */
  stage: string;
  log: Logger;
  /** Where staging reports its bytes. */
  metrics: StagingGauges;
  /** Also open the raw source store. */
  source?: boolean;
  /** Also open the MLflow tracker. */
  tracker?: boolean;
}

/** The opened resources of one stage. */
export interface StageResources {
  readonly manifest: ManifestStore;
  readonly store: ObjectStore;
  readonly staging: Staging;
  /** The closers of what was opened here; stages register their own (engines, clients) too. */
  readonly closers: Closers;
  /** Closes what was opened here (see {@link Closers.close}). */
  close(): Promise<void>;
}

/** {@link StageResources} with the optional ones `O` asked for. */
export type OpenedResources<O extends OpenResourcesOptions> =
  & StageResources
  & (O["source"] extends true ? { readonly source: ObjectStore } : unknown)
  & (O["tracker"] extends true ? { readonly tracker: Tracker } : unknown);

/**
 * Opens what `given` lacks. Staging opened here is swept of this worker's stale leases (the
 * number removed is logged). On any failure what was already opened is closed again and the
 * opening error is thrown.
 *
 * @example
 * ```ts
 * const res = await openResources(config, {}, { stage: "ingest", log, metrics, source: true });
 * const objects = await res.source.list({ prefix: "incoming/" });
 * ```
 */
export async function openResources<O extends OpenResourcesOptions>(
  config: ResourceConfig,
  given: GivenResources,
  opts: O,
): Promise<OpenedResources<O>> {
  const { log } = opts;
  const closers = new Closers(log);
  const s3 = { s3: config.s3 };
  try {
    const manifest = given.manifest ??
      closers.own("manifest", await openManifest(config.manifest.url));
    const store = given.store ??
      closers.own("object store", await openObjectStore(config.objectStore.url, s3));
    const relativized = await relativizeRecordedUris(manifest, store);
    if (relativized > 0) log.info("recorded object URIs now store-relative", { relativized });
    const out: StageResources & { source?: ObjectStore; tracker?: Tracker } = {
      manifest,
      store,
      staging: given.staging ?? await openSweptStaging(config, opts),
      closers,
      close: () => closers.close(),
    };
    if (opts.source) {
      out.source = given.source ??
        closers.own("source store", await openObjectStore(config.source.url, s3));
    }
    if (opts.tracker) {
      out.tracker = given.tracker ?? closers.own("tracker", openTrackerFor(config, log));
    }
    return out as OpenedResources<O>;
  } catch (err) {
    await closers.closeAfterFailure();
    throw err;
  }
}

/**
 * The tracker `config.mlflow` names, with S3 artifact access from `config.s3`.
 *
 * @example
 * ```ts
 * const tracker = openTrackerFor(config, log);
 * ```
 */
export function openTrackerFor(
  config: Pick<ResourceConfig, "mlflow" | "s3">,
  log: Logger,
): Tracker {
  return openTracker({
    trackingUri: config.mlflow.trackingUri,
    localDir: config.mlflow.localDir,
    token: config.mlflow.token,
    username: config.mlflow.username,
    password: config.mlflow.password,
    retryBudgetSeconds: config.mlflow.retryBudgetSeconds,
    s3: config.s3,
    logger: log,
  });
}

/** Opens staging for this stage and worker, and removes this worker's stale leases. */
async function openSweptStaging(
  config: ResourceConfig,
  opts: OpenResourcesOptions,
): Promise<Staging> {
  const staging = await openStaging({
    root: config.staging.root,
    fallbackRoot: config.staging.fallbackRoot,
    requireNvme: config.staging.requireNvme,
    minFreeMb: config.staging.minFreeMb,
    leaseTimeoutMs: config.staging.leaseTimeoutMs,
    stage: opts.stage,
    workerId: config.worker.id,
    log: opts.log,
    metrics: {
      setStagedBytes: (b: number) => opts.metrics.stagingBytes.set(b),
      setFreeBytes: (b: number) => opts.metrics.stagingFreeBytes.set(b),
    },
  });
  const swept = await staging.sweep();
  if (swept.removed.length > 0) {
    opts.log.info("removed stale staging leases", { removed: swept.removed.length });
  }
  return staging;
}

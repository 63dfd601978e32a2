/**
 * The normalize stage assembled: manifest, object store, staging, resizer, metrics and HTTP
 * handler, and the worker loop that claims `normalize` items and records each image's variants
 * in one transaction after uploading them.
 *
 * Concurrency is two numbers: CPU slots (images decoded and resized at once, one per core with
 * one libvips thread each) and items in flight (`worker.concurrency`, recommended slots + 2), so
 * that downloads and uploads of some items overlap the CPU work of others while memory stays
 * bounded by the items in flight.
 *
 * @example
 * ```ts
 * const config = await loadConfig({ stage: "normalize", stageSchema: NormalizeSettingsSchema });
 * const summary = await runNormalizeOnce(config);
 * console.log(summary.done, summary.variantsWritten);
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import { createStageHandler, type StageHandler } from "../../common/http/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { Claim, Effects, ManifestStore } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { Staging } from "../../common/staging/mod.ts";
import { stagingBackpressure } from "../../common/staging/backpressure.ts";
import {
  createStageLogger,
  openResources,
  type QueueFailure,
  type QueueSummary,
  RunGuard,
  runQueue,
  type StageResources,
} from "../../common/stage/mod.ts";
import type { ItemContext, ProgressOptions } from "../../common/worker/mod.ts";
import { type ResizerSelection, selectResizer } from "../../common/images/select_resizer.ts";
import { Slots } from "./_slots.ts";
import {
  backfillNewSpecs,
  backfillNormalize,
  type BackfillResult,
  markBackfilled,
  NORMALIZE_STAGE,
} from "./backfill.ts";
import { cpuSlotsFor, type NormalizeConfig } from "./config.ts";
import { createNormalizeMetrics, type NormalizeMetrics } from "./metrics.ts";
import { normalizeImage, type NormalizeImageResult } from "./normalize_image.ts";
import { type RegisteredSpec, registerVariantSpecs } from "./spec_registry.ts";
import { compileNormalizeKeyTemplate } from "./variant_keys.ts";

/** Reason codes that will not change on retry (besides the worker's `PERMANENT_CODES`). */
export const NORMALIZE_PERMANENT_CODES: readonly string[] = [
  "decode_failed",
  "too_many_pixels",
  "empty_object",
  "source_missing",
  "checksum_mismatch",
  "not_ingested",
  "unknown_image",
  "foreign_uri",
  "invalid_variant_geometry",
];

/** What the stage is built from; anything left out is opened from the configuration. */
export interface NormalizeDeps {
  manifest?: ManifestStore;
  /** The dataset store: inputs are read from it and variants written to it. */
  store?: ObjectStore;
  staging?: Staging;
  /** A resizer already selected (tests, benchmarks); closed by the caller. */
  resizer?: ResizerSelection;
  log?: Logger;
  metrics?: NormalizeMetrics;
  /** Items in flight (default `config.worker.concurrency`). */
  concurrency?: number;
  /** Build version for `sluice_normalize_build_info`. */
  version?: string;
}

export interface NormalizeRunOptions {
  /** Return once the queue is drained (default false: run until `signal` aborts). */
  once?: boolean;
  signal?: AbortSignal;
  progress?: ProgressOptions | false;
  /** Grace period for in-flight items after abort, ms. */
  graceMs?: number;
}

/** One item that failed (for good or to be retried). */
export type NormalizeFailure = QueueFailure;

/** Totals of one {@link NormalizeStage.run}. */
export interface NormalizeSummary extends QueueSummary {
  /** Variant objects written and recorded. */
  variantsWritten: number;
  bytesWritten: number;
  /** Variants found present (nothing written). */
  variantsPresent: number;
  /** The start-up backfill for new spec versions, when one ran. */
  backfill: BackfillResult | null;
  resizer: { name: string; kind: "cpu" | "gpu"; reason: string };
  ms: number;
}

/** A running normalize stage; see {@link createNormalizeStage}. */
export interface NormalizeStage {
  readonly config: NormalizeConfig;
  readonly manifest: ManifestStore;
  readonly store: ObjectStore;
  readonly staging: Staging;
  readonly metrics: NormalizeMetrics;
  readonly log: Logger;
  /** `deno serve`-compatible: /healthz, /readyz, /metrics, /, and GET /status (JSON). */
  readonly handler: StageHandler;
  readonly resizer: { name: string; kind: "cpu" | "gpu"; reason: string };
  /** The configured variants with their manifest versions. */
  readonly specs: readonly RegisteredSpec[];
  readonly concurrency: number;
  readonly cpuSlots: number;
  /** Claims and processes `normalize` items (backfilling new spec versions first). */
  run(opts?: NormalizeRunOptions): Promise<NormalizeSummary>;
  /** Enqueues every ingested image lacking a current variant. */
  backfill(): Promise<BackfillResult>;
  /** Closes what the stage opened (not what was passed in `deps`). */
  close(): Promise<void>;
}

/**
 * Builds the stage: opens what `deps` does not provide, selects the resizer (logging which and
 * why), registers the variant specs, and sweeps this worker's stale staging leases.
 *
 * @example
 * ```ts
 * const stage = await createNormalizeStage(config, { manifest, store });
 * try {
 *   await stage.run({ once: true });
 * } finally {
 *   await stage.close();
 * }
 * ```
 */
export async function createNormalizeStage(
  config: NormalizeConfig,
  deps: NormalizeDeps = {},
): Promise<NormalizeStage> {
  const settings = config.stage;
  const log = deps.log ?? createStageLogger(NORMALIZE_STAGE, config.log);
  const metrics = deps.metrics ?? createNormalizeMetrics({ version: deps.version });
  const res = await openResources(config, deps, { stage: NORMALIZE_STAGE, log, metrics });
  try {
    let selection = deps.resizer;
    if (!selection) {
      const chosen = selection = await selectResizer({
        resizer: settings.resizer,
        python: settings.python,
        sharp: { threads: settings.sharpThreads },
      });
      res.closers.add("resizer", () => chosen.resizer.close());
    }
    const resizerInfo = {
      name: selection.resizer.name,
      kind: selection.kind,
      reason: selection.reason,
    };
    metrics.resizerInfo.set(resizerInfo, 1);
    log.info("resizer selected", resizerInfo);

    const specs = await registerVariantSpecs(res.manifest, settings.variants);
    for (const s of specs) {
      log.info(s.created ? "variant spec registered: new version" : "variant spec", {
        variant: s.spec.name,
        specHash: s.specHash,
        version: s.version,
      });
    }
    return assemble({
      config,
      log,
      metrics,
      res,
      selection,
      resizerInfo,
      specs,
      keys: compileNormalizeKeyTemplate(settings.keyTemplate),
      concurrency: deps.concurrency ?? config.worker.concurrency,
    });
  } catch (err) {
    await res.closers.closeAfterFailure();
    throw err;
  }
}

interface Parts {
  config: NormalizeConfig;
  log: Logger;
  metrics: NormalizeMetrics;
  res: StageResources;
  selection: ResizerSelection;
  resizerInfo: { name: string; kind: "cpu" | "gpu"; reason: string };
  specs: RegisteredSpec[];
  keys: ReturnType<typeof compileNormalizeKeyTemplate>;
  concurrency: number;
}

/** Running totals of one run, added to as items finish. */
interface RunTotals {
  variantsWritten: number;
  bytesWritten: number;
  variantsPresent: number;
}

/** /healthz, /readyz, /metrics, / and GET /status of a normalize stage. */
function normalizeHandler(p: Parts, guard: RunGuard, cpu: Slots, cpuSlots: number): StageHandler {
  const { metrics, log, specs } = p;
  const manifest = p.res.manifest;
  return createStageHandler({
    stage: NORMALIZE_STAGE,
    metrics,
    log,
    closed: () => guard.closed,
    ready: async () => {
      if (guard.closed) return "stage closed";
      await manifest.workCounts(NORMALIZE_STAGE);
      return true;
    },
    routes: {
      "GET /status": () =>
        Promise.resolve(
          Response.json({
            stage: NORMALIZE_STAGE,
            running: guard.running,
            resizer: p.resizerInfo,
            concurrency: p.concurrency,
            cpuSlots,
            cpuSlotsBusy: cpu.busy,
            variants: specs.map((s) => ({
              name: s.spec.name,
              specHash: s.specHash,
              version: s.version,
            })),
          }),
        ),
    },
  });
}

function assemble(p: Parts): NormalizeStage {
  const { config, log, metrics, specs } = p;
  const { manifest, store, staging } = p.res;
  const settings = config.stage;
  const cpuSlots = cpuSlotsFor(settings);
  const cpu = new Slots(cpuSlots, (busy) => metrics.cpuSlotsBusy.set(busy));
  const guard = new RunGuard(NORMALIZE_STAGE);

  const handler = normalizeHandler(p, guard, cpu, cpuSlots);

  const backfill = async () => {
    const r = await backfillNormalize(manifest, specs, { log });
    await markBackfilled(manifest, specs);
    return r;
  };

  // Each finished item's result, from process() until the worker records its outcome.
  const results = new Map<string, NormalizeImageResult>();

  /** One claimed image: its missing variants rendered and uploaded, returned as effects. */
  const process = async (claim: Claim, ctx: ItemContext): Promise<Effects> => {
    const image = await manifest.getImage(claim.itemId);
    if (image === null) {
      throw new SluiceError(
        "unknown_image",
        `normalize ${claim.itemId}: expected an image row, found none`,
      );
    }
    if (image.status === "deleted" || image.status === "duplicate") {
      // Deleted sources and duplicates get no variants of their own: done, nothing written.
      ctx.log.info("skipped", { status: image.status });
      return {};
    }
    const existing = await manifest.listVariants({ imageIds: [image.id] });
    const r = await normalizeImage(image, specs, existing, {
      store,
      staging,
      resizer: p.selection.resizer,
      keys: p.keys,
      prefix: settings.prefix,
      limits: { maxBytes: settings.maxBytes, maxPixels: settings.maxPixels },
      cpu,
      signal: ctx.signal,
      log: ctx.log,
      retry: claim.attempts > 1,
    });
    if (r.variants.length > 0) metrics.renderSeconds.observe(r.renderMs / 1000);
    results.set(claim.itemId, r);
    return r.variants.length > 0 ? { variants: r.variants } : {};
  };

  /** Variant metrics and run totals of one finished item. */
  const countVariants = (claim: Claim, outcome: string, totals: RunTotals) => {
    const r = results.get(claim.itemId);
    results.delete(claim.itemId);
    if (outcome !== "done" || !r) return;
    for (const v of r.variants) {
      metrics.variantsTotal.inc({ variant: v.name });
      metrics.variantBytesTotal.inc({ variant: v.name }, v.bytes);
    }
    for (const name of r.present) metrics.variantsPresentTotal.inc({ variant: name });
    totals.variantsWritten += r.variants.length;
    totals.bytesWritten += r.bytesWritten;
    totals.variantsPresent += r.present.length;
  };

  const run = (opts: NormalizeRunOptions = {}): Promise<NormalizeSummary> =>
    guard.run(async () => {
      const t0 = performance.now();
      const totals: RunTotals = { variantsWritten: 0, bytesWritten: 0, variantsPresent: 0 };
      const backfilled = settings.backfillNewSpecs
        ? await backfillNewSpecs(manifest, specs, { log })
        : null;
      const summary = await runQueue(
        { name: NORMALIZE_STAGE, manifest, log, metrics, worker: config.worker },
        {
          queue: NORMALIZE_STAGE,
          concurrency: p.concurrency,
          graceMs: opts.graceMs,
          signal: opts.signal,
          once: opts.once ?? false,
          permanentCodes: NORMALIZE_PERMANENT_CODES,
          progress: opts.progress,
          ...stagingBackpressure({ root: staging.root, minFreeBytes: staging.minFreeBytes, log }),
          process,
          onResult: (claim, result) => countVariants(claim, result.outcome, totals),
        },
      );
      return {
        ...summary,
        ...totals,
        backfill: backfilled,
        resizer: p.resizerInfo,
        ms: Math.round(performance.now() - t0),
      };
    });

  return {
    config,
    manifest,
    store,
    staging,
    metrics,
    log,
    handler,
    resizer: p.resizerInfo,
    specs,
    concurrency: p.concurrency,
    cpuSlots,
    run,
    backfill,
    async close() {
      if (guard.close()) await p.res.close();
    },
  };
}

/**
 * Builds the stage, drains the `normalize` queue once, closes what it opened, and returns the
 * totals. For the demo and tests.
 *
 * @example
 * ```ts
 * const s = await runNormalizeOnce(config, { manifest, store });
 * s.failures; // [{ itemId: "img_…", outcome: "failed", reason: "decode_failed", message: "…" }]
 * ```
 */
export async function runNormalizeOnce(
  config: NormalizeConfig,
  deps: NormalizeDeps = {},
  opts: Omit<NormalizeRunOptions, "once"> = {},
): Promise<NormalizeSummary> {
  const stage = await createNormalizeStage(config, deps);
  try {
    return await stage.run({ progress: false, ...opts, once: true });
  } finally {
    await stage.close();
  }
}

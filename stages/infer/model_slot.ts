/**
 * The infer stage's model slot: resolves the approved model in the registry, fetches and loads
 * it into an {@link InferenceEngine}, and swaps in a newly approved version (or a fresh session
 * when the old one died) between batches. Every version loaded is remembered, so a version
 * swapped out can still have its outputs published.
 *
 * @example
 * ```ts
 * const slot = new ModelSlot({ tracker, staging, settings, selection, s3, metrics, log, afterBatch });
 * const engine = await slot.engine();            // resolves and loads on first use
 * if (await slot.check()) console.log("swapped to", slot.current?.ref.version);
 * await slot.close();
 * ```
 * @module
 */
import type { S3Settings } from "../../common/objectstore/s3_settings.ts";
import { messageOf } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { Tracker } from "../../common/mlflow/mod.ts";
import type { Staging } from "../../common/staging/mod.ts";
import type { InferSettings } from "./config.ts";
import { type EngineOptions, InferenceEngine, type LoadedModel } from "./inference_engine.ts";
import type { InferMetrics } from "./metrics.ts";
import type { DetectorSpec } from "./model_card.ts";
import { fetchModel, loadModel } from "./model_loader.ts";
import {
  describeModel,
  type ModelRef,
  type ModelSelection,
  type ModelSource,
  resolveModelSource,
  servingReason,
} from "./model_resolver.ts";
import type { ImageTag } from "./staged_predict.ts";
import { withRegistry } from "./model_registry.ts";

/** A model version with what publishing its outputs needs. */
export interface KnownModel {
  ref: ModelRef;
  spec: DetectorSpec;
}

/** The key of one model version (of one registry) in maps and sets. */
export function versionKey(ref: Pick<ModelRef, "name" | "version" | "registry">): string {
  return `${ref.name}\u0000${ref.version}\u0000${ref.registry ?? ""}`;
}

/** What the slot is built from. */
export interface ModelSlotOptions {
  tracker: Tracker;
  staging: Staging;
  settings: InferSettings;
  selection: ModelSelection;
  /** S3 access for `s3://` model URIs. */
  s3: S3Settings;
  /** Prefixes `s3://` and `file://` model sources must lie under (see model_sources.ts). */
  allowedSources?: readonly string[];
  metrics: InferMetrics;
  log: Logger;
  /** The engine's batch hook (part files, Label Studio). */
  afterBatch: NonNullable<EngineOptions<ImageTag>["afterBatch"]>;
  /** Called after a new version was swapped in. */
  onSwap?: (next: LoadedModel) => void;
  /** Refuses a model whose labels the pre-annotation target cannot name (throws). */
  checkLabels?: (labels: readonly string[]) => void;
}

/** The model in use, loaded on demand and swapped when the approval moves. */
export class ModelSlot {
  readonly #o: ModelSlotOptions;
  #engine: InferenceEngine<ImageTag> | null = null;
  #loading: Promise<LoadedModel> | null = null;
  #closed = false;
  /** The last load failure, for readiness (null after a successful load). */
  lastLoadError: string | null = null;
  /** Every version loaded so far. */
  readonly known = new Map<string, KnownModel>();

  constructor(opts: ModelSlotOptions) {
    this.#o = opts;
  }

  /** The engine when a model is loaded, else null. */
  get loaded(): InferenceEngine<ImageTag> | null {
    return this.#engine;
  }

  /** The model in use (null before the first load). */
  get current(): LoadedModel | null {
    return this.#engine?.model ?? null;
  }

  /** The engine, resolving and loading the approved model on first use. */
  async engine(): Promise<InferenceEngine<ImageTag>> {
    if (this.#engine) return this.#engine;
    this.#loading ??= this.#loadApproved();
    const model = await this.#loading;
    if (this.#engine) {
      await model.session.close();
      return this.#engine;
    }
    this.#remember(model);
    this.#engine = this.#newEngine(model);
    this.#o.metrics.setModel(model.ref);
    this.#o.log.info(
      `serving ${describeModel(model.ref)}: ${servingReason(model.ref, this.#o.selection)}`,
      {
        model: describeModel(model.ref),
        provider: model.session.provider,
      },
    );
    return this.#engine;
  }

  /**
   * Re-resolves the approved model; when it changed, loads it and swaps it in. A dead session
   * is replaced by a fresh one of the same version. Returns true when the version changed.
   */
  async check(): Promise<boolean> {
    const eng = await this.engine();
    const current = eng.model.ref;
    const { log } = this.#o;
    if (!eng.model.session.alive) {
      // The session's worker died (out of memory, a native crash): start a fresh one.
      log.error("inference session is gone: reloading the model", {
        model: describeModel(current),
      });
      const fresh = await this.#load(current);
      eng.swap(fresh).catch((err) =>
        log.warn("closing the dead session failed", { error: messageOf(err) })
      );
      return false;
    }
    if (!current.movable) return false;
    const source = await resolveModelSource(this.#o.tracker, this.#o.selection);
    if (source.name === current.name && source.version === current.version) {
      if (source.alias !== current.alias || source.via !== current.via) {
        log.info("approval changed, same version", { model: describeModel(source) });
      }
      return false;
    }
    log.info("approved model changed: loading", {
      from: describeModel(current),
      to: describeModel(source),
    });
    const next = await this.#load(source);
    this.#remember(next);
    if (this.#closed) {
      await next.session.close();
      return false;
    }
    // The old session closes once its batch in flight finishes; no need to wait for it here.
    eng.swap(next).catch((err) =>
      log.warn("closing the old model failed", { error: messageOf(err) })
    );
    this.#o.metrics.setModel(next.ref);
    this.#o.metrics.modelSwapsTotal.inc();
    this.#o.onSwap?.(next);
    return true;
  }

  /** Stops loading and closes the engine (and its sessions). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#loading) await this.#loading.catch(() => undefined);
    await this.#engine?.close();
  }

  async #loadApproved(): Promise<LoadedModel> {
    try {
      const source = await resolveModelSource(this.#o.tracker, this.#o.selection);
      const model = await this.#load(source);
      this.lastLoadError = null;
      return model;
    } catch (err) {
      this.lastLoadError = messageOf(err);
      throw err;
    } finally {
      this.#loading = null;
    }
  }

  async #load(found: ModelSource): Promise<LoadedModel> {
    const { settings, log } = this.#o;
    const source = withRegistry(found, this.#o.tracker);
    const fetched = await fetchModel(source, {
      root: this.#o.staging.root,
      tracker: this.#o.tracker,
      s3: this.#o.s3,
      ...(this.#o.allowedSources ? { allowedSources: this.#o.allowedSources } : {}),
      log,
    });
    const model = await loadModel(fetched, {
      provider: settings.executionProvider,
      intraOpThreads: settings.intraOpThreads,
      interOpThreads: settings.interOpThreads,
      log,
    });
    this.#o.checkLabels?.(model.spec.labels);
    return model;
  }

  #remember(m: LoadedModel): void {
    this.known.set(versionKey(m.ref), { ref: m.ref, spec: m.spec });
  }

  #newEngine(model: LoadedModel): InferenceEngine<ImageTag> {
    const { settings, metrics, log } = this.#o;
    return new InferenceEngine<ImageTag>(model, {
      batchSize: settings.batchSize,
      lingerMs: settings.lingerMs,
      scoreThreshold: settings.scoreThreshold,
      nmsIou: settings.nmsIou,
      log,
      onPrepared: (s) => metrics.preprocessSeconds.observe(s),
      onBatch: (b) => {
        metrics.batchSize.observe(b.size);
        metrics.inferenceSeconds.observe(b.inferenceSeconds);
        metrics.postprocessSeconds.observe(b.postprocessSeconds);
      },
      afterBatch: this.#o.afterBatch,
    });
  }
}

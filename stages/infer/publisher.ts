/**
 * What the infer stage writes for review: each batch's Label Studio part (uploaded before any
 * prediction is recorded, optionally imported into a Label Studio project), and per model
 * version the `labelstudio.json` / `coco_results.json` rebuilt from the manifest. It tracks the
 * versions whose recorded predictions their published files do not hold yet.
 *
 * @example
 * ```ts
 * const publisher = new Publisher({ manifest, store, settings, metrics, log });
 * await publisher.afterBatch(items, model);   // the engine's batch hook
 * publisher.markDirty(model.ref);             // a prediction was recorded
 * await publisher.publish(model);             // files rebuilt; version clean again
 * ```
 * @module
 */
import type { LabelStudioTask } from "../../common/annotations/mod.ts";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ImageRow, ManifestStore } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { InferSettings } from "./config.ts";
import type { ImagePrediction, LoadedModel } from "./inference_engine.ts";
import { storeKeyOf } from "./inputs.ts";
import { uriOfRecorded } from "../../common/objectstore/recorded_key.ts";
import { labelStudioPusher } from "./labelstudio_push.ts";
import type { LabelStudioTarget } from "./labelstudio_names.ts";
import type { InferMetrics } from "./metrics.ts";
import type { ModelRef } from "./model_resolver.ts";
import { type KnownModel, versionKey } from "./model_slot.ts";
import { type OutputKeys, type PredictedImage, writeOutputs, writePart } from "./outputs.ts";
import { predictedImagesFromManifest } from "./predicted_images.ts";
import type { ImageTag } from "./staged_predict.ts";
import { topKForReview } from "../../common/review/review_priority.ts";

/** The published files of one version, and how many images they hold. */
export type PublishedOutputs = OutputKeys & { images: number };

/** What the publisher is built from. */
export interface PublisherOptions {
  manifest: ManifestStore;
  store: ObjectStore;
  settings: InferSettings;
  metrics: InferMetrics;
  log: Logger;
  /** For the Label Studio import (tests pass their own). */
  fetch?: typeof fetch;
  /** Label Studio tag names for pre-annotations (from infer.labelStudioLabelConfig). */
  labelStudioNames?: LabelStudioTarget["names"];
}

/** Writes parts and output files; counts Label Studio imports. */
export class Publisher {
  readonly #o: PublisherOptions;
  readonly #push: ReturnType<typeof labelStudioPusher> | null;
  /** Versions with recorded predictions that their published files do not hold yet. */
  readonly #dirty = new Set<string>();
  /** Tasks imported into Label Studio, and batches whose import failed (reset per run). */
  pushed = 0;
  failedPushBatches = 0;

  constructor(opts: PublisherOptions) {
    this.#o = opts;
    const s = opts.settings;
    this.#push = s.labelStudioUrl && s.labelStudioToken && s.labelStudioProjectId
      ? labelStudioPusher({
        url: s.labelStudioUrl,
        token: s.labelStudioToken,
        auth: s.labelStudioAuth,
        batchSize: s.labelStudioBatchSize,
        projectId: s.labelStudioProjectId,
        fetch: opts.fetch,
      })
      : null;
  }

  /** The URL reviewers open for an image: under `imageUrlPrefix` when set, else its URI. */
  imageUrl(uri: string, key: string | null): string {
    const prefix = this.#o.settings.imageUrlPrefix;
    return prefix && key !== null
      ? `${prefix.replace(/\/+$/, "")}/${key.split("/").map(encodeURIComponent).join("/")}`
      : uri;
  }

  /** {@link imageUrl} of a manifest row (its dataset copy when it has one). */
  rowUrl(row: ImageRow): string {
    const uri = row.datasetUri ? uriOfRecorded(this.#o.store, row.datasetUri) : row.sourceUri;
    return this.imageUrl(uri, row.datasetUri ? storeKeyOf(this.#o.store, row.datasetUri) : null);
  }

  /**
   * The engine's batch hook: uploads the batch's part, then imports its tasks (only the
   * `labelStudioTopK` of highest review priority when that is set).
   */
  readonly afterBatch = async (
    items: { tag: ImageTag; prediction: ImagePrediction }[],
    model: LoadedModel,
  ): Promise<void> => {
    const images: PredictedImage[] = items.map(({ tag, prediction }) => ({
      id: tag.id,
      url: tag.url,
      fileName: tag.fileName,
      width: prediction.width,
      height: prediction.height,
      boxes: prediction.boxes,
      score: prediction.score,
    }));
    // Upload before anything is recorded: a crash after this leaves a part the retry rewrites.
    const { key, tasks } = await writePart(
      this.#o.store,
      this.#o.settings.prefix,
      model.ref,
      images,
      this.#o.labelStudioNames,
    );
    for (const { tag } of items) tag.partKey = key;
    // Review priority (issue 16): with labelStudioTopK only the K most worth reviewing go out.
    const k = this.#o.settings.labelStudioTopK;
    if (this.#push) await this.#pushTasks(k === undefined ? tasks : topKForReview(tasks, k));
  };

  /** Notes that `version` recorded predictions its files do not hold yet. */
  markDirty(version: string): void {
    this.#dirty.add(version);
  }

  /** Whether `ref`'s files lack recorded predictions. */
  isDirty(ref: Pick<ModelRef, "name" | "version">): boolean {
    return this.#dirty.has(versionKey(ref));
  }

  /** Whether any version's files lack recorded predictions. */
  get anyDirty(): boolean {
    return this.#dirty.size > 0;
  }

  /** Rebuilds one version's output files from the manifest. */
  async publish(model: KnownModel): Promise<PublishedOutputs> {
    const { manifest, log } = this.#o;
    const { images, missing } = await predictedImagesFromManifest(
      manifest,
      model.ref,
      (row) => this.rowUrl(row),
    );
    if (missing.length > 0) {
      log.warn("predictions without an image size were left out of the outputs", {
        images: missing.length,
        first: missing.slice(0, 5),
      });
    }
    const keys = await this.writeFiles(model, images);
    this.#dirty.delete(versionKey(model.ref));
    log.info("outputs published", { dir: keys.dir, images: images.length });
    return keys;
  }

  /** Writes `images` as `model`'s output files. */
  async writeFiles(model: KnownModel, images: PredictedImage[]): Promise<PublishedOutputs> {
    const { store, settings, metrics } = this.#o;
    const keys = await writeOutputs(
      store,
      settings.prefix,
      model.ref,
      model.spec,
      images,
      this.#o.labelStudioNames,
    );
    metrics.outputsPublishedTotal.inc();
    return { ...keys, images: images.length };
  }

  /** Publishes the dirty versions other than `current` (those swapped out). */
  async publishRetired(known: ReadonlyMap<string, KnownModel>, current: string | null) {
    for (const key of [...this.#dirty]) {
      const m = known.get(key);
      if (key !== current && m) await this.publish(m);
    }
  }

  async #pushTasks(tasks: LabelStudioTask[]): Promise<void> {
    const { metrics, log } = this.#o;
    try {
      const r = await this.#push!(tasks);
      this.pushed += r.taskCount;
      metrics.labelStudioPushTotal.inc({ result: "ok" });
    } catch (err) {
      // The predictions stand (and are in labelstudio.json); only the import is missing.
      this.failedPushBatches++;
      metrics.labelStudioPushTotal.inc({ result: "failed" });
      metrics.errorsTotal.inc({ reason: reasonOf(err) });
      log.warn("Label Studio import failed", { error: messageOf(err), tasks: tasks.length });
    }
  }
}

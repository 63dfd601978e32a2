/**
 * Batched inference with a swappable model. Each image is decoded and letterboxed by the same
 * code as the normalize stage's letterbox variants (`letterboxRgb`: `planVariant` geometry,
 * shared sharp render path) as soon as it arrives, then waits for a batch; one batch runs at a
 * time in the session's worker thread while the next images are prepared on this thread.
 *
 * A batch runs when `batchSize` images wait, or when the oldest has waited `lingerMs`. The model
 * is read once per batch: {@link InferenceEngine.swap} installs a new model for the next batch
 * while the batch in flight finishes on the old one, whose session is closed after that.
 *
 * @example
 * ```ts
 * const engine = new InferenceEngine(model, { batchSize: 8, lingerMs: 25, scoreThreshold: 0.3, log });
 * const p = await engine.predict("/stage/a.jpg", { imageId: "img_1" });
 * p.boxes; // [{ label, bbox, score }] in original-image pixels
 * await engine.swap(nextModel);
 * await engine.close();
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import {
  type LetterboxRgb,
  letterboxRgb,
  rgbToNchw,
} from "../../common/images/letterbox_tensor.ts";
import type { SharpInput } from "../../common/images/_sharp_render.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { PredictionBox, VariantTransform } from "../../common/manifest/mod.ts";
import type { DetectorSession } from "./detector_session.ts";
import type { DetectorSpec } from "./model_card.ts";
import { describeModel, type ModelRef } from "./model_resolver.ts";
import { decodeBatch, imageScore, toOriginalBoxes } from "./postprocess.ts";

/** A model ready to run. */
export interface LoadedModel {
  ref: ModelRef;
  spec: DetectorSpec;
  session: DetectorSession;
  /** Local directory of the model's files. */
  dir: string;
}

/** One image's result. */
export interface ImagePrediction {
  /** The model that ran this image's batch. */
  model: ModelRef;
  /** Original (EXIF-oriented) size. */
  width: number;
  height: number;
  /** Original image → tensor pixels. */
  transform: VariantTransform;
  /** In original-image pixels, scores ≥ the threshold. */
  boxes: PredictionBox[];
  /** Mean box score (0 without boxes). */
  score: number;
}

/** Reported once per batch (metrics). */
export interface BatchInfo {
  model: ModelRef;
  size: number;
  inferenceSeconds: number;
  postprocessSeconds: number;
}

export interface EngineOptions<T> {
  batchSize: number;
  lingerMs: number;
  scoreThreshold: number;
  nmsIou?: number;
  log: Logger;
  /** Seconds each image spent in decode + letterbox. */
  onPrepared?(seconds: number): void;
  onBatch?(info: BatchInfo): void;
  /**
   * Runs after a batch is decoded and before its images' promises resolve (e.g. to upload a
   * part file before anything is recorded). When it throws, every image of the batch fails.
   */
  afterBatch?(items: { tag: T; prediction: ImagePrediction }[], model: LoadedModel): Promise<void>;
}

interface Queued<T> {
  tag: T;
  input: SharpInput;
  prepared: LetterboxRgb;
  since: number;
  resolve(p: ImagePrediction): void;
  reject(err: unknown): void;
  detach(): void;
}

class Slot {
  refs = 0;
  retired = false;
  closing: Promise<void> | null = null;
  /** Resolves once the session is closed. */
  readonly closed: Promise<void>;
  markClosed!: () => void;
  constructor(readonly model: LoadedModel) {
    this.closed = new Promise<void>((resolve) => (this.markClosed = resolve));
  }
}

/** The engine is closed. */
export class EngineClosedError extends SluiceError {
  constructor() {
    super("worker_stopping", "inference engine closed before the image ran");
    this.name = "EngineClosedError";
  }
}

/** See the module docs. `T` tags each image (e.g. its id) for `afterBatch`. */
export class InferenceEngine<T = unknown> {
  #current: Slot;
  #slots = new Set<Slot>();
  #queue: Queued<T>[] = [];
  #running: Promise<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #opts: EngineOptions<T>;

  constructor(model: LoadedModel, opts: EngineOptions<T>) {
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) {
      throw new SluiceError(
        "invalid_options",
        `batchSize: expected an integer >= 1, found ${opts.batchSize}`,
      );
    }
    this.#opts = opts;
    this.#current = new Slot(model);
    this.#slots.add(this.#current);
  }

  /** The model the next batch runs on. */
  get model(): LoadedModel {
    return this.#current.model;
  }

  /** Images prepared and waiting for a batch. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Decodes and letterboxes `input`, waits for its batch, and returns its boxes in original
   * pixels. Decode failures reject with the decoder's error (`decode_failed`).
   *
   * @example
   * ```ts
   * const { boxes, model } = await engine.predict(bytes, tag, ctx.signal);
   * ```
   */
  async predict(input: SharpInput, tag: T, signal?: AbortSignal): Promise<ImagePrediction> {
    if (this.#closed) throw new EngineClosedError();
    signal?.throwIfAborted();
    const t0 = performance.now();
    const prepared = await this.#prepare(input, this.#current.model.spec);
    this.#opts.onPrepared?.((performance.now() - t0) / 1000);
    signal?.throwIfAborted();
    if (this.#closed) throw new EngineClosedError();
    return await new Promise<ImagePrediction>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#queue.indexOf(item);
        if (i >= 0) {
          this.#queue.splice(i, 1);
          reject(signal?.reason);
        }
      };
      const item: Queued<T> = {
        tag,
        input,
        prepared,
        since: performance.now(),
        resolve,
        reject,
        detach: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(item);
      this.#pump();
    });
  }

  /**
   * Makes `next` the model of every batch that starts from now on. The batch in flight (if
   * any) finishes on the old model; the returned promise resolves once the old session is
   * closed.
   *
   * @example
   * ```ts
   * await engine.swap(await loadModel(newSource));
   * ```
   */
  swap(next: LoadedModel): Promise<void> {
    if (this.#closed) return Promise.reject(new EngineClosedError());
    const old = this.#current;
    this.#current = new Slot(next);
    this.#slots.add(this.#current);
    old.retired = true;
    this.#opts.log.info("model swapped", {
      from: describeModel(old.model.ref),
      to: describeModel(next.ref),
      inFlight: old.refs,
    });
    if (old.refs === 0) void this.#retire(old);
    return old.closed;
  }

  /** Fails waiting images, lets the batch in flight finish, and closes every session. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const item of this.#queue.splice(0)) {
      item.detach();
      item.reject(new EngineClosedError());
    }
    while (this.#running) await this.#running;
    for (const slot of [...this.#slots]) await this.#retire(slot);
  }

  #retire(slot: Slot): Promise<void> {
    slot.retired = true;
    slot.closing ??= slot.model.session.close().then(() => {
      this.#slots.delete(slot);
      slot.markClosed();
      this.#opts.log.debug("model session closed", { model: describeModel(slot.model.ref) });
    });
    return slot.closing;
  }

  #prepare(input: SharpInput, spec: DetectorSpec): Promise<LetterboxRgb> {
    return letterboxRgb(input, { width: spec.inputWidth, height: spec.inputHeight });
  }

  #pump(): void {
    if (this.#running || this.#queue.length === 0 || this.#closed) return;
    const { batchSize, lingerMs } = this.#opts;
    const waited = performance.now() - this.#queue[0].since;
    if (this.#queue.length < batchSize && waited < lingerMs) {
      if (this.#timer === undefined) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#pump();
        }, Math.max(1, lingerMs - waited));
      }
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const items = this.#queue.splice(0, batchSize);
    for (const item of items) item.detach();
    this.#running = this.#runBatch(items).finally(() => {
      this.#running = null;
      this.#pump();
    });
  }

  async #runBatch(items: Queued<T>[]): Promise<void> {
    const slot = this.#current;
    slot.refs++;
    const { spec, ref, session } = slot.model;
    try {
      const W = spec.inputWidth, H = spec.inputHeight;
      const live: Queued<T>[] = [];
      for (const item of items) {
        if (item.prepared.width !== W || item.prepared.height !== H) {
          // Prepared for a model with another input size, before a swap.
          try {
            item.prepared = await this.#prepare(item.input, spec);
          } catch (err) {
            item.reject(err);
            continue;
          }
        }
        live.push(item);
      }
      if (live.length === 0) return;
      const plane = 3 * W * H;
      const data = new Float32Array(live.length * plane);
      live.forEach((item, i) => rgbToNchw(item.prepared.rgb, W, H, data, i * plane));
      let results: { tag: T; prediction: ImagePrediction }[];
      let inferenceSeconds: number;
      const t0 = performance.now();
      try {
        const run = await session.run(spec.inputName, data, [live.length, 3, H, W]);
        inferenceSeconds = run.seconds;
        const perImage = decodeBatch(run.outputs, spec, this.#opts);
        results = live.map((item, i) => {
          const t = item.prepared.transform;
          const boxes = toOriginalBoxes(perImage[i], t, spec.labels);
          return {
            tag: item.tag,
            prediction: {
              model: ref,
              width: t.srcWidth,
              height: t.srcHeight,
              transform: t,
              boxes,
              score: imageScore(boxes),
            },
          };
        });
      } catch (err) {
        for (const item of live) item.reject(err);
        return;
      }
      const postprocessSeconds = Math.max(0, (performance.now() - t0) / 1000 - inferenceSeconds);
      this.#opts.onBatch?.({ model: ref, size: live.length, inferenceSeconds, postprocessSeconds });
      try {
        await this.#opts.afterBatch?.(results, slot.model);
      } catch (err) {
        for (const item of live) item.reject(err);
        return;
      }
      live.forEach((item, i) => item.resolve(results[i].prediction));
    } finally {
      slot.refs--;
      if (slot.retired && slot.refs === 0) await this.#retire(slot);
    }
  }
}

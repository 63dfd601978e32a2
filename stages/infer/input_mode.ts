/**
 * The `--input` mode of infer: predict the images under key prefixes or listed in `@file`s
 * instead of the queue, several at once, publish the current model's output files for them,
 * and keep what an evaluation needs. Nothing is recorded in the manifest.
 *
 * @example
 * ```ts
 * const r = await predictInputs(["incoming/"], { engine, store, staging, publisher, ... });
 * console.log(r.done, r.failed, r.outputs.labelStudio);
 * ```
 * @module
 */
import { stat } from "node:fs/promises";
import { messageOf, reasonOf, SluiceError } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { QueueFailure } from "../../common/stage/mod.ts";
import type { Staging } from "../../common/staging/mod.ts";
import type { EvalPrediction } from "./evaluate.ts";
import type { ImagePrediction, InferenceEngine } from "./inference_engine.ts";
import { type InputItem, resolveInputs } from "./inputs.ts";
import type { InferMetrics } from "./metrics.ts";
import type { PublishedOutputs, Publisher } from "./publisher.ts";
import { type ImageTag, predictStaged } from "./staged_predict.ts";

/** What the input mode runs with. */
export interface InputModeDeps {
  engine: InferenceEngine<ImageTag>;
  store: ObjectStore;
  staging: Staging;
  publisher: Publisher;
  metrics: InferMetrics;
  log: Logger;
  /** Accepted file suffixes (`source.suffixes`). */
  suffixes: readonly string[];
  /** Images predicted at once. */
  inFlight: number;
  /** Largest image accepted, bytes. */
  maxBytes: number;
  signal?: AbortSignal;
}

/** What one input run did. */
export interface InputModeResult {
  done: number;
  failed: number;
  failures: QueueFailure[];
  predictions: number;
  boxes: number;
  outputs: PublishedOutputs;
  /** The predictions, for `evaluate`. */
  evalPredictions: EvalPrediction[];
}

interface Predicted {
  item: InputItem;
  prediction: ImagePrediction;
}

/**
 * Predicts the images `specs` name and publishes the current model's files for them. A failed
 * image is counted and listed; the others go on.
 *
 * @example
 * ```ts
 * const r = await predictInputs(["@todo.txt"], deps);
 * r.failures; // [{ itemId: "file:///…/b.png", outcome: "failed", reason: "too_large", message }]
 * ```
 */
export async function predictInputs(
  specs: readonly string[],
  deps: InputModeDeps,
): Promise<InputModeResult> {
  const items = await resolveInputs(specs, deps.store, deps.suffixes);
  const results: Predicted[] = [];
  const failures: QueueFailure[] = [];
  let next = 0;
  const lanes = Array.from(
    { length: Math.min(deps.inFlight, Math.max(1, items.length)) },
    async () => {
      while (next < items.length && !deps.signal?.aborted) {
        await predictOne(items[next++], deps, results, failures);
      }
    },
  );
  await Promise.all(lanes);
  // Only the current model's predictions go into its files (a swap may have happened).
  const model = deps.engine.model;
  const mine = results.filter((r) =>
    r.prediction.model.name === model.ref.name && r.prediction.model.version === model.ref.version
  );
  const outputs = await deps.publisher.writeFiles(
    model,
    mine.map(({ item, prediction }) => ({
      id: item.id,
      url: deps.publisher.imageUrl(item.uri, item.key),
      fileName: item.fileName,
      width: prediction.width,
      height: prediction.height,
      boxes: prediction.boxes,
      score: prediction.score,
    })),
  );
  return {
    done: results.length,
    failed: failures.length,
    failures,
    predictions: results.length,
    boxes: results.reduce((s, r) => s + r.prediction.boxes.length, 0),
    outputs,
    evalPredictions: results.map(({ item, prediction }) => ({
      imageId: item.id,
      uris: [item.uri],
      fileName: item.fileName,
      boxes: prediction.boxes,
    })),
  };
}

/** Predicts one input; its outcome goes into `results` or `failures` and the metrics. */
async function predictOne(
  item: InputItem,
  deps: InputModeDeps,
  results: Predicted[],
  failures: QueueFailure[],
): Promise<void> {
  const { metrics, store } = deps;
  const t0 = performance.now();
  try {
    const size = item.key !== null
      ? (await store.head(item.key))?.size
      : (await stat(new URL(item.uri))).size;
    if (size !== undefined && size > deps.maxBytes) {
      throw new SluiceError(
        "too_large",
        `image ${item.id} (${item.fileName}): ${size} bytes exceeds the limit of ${deps.maxBytes}`,
      );
    }
    const tag: ImageTag = {
      id: item.id,
      url: deps.publisher.imageUrl(item.uri, item.key),
      fileName: item.fileName,
      uris: [item.uri],
    };
    const body = () => item.key !== null ? store.get(item.key) : item.read();
    const prediction = await predictStaged(
      deps.engine,
      deps.staging,
      tag,
      body,
      size,
      deps.signal,
      metrics,
    );
    results.push({ item, prediction });
    metrics.itemsTotal.inc({ result: "done" });
    metrics.detectionsTotal.inc(prediction.boxes.length);
  } catch (err) {
    const reason = reasonOf(err);
    metrics.itemsTotal.inc({ result: "failed" });
    metrics.errorsTotal.inc({ reason });
    failures.push({ itemId: item.uri, outcome: "failed", reason, message: messageOf(err) });
    deps.log.warn("input failed", { item: item.uri, reason, error: messageOf(err) });
  } finally {
    metrics.itemDurationSeconds.observe((performance.now() - t0) / 1000);
  }
}

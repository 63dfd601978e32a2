/**
 * One image through the model: staged on local disk under a lease (free-space guard, expected
 * size checked), then predicted by the engine; errors name the image, and a missing object is
 * `source_missing`. Each prediction's boxes are counted by class and their scores observed
 * (`predictions_by_class_total`, `detection_score`) when metrics are given.
 *
 * @example
 * ```ts
 * const tag = { id: "img_01", url: "s3://ds/a.jpg", fileName: "a.jpg", uris: ["s3://ds/a.jpg"] };
 * const prediction = await predictStaged(engine, staging, tag, () => store.get("a.jpg"), 1234, signal);
 * ```
 * @module
 */
import { messageOf, reasonOf, SluiceError } from "../../common/errors/mod.ts";
import { ObjectNotFoundError } from "../../common/objectstore/mod.ts";
import type { Staging } from "../../common/staging/mod.ts";
import type { ImagePrediction, InferenceEngine } from "./inference_engine.ts";
import type { InferMetrics } from "./metrics.ts";

/** What the engine carries with each image through its batch. */
export interface ImageTag {
  id: string;
  url: string;
  fileName: string;
  uris: string[];
  /** Set by the batch hook: the part file holding this image's task. */
  partKey?: string;
}

/**
 * Stages the image, then predicts it.
 *
 * @example
 * ```ts
 * const p = await predictStaged(engine, staging, tag, () => item.read(), undefined, undefined);
 * p.boxes.length;
 * ```
 */
export async function predictStaged(
  engine: InferenceEngine<ImageTag>,
  staging: Staging,
  tag: ImageTag,
  body: () => Promise<ReadableStream<Uint8Array> | Uint8Array>,
  expectedBytes: number | undefined,
  signal: AbortSignal | undefined,
  metrics?: Pick<InferMetrics, "observeBoxes">,
): Promise<ImagePrediction> {
  try {
    await using lease = await staging.lease(tag.id);
    const file = await lease.publish(tag.fileName, await body(), {
      ...(expectedBytes !== undefined ? { expectedBytes } : {}),
    });
    const prediction = await engine.predict(file.path, tag, signal);
    metrics?.observeBoxes(prediction.boxes);
    return prediction;
  } catch (err) {
    if (signal?.aborted) throw err;
    if (err instanceof ObjectNotFoundError) {
      throw new SluiceError(
        "source_missing",
        `image ${tag.id} (${tag.fileName}): ${err.message}`,
        { cause: err },
      );
    }
    throw new SluiceError(reasonOf(err), `image ${tag.id} (${tag.fileName}): ${messageOf(err)}`, {
      cause: err,
    });
  }
}

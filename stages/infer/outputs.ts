/**
 * Prediction outputs for human review, in the object store under
 * `<prefix>/<model>/<version>/`:
 *
 * - `labelstudio.json`: Label Studio tasks with `predictions` (pre-annotations): `model_version`
 *   names the model, version and alias (`det:3@champion`), each prediction has a score (the
 *   mean box score) and each region its own `score`, in percent of `original_width` /
 *   `original_height`;
 * - `coco_results.json`: COCO results (`image_id`, `category_id`, `bbox`, `score`), with
 *   `coco_images.json` giving the images and categories those ids refer to;
 * - `parts/<id>.labelstudio.json`: the tasks of one inference batch, written as the batch
 *   finishes (the id is derived from the batch's image ids, so a re-run writes the same key).
 *
 * Files are built in image-id order, so every host writes identical bytes for the same rows.
 *
 * @example
 * ```ts
 * const keys = await writeOutputs(store, "predictions", ref, spec, images);
 * keys.labelStudio; // "predictions/sluice-detector/3/labelstudio.json"
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import {
  type CocoResult,
  type LabelStudioTask,
  predictionsToLabelStudio,
} from "../../common/annotations/mod.ts";
import type { PredictionBox } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { type ModelRef, modelVersionLabel } from "./model_resolver.ts";
import {
  classCountsOf,
  formatPriority,
  PRIORITY_KEY,
  reviewPriority,
} from "../../common/review/review_priority.ts";
import type { DetectorSpec } from "./model_card.ts";

/** One predicted image, as the outputs need it. */
export interface PredictedImage {
  /** Sluice image id. */
  id: string;
  /** What Label Studio loads. */
  url: string;
  /** Original file name (COCO `file_name`). */
  fileName: string;
  /** Original (oriented) size in pixels. */
  width: number;
  height: number;
  boxes: PredictionBox[];
  /** Image-level score. */
  score: number;
}

/** Object keys of one model version's outputs. */
export interface OutputKeys {
  dir: string;
  labelStudio: string;
  cocoResults: string;
  cocoImages: string;
  /** The key of a per-batch part. */
  part(partId: string): string;
}

const SAFE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

function keySegment(s: string): string {
  return SAFE.test(s) ? s : encodeURIComponent(s).replace(/^\./, "%2E");
}

/**
 * The keys for a model version under `prefix`.
 *
 * @example
 * ```ts
 * outputKeys("predictions", { name: "det", version: "3" }).cocoResults; // "predictions/det/3/coco_results.json"
 * ```
 */
export function outputKeys(prefix: string, ref: Pick<ModelRef, "name" | "version">): OutputKeys {
  const dir = [prefix, keySegment(ref.name), keySegment(ref.version)].filter((s) => s !== "").join(
    "/",
  );
  return {
    dir,
    labelStudio: `${dir}/labelstudio.json`,
    cocoResults: `${dir}/coco_results.json`,
    cocoImages: `${dir}/coco_images.json`,
    part: (partId) => `${dir}/parts/${partId}.labelstudio.json`,
  };
}

/**
 * A part id derived from the images it holds.
 *
 * @example
 * ```ts
 * partId(["img_b", "img_a"]) === partId(["img_a", "img_b"]); // true
 * ```
 */
export function partId(imageIds: readonly string[]): string {
  return createHash("sha256").update([...imageIds].sort().join("\n")).digest("hex").slice(0, 20);
}

function byId(images: readonly PredictedImage[]): PredictedImage[] {
  return [...images].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Label Studio tasks with one prediction each (images without boxes still get a task: a
 * reviewer confirms there is nothing to label).
 *
 * @example
 * ```ts
 * const [task] = labelStudioTasks([image], ref);
 * task.predictions![0].model_version; // "det:3@champion"
 * ```
 */
export function labelStudioTasks(
  images: readonly PredictedImage[],
  ref: Pick<ModelRef, "name" | "version" | "alias">,
  opts: { fromName?: string; toName?: string; dataKey?: string } = {},
): LabelStudioTask[] {
  const label = modelVersionLabel(ref);
  // Review priority (issue 16): class balance against the classes predicted in these images.
  const classCounts = classCountsOf(images);
  return byId(images).map((img) => {
    const pred = predictionsToLabelStudio(
      { modelVersion: label, boxes: img.boxes, score: img.score },
      { width: img.width, height: img.height },
      { fromName: opts.fromName, toName: opts.toName },
    );
    return {
      data: {
        [opts.dataKey ?? "image"]: img.url,
        sluice_image_id: img.id,
        // Review provenance (issue 16): the model version this pre-annotation came from.
        sluice_model: ref.name,
        sluice_model_version: ref.version,
        [PRIORITY_KEY]: formatPriority(reviewPriority(img.boxes, { classCounts })),
      },
      predictions: [{ ...pred, model_version: label }],
    };
  });
}

/** COCO results plus the image and category tables their ids refer to. */
export interface CocoOutputs {
  results: CocoResult[];
  images: {
    id: number;
    file_name: string;
    width: number;
    height: number;
    sluice_image_id: string;
  }[];
  categories: { id: number; name: string; supercategory: string }[];
}

/**
 * COCO results for predicted images: image ids are 1-based in image-id order, category ids
 * come from the model card (the training categories).
 *
 * @example
 * ```ts
 * const { results } = cocoOutputs(images, spec);
 * results[0]; // { image_id: 1, category_id: 2, bbox: [x, y, w, h], score: 0.9 }
 * ```
 */
export function cocoOutputs(
  images: readonly PredictedImage[],
  spec: Pick<DetectorSpec, "labels" | "categoryIds">,
): CocoOutputs {
  const categoryOf = new Map(spec.labels.map((l, i) => [l, spec.categoryIds[i]]));
  const out: CocoOutputs = {
    results: [],
    images: [],
    categories: spec.labels.map((name, i) => ({
      id: spec.categoryIds[i],
      name,
      supercategory: "",
    })),
  };
  byId(images).forEach((img, i) => {
    const imageId = i + 1;
    out.images.push({
      id: imageId,
      file_name: img.fileName,
      width: img.width,
      height: img.height,
      sluice_image_id: img.id,
    });
    for (const b of img.boxes) {
      const categoryId = categoryOf.get(b.label);
      if (categoryId === undefined) continue;
      out.results.push({
        image_id: imageId,
        category_id: categoryId,
        bbox: [...b.bbox],
        score: b.score,
      });
    }
  });
  return out;
}

const JSON_TYPE = { contentType: "application/json" };

function bytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value) + "\n");
}

/**
 * Writes `labelstudio.json`, `coco_results.json` and `coco_images.json` for a model version.
 *
 * @example
 * ```ts
 * await writeOutputs(store, "predictions", model.ref, model.spec, images);
 * ```
 */
export async function writeOutputs(
  store: ObjectStore,
  prefix: string,
  ref: ModelRef,
  spec: Pick<DetectorSpec, "labels" | "categoryIds">,
  images: readonly PredictedImage[],
  names: { fromName?: string; toName?: string; dataKey?: string } = {},
): Promise<OutputKeys> {
  const keys = outputKeys(prefix, ref);
  const coco = cocoOutputs(images, spec);
  await store.put(keys.labelStudio, bytes(labelStudioTasks(images, ref, names)), JSON_TYPE);
  await store.put(
    keys.cocoImages,
    bytes({ images: coco.images, categories: coco.categories }),
    JSON_TYPE,
  );
  await store.put(keys.cocoResults, bytes(coco.results), JSON_TYPE);
  return keys;
}

/**
 * Writes the Label Studio tasks of one batch as a part; returns its key and the tasks.
 *
 * @example
 * ```ts
 * const { key } = await writePart(store, "predictions", ref, batchImages);
 * ```
 */
export async function writePart(
  store: ObjectStore,
  prefix: string,
  ref: ModelRef,
  images: readonly PredictedImage[],
  names: { fromName?: string; toName?: string; dataKey?: string } = {},
): Promise<{ key: string; tasks: LabelStudioTask[] }> {
  const tasks = labelStudioTasks(images, ref, names);
  const key = outputKeys(prefix, ref).part(partId(images.map((i) => i.id)));
  await store.put(key, bytes(tasks), JSON_TYPE);
  return { key, tasks };
}

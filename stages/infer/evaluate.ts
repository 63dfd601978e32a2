/**
 * Scores predictions against held-out ground truth (a COCO instances file): mAP@0.5 and
 * mAP@0.5:0.95, COCO's 101-point definition (common/eval/mean_ap.ts). Ground-truth images are
 * matched to predicted images by Sluice image id (`sluice_image_id`), URI or file name; classes
 * by name. Only matched images are scored (an image that was never predicted says nothing about
 * the model); how many ground-truth images were not matched is reported.
 *
 * @example
 * ```ts
 * const report = await evaluate({ gt: "/data/holdout/coco.json", manifest, model: summary.model });
 * console.log(report.map50, report.map50_95);
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { createImageMatcher, imageRefFromUrl } from "../../common/annotations/mod.ts";
import { SluiceError } from "../../common/errors/mod.ts";
import {
  type ClassAp,
  type CocoStats,
  type GroundTruth,
  meanAveragePrecision,
  type Prediction,
} from "../../common/eval/mean_ap.ts";
import type { ImageRow, ManifestStore, PredictionBox } from "../../common/manifest/mod.ts";
import { predictedImagesFromManifest } from "./predicted_images.ts";

/** A predicted image to score: its id, the URIs and file names it is known by, its boxes. */
export interface EvalPrediction {
  imageId: string;
  uris: string[];
  fileName?: string;
  boxes: PredictionBox[];
}

/** The score. */
export interface EvalReport {
  map50: number;
  map50_95: number;
  apDefinition: "coco-101-point";
  perClass: ClassAp[];
  /** COCOeval.summarize()'s twelve numbers (AP/AR by area range, AR@1/10/100). */
  stats: CocoStats;
  /** URIs of the evaluation pictures (PR curves, confusion matrix, contact sheet), when drawn. */
  pictures?: string[];
  /** Ground-truth images, and how many were matched to a predicted image. */
  gtImages: number;
  matchedImages: number;
  /** File names of ground-truth images without a prediction (first 20). */
  unmatched: string[];
  /** Predicted labels that are no ground-truth category (their boxes are not scored). */
  unknownLabels: string[];
  boxesScored: number;
}

/** The ground-truth file is not a usable COCO file. */
export class GroundTruthError extends SluiceError {
  constructor(message: string) {
    super("invalid_ground_truth", message);
    this.name = "GroundTruthError";
  }
}

const GtSchema = z.looseObject({
  images: z.array(z.looseObject({
    id: z.union([z.number(), z.string()]),
    file_name: z.string().default(""),
    sluice_image_id: z.string().optional(),
  })),
  annotations: z.array(z.looseObject({
    image_id: z.union([z.number(), z.string()]),
    category_id: z.number(),
    bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]),
    iscrowd: z.number().optional(),
    area: z.number().nonnegative().optional(),
  })).default([]),
  categories: z.array(z.looseObject({ id: z.number(), name: z.string() })).min(1),
});

function parseGt(input: unknown, what: string) {
  const parsed = GtSchema.safeParse(input);
  if (!parsed.success) {
    throw new GroundTruthError(
      `${what}: expected COCO instances (images, annotations, categories), found ` +
        parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    );
  }
  return parsed.data;
}

/**
 * Scores `predictions` against `gt` (parsed COCO JSON).
 *
 * @example
 * ```ts
 * evaluatePredictions(gtJson, [{ imageId: "img_1", uris: ["s3://raw/a.jpg"], boxes }]).map50;
 * ```
 */
export function evaluatePredictions(
  gtJson: unknown,
  predictions: readonly EvalPrediction[],
  onScored?: (scored: ScoredSet) => void,
): EvalReport {
  const gt = parseGt(gtJson, "ground truth");
  const match = createImageMatcher(
    predictions.map((p) => ({
      id: p.imageId,
      uris: p.uris,
      ...(p.fileName
        ? { fileNames: [p.fileName, ...p.uris.map((u) => imageRefFromUrl(u).fileName)] }
        : {}),
    })),
  );
  const byPrediction = new Map(predictions.map((p) => [p.imageId, p]));
  const categoryByName = new Map(gt.categories.map((c) => [c.name, c.id]));
  const matchedGt: GroundTruth["images"] = [];
  const unmatched: string[] = [];
  const results: Prediction[] = [];
  const unknown = new Set<string>();
  const used = new Set<string>();
  const imageUris = new Map<number | string, string[]>();
  const fileNames = new Map<number | string, string>();
  for (const img of gt.images) {
    const m = match(imageRefFromUrl(img.file_name, img.sluice_image_id ?? null));
    if (m.kind !== "matched" || used.has(m.id)) {
      if (unmatched.length < 20) unmatched.push(img.file_name || String(img.id));
      continue;
    }
    used.add(m.id);
    matchedGt.push({ id: img.id });
    imageUris.set(img.id, byPrediction.get(m.id)!.uris);
    fileNames.set(img.id, img.file_name);
    for (const b of byPrediction.get(m.id)!.boxes) {
      const categoryId = categoryByName.get(b.label);
      if (categoryId === undefined) {
        unknown.add(b.label);
        continue;
      }
      results.push({ image_id: img.id, category_id: categoryId, bbox: b.bbox, score: b.score });
    }
  }
  const kept = new Set(matchedGt.map((i) => i.id));
  const scoredGt = {
    images: matchedGt.map((i) => ({ ...i, file_name: fileNames.get(i.id) })),
    annotations: gt.annotations.filter((a) => kept.has(a.image_id)),
    categories: gt.categories,
  };
  const r = meanAveragePrecision(scoredGt, results);
  onScored?.({ gt: scoredGt, predictions: results, imageUris });
  return {
    map50: r.map50,
    map50_95: r.map50_95,
    apDefinition: r.apDefinition,
    perClass: r.perClass,
    stats: r.stats,
    gtImages: gt.images.length,
    matchedImages: matchedGt.length,
    unmatched,
    unknownLabels: [...unknown].sort(),
    boxesScored: results.length,
  };
}

/** What was scored: the matched ground truth, the predictions in its ids, the images' URIs. */
export interface ScoredSet {
  gt: GroundTruth & { images: { id: number | string; file_name?: string }[] };
  predictions: Prediction[];
  /** Ground-truth image id → the URIs of the predicted image it matched. */
  imageUris: Map<number | string, string[]>;
}

/** What {@link evaluate} scores. */
export interface EvaluateOptions {
  /** Receives what was scored (for the evaluation pictures). */
  onScored?: (scored: ScoredSet) => void;
  /** A COCO file path, or its parsed content. */
  gt: string | unknown;
  /** Predictions given directly (e.g. from an `--input` run)… */
  predictions?: readonly EvalPrediction[];
  /** …or read from the manifest for this model version. */
  manifest?: Pick<ManifestStore, "listPredictions" | "listImages" | "getImage">;
  model?: { name: string; version: string };
}

/**
 * Loads the ground truth and scores the predictions of one model version (from the manifest)
 * or the given predictions.
 *
 * @example
 * ```ts
 * const r = await evaluate({ gt: "holdout.json", manifest, model: { name: "det", version: "3" } });
 * ```
 */
export async function evaluate(opts: EvaluateOptions): Promise<EvalReport> {
  let gtJson = opts.gt;
  if (typeof gtJson === "string") {
    let text: string;
    try {
      text = await readFile(gtJson, "utf8");
    } catch (err) {
      throw new GroundTruthError(
        `${gtJson}: expected a readable COCO file, found ${(err as Error).message}`,
      );
    }
    try {
      gtJson = JSON.parse(text);
    } catch (err) {
      throw new GroundTruthError(`${opts.gt}: expected JSON, found ${(err as Error).message}`);
    }
  }
  let predictions = opts.predictions;
  if (!predictions) {
    if (!opts.manifest || !opts.model) {
      throw new SluiceError(
        "invalid_options",
        "evaluate: expected predictions, or a manifest and a model",
      );
    }
    const { images } = await predictedImagesFromManifest(
      opts.manifest,
      opts.model,
      (row: ImageRow) => row.datasetUri ?? row.sourceUri,
    );
    predictions = images.map((i) => ({
      imageId: i.id,
      uris: i.uris,
      fileName: i.fileName,
      boxes: i.boxes,
    }));
  }
  return evaluatePredictions(gtJson, predictions, opts.onScored);
}

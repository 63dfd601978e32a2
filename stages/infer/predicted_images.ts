/**
 * Gathers one model version's predictions from the manifest together with what the outputs need
 * of each image (URL, file name, size). The manifest is the record every host writes to, so
 * the published files are built from it rather than from one host's memory.
 *
 * @example
 * ```ts
 * const { images } = await predictedImagesFromManifest(manifest, { name: "det", version: "3" }, (row) => row.datasetUri!);
 * await writeOutputs(store, "predictions", ref, spec, images);
 * ```
 * @module
 */
import { basenameOf } from "../../common/annotations/mod.ts";
import type { ImageRow, ManifestStore } from "../../common/manifest/mod.ts";
import type { PredictedImage } from "./outputs.ts";

/** A predicted image with every URI it is known by (for matching ground truth). */
export interface ManifestPrediction extends PredictedImage {
  uris: string[];
}

const PAGE = 1000;

/**
 * Predictions of (name, version) joined with their image rows, in image-id order. Images whose
 * row lacks a size are left out and listed in `missing` (their tasks could not be placed).
 *
 * @example
 * ```ts
 * const { images, missing } = await predictedImagesFromManifest(manifest, ref, urlOf);
 * ```
 */
export async function predictedImagesFromManifest(
  manifest: Pick<ManifestStore, "listPredictions" | "listImages" | "getImage">,
  ref: { name: string; version: string; registry?: string },
  urlOf: (row: ImageRow) => string,
): Promise<{ images: ManifestPrediction[]; missing: string[] }> {
  const rows = await manifest.listPredictions({
    modelName: ref.name,
    modelVersion: ref.version,
    ...(ref.registry ? { registry: ref.registry } : {}),
  });
  const wanted = new Set(rows.map((r) => r.imageId));
  const byId = new Map<string, ImageRow>();
  if (wanted.size > PAGE) {
    // Many predictions: page through the images instead of one query per image.
    let afterId: string | undefined;
    for (;;) {
      const page = await manifest.listImages({ afterId, limit: PAGE });
      for (const img of page) if (wanted.has(img.id)) byId.set(img.id, img);
      if (page.length < PAGE) break;
      afterId = page[page.length - 1].id;
    }
  } else {
    for (const id of wanted) {
      const img = await manifest.getImage(id);
      if (img) byId.set(id, img);
    }
  }
  const images: ManifestPrediction[] = [];
  const missing: string[] = [];
  for (const r of rows) {
    const img = byId.get(r.imageId);
    if (!img || img.width === null || img.height === null) {
      missing.push(r.imageId);
      continue;
    }
    images.push({
      id: img.id,
      url: urlOf(img),
      fileName: basenameOf(img.sourceKey || img.sourceUri),
      width: img.width,
      height: img.height,
      boxes: r.boxes,
      score: r.score,
      uris: [img.sourceUri, ...(img.datasetUri ? [img.datasetUri] : [])],
    });
  }
  images.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { images, missing };
}

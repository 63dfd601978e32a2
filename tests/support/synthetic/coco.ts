/**
 * COCO ground truth for a synthetic dataset (images, annotations, categories). Category ids are
 * 1-based in label order; image ids are 1-based in dataset order.
 * @module
 */
import type { SyntheticDataset } from "./dataset.ts";

export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0 | 1;
}

export interface CocoCategory {
  id: number;
  name: string;
}

export interface CocoGroundTruth {
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

/**
 * Converts a dataset to COCO ground truth (boxes in original pixels).
 *
 * @example
 * ```ts
 * const coco = toCocoGroundTruth(await generateDataset({ count: 5, seed: 1 }));
 * await Deno.writeTextFile("gt.json", JSON.stringify(coco));
 * ```
 */
export function toCocoGroundTruth(
  dataset: Pick<SyntheticDataset, "images" | "labels">,
): CocoGroundTruth {
  const categories = dataset.labels.map((name, i) => ({ id: i + 1, name }));
  const idOf = new Map(categories.map((c) => [c.name, c.id]));
  const images: CocoImage[] = [];
  const annotations: CocoAnnotation[] = [];
  dataset.images.forEach((img, i) => {
    images.push({ id: i + 1, file_name: img.fileName, width: img.width, height: img.height });
    for (const b of img.boxes) {
      annotations.push({
        id: annotations.length + 1,
        image_id: i + 1,
        category_id: idOf.get(b.label) ?? 0,
        bbox: [...b.bbox],
        area: b.bbox[2] * b.bbox[3],
        iscrowd: 0,
      });
    }
  });
  return { images, annotations, categories };
}

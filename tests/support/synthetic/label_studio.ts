/**
 * A Label Studio JSON export of a synthetic dataset: one task per image with its boxes as
 * `rectanglelabels` results, in percent of the original size (Label Studio's convention), plus
 * `original_width`/`original_height` so importers can convert back to pixels.
 * @module
 */
import type { SyntheticDataset } from "./dataset.ts";

export interface LabelStudioResult {
  id: string;
  type: "rectanglelabels";
  from_name: string;
  to_name: string;
  original_width: number;
  original_height: number;
  image_rotation: 0;
  value: {
    x: number;
    y: number;
    width: number;
    height: number;
    rotation: 0;
    rectanglelabels: string[];
  };
}

export interface LabelStudioTask {
  id: number;
  data: { image: string };
  annotations: { id: number; result: LabelStudioResult[] }[];
}

export interface LabelStudioExportOptions {
  /** Maps a file name to the task's `data.image` (an `s3://` URI or a relative URL). */
  imageUrl: (fileName: string) => string;
  /** Control names in the labeling config; default `label` and `image`. */
  fromName?: string;
  toName?: string;
}

/**
 * Builds the export (an array of tasks).
 *
 * @example
 * ```ts
 * const tasks = toLabelStudioTasks(ds, { imageUrl: (f) => `s3://raw/synthetic/${f}` });
 * await Deno.writeTextFile("export.json", JSON.stringify(tasks));
 * ```
 */
export function toLabelStudioTasks(
  dataset: Pick<SyntheticDataset, "images">,
  opts: LabelStudioExportOptions,
): LabelStudioTask[] {
  const fromName = opts.fromName ?? "label";
  const toName = opts.toName ?? "image";
  return dataset.images.map((img, i) => ({
    id: i + 1,
    data: { image: opts.imageUrl(img.fileName) },
    annotations: [{
      id: i + 1,
      result: img.boxes.map((b, j) => ({
        id: `r${i + 1}_${j + 1}`,
        type: "rectanglelabels" as const,
        from_name: fromName,
        to_name: toName,
        original_width: img.width,
        original_height: img.height,
        image_rotation: 0 as const,
        value: {
          x: (b.bbox[0] / img.width) * 100,
          y: (b.bbox[1] / img.height) * 100,
          width: (b.bbox[2] / img.width) * 100,
          height: (b.bbox[3] / img.height) * 100,
          rotation: 0 as const,
          rectanglelabels: [b.label],
        },
      })),
    }],
  }));
}

/**
 * Writes an export set (see `annotation_sets.ts`) as a YOLO dataset (Ultralytics layout with
 * `data.yaml`, or the `classes.txt` layout) or a Pascal VOC dataset, copying each image's bytes
 * from its store. From a snapshot, the images are the variants trained on and the split is the
 * snapshot's, so `yolo train data=<dir>/data.yaml` trains on exactly that data.
 *
 * @example
 * ```ts
 * const s = await exportDataset(set, { format: "yolo", dir: "out", task: "detect", readImage });
 * ```
 * @module
 */
import type { AnnotationProblem } from "../../common/annotations/errors.ts";
import type { LabelConfig } from "../../common/annotations/label_config.ts";
import type { VocOrigin } from "../../common/annotations/voc.ts";
import { writeVocDataset } from "../../common/annotations/voc_dataset.ts";
import type { YoloTask } from "../../common/annotations/yolo.ts";
import { writeYoloDataset } from "../../common/annotations/yolo_dataset.ts";
import type { ExportSet, ExportSetImage } from "./annotation_sets.ts";
import { classNames } from "./annotations_export.ts";
import type { DatasetFormat } from "./dataset_formats.ts";

export interface DatasetExportOptions {
  format: DatasetFormat;
  dir: string;
  /** YOLO label layout (default `detect`). */
  task?: YoloTask;
  /** YOLO directory layout (default `ultralytics`). */
  layout?: "ultralytics" | "classes";
  vocOrigin?: VocOrigin;
  labelConfig?: LabelConfig;
  /** Reads an image's bytes; without it, only annotations are written. */
  readImage?: (image: ExportSetImage) => Promise<Uint8Array>;
}

/** What was written. */
export interface DatasetExportSummary {
  format: DatasetFormat;
  dir: string;
  images: number;
  imagesWritten: number;
  /** Label or XML files. */
  annotationFiles: number;
  objects: number;
  names: string[];
  splits: Record<string, number>;
  problems: AnnotationProblem[];
  snapshotId?: string;
}

/**
 * Writes the dataset.
 *
 * @example
 * ```ts
 * await exportDataset(set, { format: "voc", dir: "voc", vocOrigin: 1 });
 * ```
 */
export async function exportDataset(
  set: ExportSet,
  opts: DatasetExportOptions,
): Promise<DatasetExportSummary> {
  const names = classNames(set, opts.labelConfig);
  const byId = new Map(set.images.map((i) => [i.id, i]));
  const read = opts.readImage;
  const imageBytes = read ? (img: { id: string }) => read(byId.get(img.id)!) : undefined;
  const splits: Record<string, number> = {};
  for (const img of set.images) {
    const s = img.split ?? "train";
    splits[s] = (splits[s] ?? 0) + 1;
  }
  const base = {
    format: opts.format,
    names,
    splits,
    ...(set.snapshotId ? { snapshotId: set.snapshotId } : {}),
  };
  if (opts.format === "yolo") {
    const s = await writeYoloDataset({
      dir: opts.dir,
      task: opts.task ?? "detect",
      layout: opts.layout ?? "ultralytics",
      names,
      images: set.images.map((i) => ({
        id: i.id,
        fileName: i.fileName,
        width: i.width,
        height: i.height,
        split: i.split ?? "train",
      })),
      annotationsByImage: set.byImage,
      ...(imageBytes ? { imageBytes } : {}),
    });
    return {
      ...base,
      dir: s.dir,
      images: s.images,
      imagesWritten: s.imagesWritten,
      annotationFiles: s.labelFiles,
      objects: s.objects,
      problems: s.problems,
    };
  }
  const s = await writeVocDataset({
    dir: opts.dir,
    images: set.images.map((i) => ({
      id: i.id,
      fileName: i.fileName,
      width: i.width,
      height: i.height,
      ...(i.split ? { split: i.split } : {}),
    })),
    annotationsByImage: set.byImage,
    ...(opts.vocOrigin !== undefined ? { origin: opts.vocOrigin } : {}),
    ...(imageBytes ? { imageBytes } : {}),
  });
  return {
    ...base,
    dir: s.dir,
    images: s.images,
    imagesWritten: s.imagesWritten,
    annotationFiles: s.xmlFiles,
    objects: s.objects,
    problems: s.problems,
  };
}

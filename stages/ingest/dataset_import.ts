/**
 * Reads a YOLO or Pascal VOC dataset directory into import records for
 * `importParsedAnnotations` (the same matching, box policy and replacement as the file formats).
 * Images are matched by the Sluice id an export recorded (`sluice_images.json`,
 * `<sluice_image_id>`), else by file name. A YOLO image without a label file is "not labelled"
 * and left as it is; an empty one means "reviewed, no objects". A YOLO label file without its
 * image (a label-only export) is matched by file name without extension and read with the
 * matched image's size.
 *
 * @example
 * ```ts
 * const parsed = await readDatasetRecords("yolo", "/data/coco8", { yoloTask: "detect" });
 * ```
 * @module
 */
import type { LabelConfig } from "../../common/annotations/label_config.ts";
import type { VocOrigin } from "../../common/annotations/voc.ts";
import { readVocDataset } from "../../common/annotations/voc_dataset.ts";
import type { YoloTask } from "../../common/annotations/yolo.ts";
import { parseLabelOnly, readYoloDataset } from "../../common/annotations/yolo_dataset.ts";
import type { ParsedAnnotations } from "./annotations_import.ts";
import type { DatasetFormat } from "./dataset_formats.ts";

export interface DatasetReadOptions {
  yoloTask?: YoloTask | "auto";
  vocOrigin?: VocOrigin;
  /** YOLO: class names from the config (class id = category id) instead of the dataset's. */
  labelConfig?: LabelConfig;
}

/**
 * Reads the directory. Throws AnnotationFormatError for a directory in neither layout.
 *
 * @example
 * ```ts
 * const { records, recordFailures } = await readDatasetRecords("voc", "VOC2012");
 * ```
 */
export async function readDatasetRecords(
  format: DatasetFormat,
  dir: string,
  opts: DatasetReadOptions = {},
): Promise<ParsedAnnotations> {
  if (format === "yolo") {
    let names: string[] | undefined;
    if (opts.labelConfig) {
      names = [];
      for (const [l, i] of opts.labelConfig.categoryIds) names[i] = l;
      names = Array.from(names, (n, i) => n ?? `unused_${i}`);
    }
    const ds = await readYoloDataset(dir, {
      ...(opts.yoloTask ? { task: opts.yoloTask } : {}),
      ...(names ? { names } : {}),
    });
    const yoloOpts = opts.yoloTask ? { task: opts.yoloTask } : {};
    return {
      format,
      records: [
        ...ds.images.map((i) => ({
          ref: i.imageRef,
          width: i.width,
          height: i.height,
          annotations: i.annotations,
          labelled: i.labelled,
        })),
        // A label-only export: the objects are read with the matched image's size.
        ...ds.labelOnly.map((l) => ({
          ref: l.imageRef,
          width: null,
          height: null,
          annotations: [],
          labelled: true,
          annotationsFor: (size: { width: number; height: number }) =>
            parseLabelOnly(l, size, ds.names, yoloOpts),
        })),
      ],
      recordFailures: ds.failures.map((f) => ({ path: f.path, message: f.message })),
      problems: [...ds.problems, ...ds.images.flatMap((i) => i.problems)],
      labelOrder: ds.names,
    };
  }
  const ds = await readVocDataset(dir, {
    ...(opts.vocOrigin !== undefined ? { origin: opts.vocOrigin } : {}),
  });
  const seen: string[] = [];
  for (const r of ds.records) {
    for (const a of r.annotations) if (!seen.includes(a.label)) seen.push(a.label);
  }
  return {
    format,
    records: ds.records.map((r) => ({
      ref: r.imageRef,
      width: r.width,
      height: r.height,
      annotations: r.annotations,
      labelled: true,
    })),
    recordFailures: ds.failures.map((f) => ({ path: f.path, message: f.message })),
    problems: ds.records.flatMap((r) => r.problems),
    labelOrder: seen,
  };
}

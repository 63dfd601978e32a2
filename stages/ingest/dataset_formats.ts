/**
 * Annotation formats that live in a directory rather than one file: YOLO (Ultralytics or
 * `classes.txt` layout) and Pascal VOC. They import and export from the command line only (a
 * configured `ingest.annotations` entry is one file).
 *
 * @example
 * ```ts
 * isDatasetFormat("yolo"); // true
 * ```
 * @module
 */

/** Directory formats. */
export const DATASET_FORMATS = ["yolo", "voc"] as const;
export type DatasetFormat = typeof DATASET_FORMATS[number];

/** True for a directory format. */
export function isDatasetFormat(f: string): f is DatasetFormat {
  return (DATASET_FORMATS as readonly string[]).includes(f);
}

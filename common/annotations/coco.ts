/**
 * COCO detection JSON: import (images, boxes, polygon segmentations, categories with id gaps),
 * export with stable category ids, and the COCO *results* format for predictions.
 *
 * Boxes are `[x, y, w, h]` in pixels in both COCO and Sluice, so nothing is rescaled. A
 * segmentation is a list of flat polygons `[x1, y1, x2, y2, ...]`. Sluice holds one polygon per
 * annotation, so an object with several parts (an occluded car cut in two) is imported, by
 * default (`multipart: "split"`), as ONE ANNOTATION PER PART, each with the envelope of its part
 * as bbox and `sourceRef` `coco:<id>/part<k>`: nothing is lost, and bbox and polygon always agree.
 * This is what Label Studio shows too (one region per part). `multipart: "largest"` keeps only
 * the largest part and recomputes the bbox from it. RLE masks are not decoded.
 *
 * @example
 * ```ts
 * const { images, categories } = await readCoco("instances_val.json");
 * const { coco } = toCoco({ images: rows, annotationsByImage, labels: await manifest.ensureLabels(names) });
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import type { AnnotationInput, BBox, PredictionBox } from "../manifest/mod.ts";
import { AnnotationFormatError, type AnnotationProblem, jsonPath } from "./errors.ts";
import { boxArea, envelope, type Point, polygonArea } from "./geometry.ts";
import { type ByImage, lookupByImage } from "./_by_image.ts";
import { type ImageRef, imageRefFromUrl } from "./image_match.ts";
import { rotatedRectangle } from "./rotated_box.ts";
import { parseJsonInput } from "./_json_input.ts";

/** One imported COCO image with its annotations in Sluice's form. */
export interface CocoImageImport {
  /** The image's id in the COCO file. */
  cocoId: number | string;
  fileName: string;
  width: number;
  height: number;
  /** Matching candidates built from `file_name` (and `sluice_image_id` when present). */
  imageRef: ImageRef;
  annotations: AnnotationInput[];
  problems: AnnotationProblem[];
}

export interface CocoImport {
  file: string;
  /** In file order, including images without annotations. */
  images: CocoImageImport[];
  categories: { id: number; name: string }[];
  /** Problems that belong to no image (unknown image ids, bad categories). */
  problems: AnnotationProblem[];
  /** Image records that could not be read; the others were imported. */
  failures: AnnotationFormatError[];
}

/** Import options (validated with zod). */
export const CocoImportOptionsSchema = z.strictObject({
  file: z.string().default("<coco json>"),
  /** RLE segmentations: skip the annotation (default) or keep its bbox without a mask. */
  rle: z.enum(["skip", "bbox"]).default("skip"),
  /** `iscrowd: 1` regions mark many objects at once: skipped by default, as detectors train. */
  crowd: z.enum(["skip", "keep"]).default("skip"),
  sourceRefPrefix: z.string().default("coco:"),
  /** Multi-part polygons: one annotation per part (default) or the largest part only. */
  multipart: z.enum(["split", "largest"]).default("split"),
});
export type CocoImportOptions = z.input<typeof CocoImportOptionsSchema>;

const IdSchema = z.union([z.number(), z.string()]);
const DocSchema = z.looseObject({
  images: z.array(z.unknown()),
  annotations: z.array(z.unknown()).default([]),
  categories: z.array(z.unknown()).default([]),
});
const ImageSchema = z.looseObject({
  id: IdSchema,
  file_name: z.string().min(1),
  width: z.number().positive(),
  height: z.number().positive(),
  sluice_image_id: z.string().nullish(),
});
const CategorySchema = z.looseObject({ id: z.number().int(), name: z.string().min(1) });
const AnnSchema = z.looseObject({
  id: IdSchema.nullish(),
  image_id: IdSchema,
  category_id: z.number().int(),
  bbox: z.array(z.number()).nullish(),
  segmentation: z.unknown().optional(),
  iscrowd: z.number().nullish(),
  sluice_rotation: z.number().nullish(),
});

/**
 * Reads and imports a COCO JSON file.
 *
 * @example
 * ```ts
 * const coco = await readCoco("annotations/instances_train.json");
 * ```
 */
export async function readCoco(path: string, options: CocoImportOptions = {}): Promise<CocoImport> {
  return parseCoco(await readFile(path, "utf8"), { file: path, ...options });
}

/**
 * Imports COCO JSON text or an already parsed value. Broken JSON or a document without an
 * `images` array throws {@link AnnotationFormatError}; bad image records go to `failures` and bad
 * annotations to `problems`, and never stop the rest.
 *
 * @example
 * ```ts
 * const { images } = parseCoco(text, { crowd: "keep" });
 * ```
 */
export function parseCoco(input: string | unknown, options: CocoImportOptions = {}): CocoImport {
  const opts = CocoImportOptionsSchema.parse(options);
  const doc = DocSchema.safeParse(parseJsonInput(input, opts.file));
  if (!doc.success) {
    const issue = doc.error.issues[0];
    throw new AnnotationFormatError(
      opts.file,
      jsonPath(issue.path),
      `expected a COCO document: ${issue.message}`,
    );
  }
  const problems: AnnotationProblem[] = [];
  const failures: AnnotationFormatError[] = [];
  const { categories, catName } = readCategories(doc.data.categories, problems);
  const { images, byId } = readImages(doc.data.images, opts.file, failures);
  doc.data.annotations.forEach((a, i) => {
    const at = (...keys: PropertyKey[]) => jsonPath(["annotations", i, ...keys]);
    const p = AnnSchema.safeParse(a);
    if (!p.success) {
      const issue = p.error.issues[0];
      problems.push({ path: at(...issue.path), problem: `annotation skipped: ${issue.message}` });
      return;
    }
    const img = byId.get(String(p.data.image_id));
    if (!img) {
      problems.push({
        path: at("image_id"),
        problem: `annotation skipped: no image with id ${p.data.image_id}`,
      });
      return;
    }
    importAnnotation(p.data, i, img, catName, opts);
  });

  return { file: opts.file, images, categories, problems, failures };
}

type CocoOptions = z.output<typeof CocoImportOptionsSchema>;
type ParsedAnnotation = z.output<typeof AnnSchema>;

/** The document's valid categories; skipped ones (invalid, duplicate id) go to `problems`. */
function readCategories(
  list: unknown[],
  problems: AnnotationProblem[],
): { categories: { id: number; name: string }[]; catName: Map<number, string> } {
  const categories: { id: number; name: string }[] = [];
  const catName = new Map<number, string>();
  list.forEach((c, i) => {
    const p = CategorySchema.safeParse(c);
    if (!p.success) {
      const issue = p.error.issues[0];
      problems.push({
        path: jsonPath(["categories", i, ...issue.path]),
        problem: `category skipped: ${issue.message}`,
      });
      return;
    }
    if (catName.has(p.data.id)) {
      problems.push({
        path: jsonPath(["categories", i, "id"]),
        problem: `duplicate category id ${p.data.id}: skipped`,
      });
      return;
    }
    catName.set(p.data.id, p.data.name);
    categories.push({ id: p.data.id, name: p.data.name });
  });
  return { categories, catName };
}

/** The document's valid image records, by id; bad ones (invalid, duplicate id) go to `failures`. */
function readImages(
  list: unknown[],
  file: string,
  failures: AnnotationFormatError[],
): { images: CocoImageImport[]; byId: Map<string, CocoImageImport> } {
  const images: CocoImageImport[] = [];
  const byId = new Map<string, CocoImageImport>();
  list.forEach((im, i) => {
    const p = ImageSchema.safeParse(im);
    if (!p.success) {
      const issue = p.error.issues[0];
      failures.push(
        new AnnotationFormatError(
          file,
          jsonPath(["images", i, ...issue.path]),
          `image: ${issue.message}`,
        ),
      );
      return;
    }
    const key = String(p.data.id);
    if (byId.has(key)) {
      failures.push(
        new AnnotationFormatError(file, jsonPath(["images", i, "id"]), `duplicate image id ${key}`),
      );
      return;
    }
    const rec: CocoImageImport = {
      cocoId: p.data.id,
      fileName: p.data.file_name,
      width: p.data.width,
      height: p.data.height,
      imageRef: imageRefFromUrl(p.data.file_name, p.data.sluice_image_id ?? null),
      annotations: [],
      problems: [],
    };
    byId.set(key, rec);
    images.push(rec);
  });
  return { images, byId };
}

/** Adds annotation `i` (already matched to `img`) to `img`, noting what was skipped or changed. */
function importAnnotation(
  ann: ParsedAnnotation,
  i: number,
  img: CocoImageImport,
  catName: Map<number, string>,
  opts: CocoOptions,
): void {
  const at = (...keys: PropertyKey[]) => jsonPath(["annotations", i, ...keys]);
  const note = (keys: PropertyKey[], problem: string): void => {
    img.problems.push({ path: at(...keys), problem });
  };
  const label = catName.get(ann.category_id);
  if (label === undefined) {
    return note(["category_id"], `annotation skipped: no category with id ${ann.category_id}`);
  }
  if (ann.iscrowd === 1 && opts.crowd === "skip") {
    return note(["iscrowd"], "crowd region skipped");
  }
  const seg = ann.segmentation;
  if (seg !== undefined && seg !== null && !Array.isArray(seg)) {
    if (opts.rle === "skip") {
      return note(["segmentation"], "RLE segmentation is not supported: annotation skipped");
    }
    note(["segmentation"], "RLE segmentation is not supported: kept the bbox without a mask");
  }
  const { parts, multipart } = Array.isArray(seg) && seg.length > 0
    ? polygonParts(seg, opts, note)
    : { parts: [], multipart: false };
  const ref = `${opts.sourceRefPrefix}${ann.id ?? i}`;
  if (multipart) {
    // The file's bbox covers all parts; each kept part gets its own.
    parts.forEach((polygon, k) =>
      img.annotations.push({
        label,
        bbox: envelope(polygon),
        polygon,
        sourceRef: parts.length > 1 ? `${ref}/part${k + 1}` : ref,
      })
    );
    return;
  }
  const polygon = parts[0] ?? null;
  let bbox: BBox | null = null;
  if (ann.bbox && ann.bbox.length === 4 && ann.bbox.every(Number.isFinite)) {
    bbox = [ann.bbox[0], ann.bbox[1], ann.bbox[2], ann.bbox[3]];
  } else if (polygon) {
    bbox = envelope(polygon);
    if (ann.bbox) note(["bbox"], "bbox malformed: used the polygon's envelope");
  } else {
    return note(
      ["bbox"],
      `annotation skipped: expected bbox [x, y, w, h], found ${JSON.stringify(ann.bbox ?? null)}`,
    );
  }
  const out: AnnotationInput = { label, bbox, sourceRef: ref };
  if (polygon) out.polygon = polygon;
  // Sluice's own exports mark rotated boxes (corners in the segmentation) with their angle.
  if (polygon && ann.sluice_rotation && rotatedRectangle(polygon)) {
    out.rotation = ann.sluice_rotation;
  }
  img.annotations.push(out);
}

/** The valid polygon parts of a COCO segmentation list, after the multipart policy. */
function polygonParts(
  seg: unknown[],
  opts: CocoOptions,
  note: (keys: PropertyKey[], problem: string) => void,
): { parts: Point[][]; multipart: boolean } {
  let parts: Point[][] = [];
  seg.forEach((part, k) => {
    if (
      !Array.isArray(part) || part.length < 6 || part.length % 2 !== 0 ||
      !part.every((n) => typeof n === "number" && Number.isFinite(n))
    ) {
      return note(
        ["segmentation", k],
        "polygon part skipped: expected an even list of at least 6 numbers",
      );
    }
    const pts: Point[] = [];
    for (let j = 0; j < part.length; j += 2) pts.push([part[j], part[j + 1]]);
    parts.push(pts);
  });
  const multipart = parts.length > 1;
  if (multipart) {
    if (opts.multipart === "largest") {
      note(
        ["segmentation"],
        `${parts.length} polygon parts: kept the largest, bbox recomputed from it`,
      );
      parts = [[...parts].sort((p1, p2) => polygonArea(p2) - polygonArea(p1))[0]];
    } else {
      note(["segmentation"], `${parts.length} polygon parts: imported as one annotation each`);
    }
  }
  return { parts, multipart };
}

// ---- export ------------------------------------------------------------------------------------

export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
  /** Extra field (ignored by COCO tools) so that a re-import matches the exact image. */
  sluice_image_id?: string;
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: BBox;
  area: number;
  iscrowd: 0;
  segmentation: number[][];
  /**
   * Extra field (ignored by COCO tools): the angle of a rotated box, whose corners are the
   * segmentation, so that Sluice re-imports it as a rotated box.
   */
  sluice_rotation?: number;
}

export interface CocoCategory {
  id: number;
  name: string;
  supercategory: string;
}

export interface CocoDataset {
  info: { description: string; version: string; date_created: string };
  licenses: never[];
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

/** One entry of a COCO results file (what pycocotools' `loadRes` reads). */
export interface CocoResult {
  image_id: number;
  category_id: number;
  bbox: BBox;
  score: number;
}

export interface CocoExportImage {
  /** Sluice image id. */
  id: string;
  fileName: string;
  width: number;
  height: number;
}

export interface CocoExportInput {
  images: readonly CocoExportImage[];
  annotationsByImage: ByImage<readonly AnnotationInput[]>;
  /**
   * Category ids: a name → id map (e.g. from `ManifestStore.ensureLabels`, kept as is), or a list
   * of names (ids 1, 2, ... in that order). Labels found in annotations but missing here are
   * appended after the largest id in name order.
   */
  labels?: readonly string[] | ReadonlyMap<string, number>;
  description?: string;
  /** ISO timestamp for `info.date_created` (default: now); fix it for byte-stable output. */
  dateCreated?: string;
}

export interface CocoExport {
  coco: CocoDataset;
  /** Sluice image id → COCO image id (1-based, input order). */
  imageIds: Map<string, number>;
  /** Label → COCO category id. */
  categoryIds: Map<string, number>;
}

/**
 * Builds a COCO dataset. `area` is the polygon's shoelace area when the annotation has a
 * polygon, else `w × h`; `iscrowd` is always 0.
 *
 * @example
 * ```ts
 * const { coco, imageIds, categoryIds } = toCoco({
 *   images: [{ id: "img_1", fileName: "a.jpg", width: 640, height: 480 }],
 *   annotationsByImage: { img_1: [{ label: "cat", bbox: [10, 10, 50, 40] }] },
 *   labels: ["cat", "dog"],
 * });
 * ```
 */
export function toCoco(input: CocoExportInput): CocoExport {
  const get = (id: string) => lookupByImage(input.annotationsByImage, id);
  const categoryIds = new Map<string, number>();
  if (input.labels instanceof Map) {
    for (const [name, id] of input.labels) categoryIds.set(name, id);
  } else if (input.labels) {
    (input.labels as readonly string[]).forEach((name) => {
      if (!categoryIds.has(name)) categoryIds.set(name, categoryIds.size + 1);
    });
  }
  const missing = new Set<string>();
  for (const img of input.images) {
    for (const a of get(img.id) ?? []) if (!categoryIds.has(a.label)) missing.add(a.label);
  }
  let next = Math.max(0, ...categoryIds.values()) + 1;
  for (const name of [...missing].sort()) categoryIds.set(name, next++);

  const imageIds = new Map<string, number>();
  const images: CocoImage[] = [];
  const annotations: CocoAnnotation[] = [];
  input.images.forEach((img, i) => {
    const cocoId = i + 1;
    imageIds.set(img.id, cocoId);
    images.push({
      id: cocoId,
      file_name: img.fileName,
      width: img.width,
      height: img.height,
      sluice_image_id: img.id,
    });
    for (const a of get(img.id) ?? []) {
      const poly = a.polygon && a.polygon.length >= 3 ? a.polygon : null;
      annotations.push({
        id: annotations.length + 1,
        image_id: cocoId,
        category_id: categoryIds.get(a.label) as number,
        bbox: [a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]],
        area: poly ? polygonArea(poly) : boxArea(a.bbox),
        iscrowd: 0,
        segmentation: poly ? [poly.flat()] : [],
        ...(poly && a.rotation ? { sluice_rotation: a.rotation } : {}),
      });
    }
  });
  const categories = [...categoryIds].map(([name, id]) => ({ id, name, supercategory: "" }))
    .sort((a, b) => a.id - b.id);
  return {
    coco: {
      info: {
        description: input.description ?? "Sluice export",
        version: "1.0",
        date_created: input.dateCreated ?? new Date().toISOString(),
      },
      licenses: [],
      images,
      annotations,
      categories,
    },
    imageIds,
    categoryIds,
  };
}

/**
 * COCO results (`[{ image_id, category_id, bbox, score }]`) for predictions, using the ids of a
 * {@link toCoco} export. Throws a SluiceError (`unknown_image` / `unknown_label`) when a
 * prediction refers to an image or label that the ground truth does not have: the evaluation
 * would silently count it wrong.
 *
 * @example
 * ```ts
 * const results = toCocoResults([{ imageId: "img_1", boxes }], { imageIds, categoryIds });
 * ```
 */
export function toCocoResults(
  predictions: readonly { imageId: string; boxes: readonly PredictionBox[] }[],
  ids: { imageIds: ReadonlyMap<string, number>; categoryIds: ReadonlyMap<string, number> },
): CocoResult[] {
  const out: CocoResult[] = [];
  for (const p of predictions) {
    const imageId = ids.imageIds.get(p.imageId);
    if (imageId === undefined) {
      throw new SluiceError(
        "unknown_image",
        `COCO results: image ${p.imageId} is not in the ground-truth export`,
      );
    }
    for (const b of p.boxes) {
      const categoryId = ids.categoryIds.get(b.label);
      if (categoryId === undefined) {
        throw new SluiceError(
          "unknown_label",
          `COCO results: label ${
            JSON.stringify(b.label)
          } on image ${p.imageId} is not one of the categories ` +
            `[${[...ids.categoryIds.keys()].join(", ")}]`,
        );
      }
      out.push({
        image_id: imageId,
        category_id: categoryId,
        bbox: [b.bbox[0], b.bbox[1], b.bbox[2], b.bbox[3]],
        score: b.score,
      });
    }
  }
  return out;
}

/**
 * Label Studio JSON: import of exported tasks (ground truth; the JSON and the JSON-MIN export
 * formats), export of importable tasks with annotations, and the `predictions` shape used for
 * pre-annotation.
 *
 * Coordinates follow label-studio-sdk's converter: `pixel = percent / 100 × original size`
 * (`original_width` / `original_height` of each result); polygons are points in percent; a
 * polygon's box is the envelope of its points and its area the shoelace area.
 *
 * Rotated rectangles (`value.rotation`, degrees clockwise about the rectangle's top-left corner
 * `(x, y)`) are rotated in PIXEL space, as the Label Studio editor draws them: the four corners
 * become the annotation's `polygon` (so the exact shape survives) and `bbox` is their axis-aligned
 * envelope. This DIFFERS from label-studio-sdk's COCO/VOC/YOLO exports: older SDKs ignore
 * `rotation` for the COCO bbox, and current ones (`Converter.rotated_rectangle`) rotate the corners
 * in PERCENT space, which is only right for square images. For a non-square image Sluice's box is
 * the true envelope of what the annotator drew; the SDK's is not.
 *
 * @example
 * ```ts
 * const { tasks, failures } = await readLabelStudioExport("export.json", { choose: "newest" });
 * for (const t of tasks) console.log(t.imageRef.fileName, t.annotations.length, t.problems);
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import type { AnnotationInput, BBox, PredictionBox } from "../manifest/mod.ts";
import { AnnotationFormatError, type AnnotationProblem, jsonPath } from "./errors.ts";

export type { AnnotationProblem };
import { applyToPoints, boxToCorners, clipBox, envelope, type Point, rotate } from "./geometry.ts";
import { type ByImage, lookupByImage } from "./_by_image.ts";
import { type ImageRef, imageRefFromUrl } from "./image_match.ts";
import { normalizeDegrees, rotatedRectangle } from "./rotated_box.ts";
import { parseJsonInput } from "./_json_input.ts";
import { isJsonMinRecord, jsonMinToTasks } from "./_labelstudio_min.ts";

/** One imported task. */
export interface LabelStudioTaskImport {
  /** Position of the task in the export. */
  index: number;
  /** Label Studio task id, as a string (null when absent). */
  taskId: string | null;
  imageRef: ImageRef;
  /** From the results' `original_width/height`; null when the task has no usable result. */
  width: number | null;
  height: number | null;
  /** In original-image pixels. */
  annotations: AnnotationInput[];
  /** Id of the annotation that won (null when none did, or for `merge`). */
  annotationId: string | null;
  /**
   * True when a submitted (not cancelled, not skipped) annotation exists: with no shapes it means
   * "reviewed, no objects", as opposed to a task nobody labelled.
   */
  labelled: boolean;
  problems: AnnotationProblem[];
}

/** A whole export: the tasks that could be read, and one error per task that could not. */
export interface LabelStudioImport {
  file: string;
  tasks: LabelStudioTaskImport[];
  failures: AnnotationFormatError[];
}

/** Import options (validated with zod). */
export const LabelStudioImportOptionsSchema = z.strictObject({
  /**
   * Which annotation wins when a task has several: `newest` (default; by `updated_at`, else
   * `created_at`, then id), `oldest`, `first` (array order), or `merge` (all of them).
   */
  choose: z.enum(["newest", "oldest", "first", "merge"]).default("newest"),
  /** The `data` key holding the image URL. */
  dataKey: z.string().min(1).default("image"),
  /** Name used in error messages when the input is not read from a file. */
  file: z.string().default("<label studio export>"),
  /** Value of `AnnotationInput.sourceRef` is `<prefix><task>/<annotation>/<result>`. */
  sourceRefPrefix: z.string().default("labelstudio:"),
});
export type LabelStudioImportOptions = z.input<typeof LabelStudioImportOptionsSchema>;

const IdSchema = z.union([z.number(), z.string()]);
const TaskSchema = z.looseObject({
  id: IdSchema.nullish(),
  data: z.looseObject({}),
  annotations: z.array(z.unknown()).nullish(),
  // Label Studio < 1.0 called annotations "completions".
  completions: z.array(z.unknown()).nullish(),
});
const AnnotationSchema = z.looseObject({
  id: IdSchema.nullish(),
  result: z.array(z.unknown()).nullish(),
  was_cancelled: z.boolean().nullish(),
  // Label Studio < 1.0 marked a skipped completion with `skipped: true`.
  skipped: z.boolean().nullish(),
  created_at: z.string().nullish(),
  updated_at: z.string().nullish(),
});
const ResultSchema = z.looseObject({
  id: IdSchema.nullish(),
  type: z.string(),
  original_width: z.number().positive().nullish(),
  original_height: z.number().positive().nullish(),
  image_rotation: z.number().nullish(),
  value: z.looseObject({}),
});
const LabelsSchema = z.array(z.string()).min(1);
const RectValueSchema = z.looseObject({
  x: z.number(),
  y: z.number(),
  width: z.number(),
  height: z.number(),
  rotation: z.number().nullish(),
});
const PolygonValueSchema = z.looseObject({
  points: z.array(z.tuple([z.number(), z.number()])),
});

/**
 * Reads and imports a Label Studio JSON export file. Throws {@link AnnotationFormatError} when
 * the file is not JSON or not a list of tasks; a bad task is reported in `failures` and does not
 * stop the others.
 *
 * @example
 * ```ts
 * const { tasks } = await readLabelStudioExport("/data/export.json");
 * ```
 */
export async function readLabelStudioExport(
  path: string,
  options: LabelStudioImportOptions = {},
): Promise<LabelStudioImport> {
  const text = await readFile(path, "utf8");
  return parseLabelStudioExport(text, { file: path, ...options });
}

/**
 * Imports Label Studio tasks from JSON text or an already parsed value (an array of tasks, or
 * one task object).
 *
 * @example
 * ```ts
 * const { tasks } = parseLabelStudioExport(jsonText, { choose: "merge" });
 * ```
 */
export function parseLabelStudioExport(
  input: string | unknown,
  options: LabelStudioImportOptions = {},
): LabelStudioImport {
  const opts = LabelStudioImportOptionsSchema.parse(options);
  const doc = parseJsonInput(input, opts.file);
  const isTask = doc !== null && typeof doc === "object" &&
    ("data" in doc || isJsonMinRecord(doc, opts.dataKey));
  if (!Array.isArray(doc) && !isTask) {
    throw new AnnotationFormatError(
      opts.file,
      "$",
      `expected an array of tasks, found ${kindOf(doc)}`,
    );
  }
  const list: unknown[] = Array.isArray(doc) ? doc : [doc];

  const tasks: LabelStudioTaskImport[] = [];
  const failures: AnnotationFormatError[] = [];
  // JSON-MIN records (one per annotation, flat) are read as the full export's tasks.
  jsonMinToTasks(list, opts.dataKey).forEach(({ task: raw, index }) => {
    try {
      tasks.push(importTask(raw, index, opts));
    } catch (err) {
      if (err instanceof AnnotationFormatError) failures.push(err);
      else throw err;
    }
  });
  return { file: opts.file, tasks, failures };
}

type Opts = z.output<typeof LabelStudioImportOptionsSchema>;

function importTask(raw: unknown, index: number, opts: Opts): LabelStudioTaskImport {
  const at = (...keys: PropertyKey[]) => jsonPath([index, ...keys]);
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw) && !("data" in raw)) {
    throw new AnnotationFormatError(
      opts.file,
      at(),
      `expected a task with "data" (JSON export) or a record with "${opts.dataKey}" at the top ` +
        `level (JSON-MIN export), found keys ${JSON.stringify(Object.keys(raw).slice(0, 8))}`,
    );
  }
  const parsed = TaskSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AnnotationFormatError(opts.file, at(...issue.path), `task: ${issue.message}`);
  }
  const task = parsed.data;
  const url = task.data[opts.dataKey];
  if (typeof url !== "string" || url === "") {
    throw new AnnotationFormatError(
      opts.file,
      at("data", opts.dataKey),
      `expected the image URL as a non-empty string, found ${kindOf(url)}`,
    );
  }
  const sluiceId = typeof task.data.sluice_image_id === "string" ? task.data.sluice_image_id : null;
  const taskId = task.id === undefined || task.id === null ? null : String(task.id);
  const problems: AnnotationProblem[] = [];
  const annKey = task.annotations ? "annotations" : "completions";
  const rawAnns = task.annotations ?? task.completions ?? [];

  type Candidate = { pos: number; id: string | null; time: number; result: unknown[] };
  const candidates: Candidate[] = [];
  rawAnns.forEach((a, pos) => {
    const ann = AnnotationSchema.safeParse(a);
    if (!ann.success) {
      const issue = ann.error.issues[0];
      problems.push({
        path: at(annKey, pos, ...issue.path),
        problem: `annotation skipped: ${issue.message}`,
      });
      return;
    }
    if (ann.data.was_cancelled || ann.data.skipped) {
      const key = ann.data.was_cancelled ? "was_cancelled" : "skipped";
      problems.push({
        path: at(annKey, pos, key),
        problem: `annotation was ${ann.data.was_cancelled ? "cancelled" : "skipped"}: skipped`,
      });
      return;
    }
    const stamp = ann.data.updated_at ?? ann.data.created_at;
    const time = stamp ? Date.parse(stamp) : NaN;
    candidates.push({
      pos,
      id: ann.data.id === undefined || ann.data.id === null ? null : String(ann.data.id),
      time: Number.isNaN(time) ? -Infinity : time,
      result: ann.data.result ?? [],
    });
  });

  let chosen: Candidate[];
  if (opts.choose === "merge" || candidates.length <= 1) chosen = candidates;
  else if (opts.choose === "first") chosen = [candidates[0]];
  else {
    const sign = opts.choose === "newest" ? -1 : 1;
    chosen = [
      [...candidates].sort((a, b) =>
        sign * (a.time - b.time || compareIds(a.id, b.id)) || a.pos - b.pos
      )[0],
    ];
  }

  const annotations: AnnotationInput[] = [];
  let width: number | null = null;
  let height: number | null = null;
  for (const cand of chosen) {
    const converted = convertResults(
      cand.result,
      (...keys) => at(annKey, cand.pos, "result", ...keys),
      {
        ref: `${opts.sourceRefPrefix}${taskId ?? index}/${cand.id ?? cand.pos}`,
        problems,
      },
    );
    for (const c of converted) {
      if (width === null) {
        width = c.width;
        height = c.height;
      } else if (c.width !== width || c.height !== height) {
        problems.push({
          path: c.path,
          problem:
            `original size ${c.width}×${c.height} differs from the task's ${width}×${height}; ` +
            "converted with its own size",
        });
      }
      annotations.push(c.annotation);
    }
  }
  return {
    index,
    taskId,
    imageRef: imageRefFromUrl(url, sluiceId),
    width,
    height,
    annotations,
    annotationId: opts.choose === "merge" || chosen.length !== 1 ? null : chosen[0].id,
    labelled: chosen.length > 0,
    problems,
  };
}

interface Converted {
  annotation: AnnotationInput;
  width: number;
  height: number;
  path: string;
}

function convertResults(
  results: unknown[],
  at: (...keys: PropertyKey[]) => string,
  ctx: { ref: string; problems: AnnotationProblem[] },
): Converted[] {
  const out: Converted[] = [];
  // `rectangle` / `polygon` results take their label from a `labels` result with the same id.
  const labelsById = new Map<string, string>();
  for (const r of results) {
    const p = ResultSchema.safeParse(r);
    if (p.success && p.data.type === "labels" && p.data.id !== undefined && p.data.id !== null) {
      const labels = LabelsSchema.safeParse(p.data.value.labels);
      if (labels.success) labelsById.set(String(p.data.id), labels.data[0]);
    }
  }
  results.forEach((r, i) => {
    const problem = (keys: PropertyKey[], text: string) =>
      ctx.problems.push({ path: at(i, ...keys), problem: text });
    const parsed = ResultSchema.safeParse(r);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return problem(issue.path, `result skipped: ${issue.message}`);
    }
    const res = parsed.data;
    const kind = res.type === "rectanglelabels" || res.type === "rectangle"
      ? "rect"
      : res.type === "polygonlabels" || res.type === "polygon"
      ? "polygon"
      : null;
    if (kind === null) {
      if (res.type !== "labels") {
        problem(
          ["type"],
          `result type ${JSON.stringify(res.type)} is not a box or polygon: skipped`,
        );
      }
      return;
    }
    let label: string | undefined;
    if (res.type === "rectanglelabels" || res.type === "polygonlabels") {
      const labels = LabelsSchema.safeParse(res.value[res.type]);
      if (!labels.success) {
        return problem(["value", res.type], "result skipped: expected at least one label");
      }
      if (labels.data.length > 1) {
        problem(
          ["value", res.type],
          `${labels.data.length} labels on one shape: kept the first, ${labels.data[0]}`,
        );
      }
      label = labels.data[0];
    } else {
      label = res.id === undefined || res.id === null ? undefined : labelsById.get(String(res.id));
      if (label === undefined) {
        return problem(["id"], `${res.type} result has no matching labels result: skipped`);
      }
    }
    const W = res.original_width, H = res.original_height;
    if (!W || !H) {
      return problem(
        ["original_width"],
        "result skipped: original_width/original_height missing, pixels unknown",
      );
    }
    if (res.image_rotation) {
      return problem(
        ["image_rotation"],
        `result skipped: drawn on an image rotated by ${res.image_rotation}°`,
      );
    }
    const sourceRef = `${ctx.ref}/${res.id ?? i}`;
    if (kind === "rect") {
      const v = RectValueSchema.safeParse(res.value);
      if (!v.success) {
        const issue = v.error.issues[0];
        return problem(["value", ...issue.path], `result skipped: ${issue.message}`);
      }
      const x = (v.data.x / 100) * W, y = (v.data.y / 100) * H;
      const w = (v.data.width / 100) * W, h = (v.data.height / 100) * H;
      const rotation = normalizeDegrees(v.data.rotation ?? 0);
      const annotation: AnnotationInput = { label, bbox: [x, y, w, h], sourceRef };
      if (rotation !== 0) {
        const corners = applyToPoints(rotate(rotation, x, y), boxToCorners([x, y, w, h]));
        annotation.bbox = envelope(corners);
        annotation.polygon = corners;
        annotation.rotation = rotation;
      }
      out.push({ annotation, width: W, height: H, path: at(i) });
    } else {
      const v = PolygonValueSchema.safeParse(res.value);
      if (!v.success) {
        const issue = v.error.issues[0];
        return problem(["value", ...issue.path], `result skipped: ${issue.message}`);
      }
      if (v.data.points.length < 3) {
        return problem(
          ["value", "points"],
          `result skipped: expected at least 3 points, found ${v.data.points.length}`,
        );
      }
      const points: Point[] = v.data.points.map(([px, py]) => [(px / 100) * W, (py / 100) * H]);
      out.push({
        annotation: { label, bbox: envelope(points), polygon: points, sourceRef },
        width: W,
        height: H,
        path: at(i),
      });
    }
  });
  return out;
}

// ---- export ------------------------------------------------------------------------------------

/** An image to export as a task. */
export interface LabelStudioExportImage {
  /** Sluice image id; written to `data.sluice_image_id` so a later import matches exactly. */
  id: string;
  /** What Label Studio loads (an http(s) URL, a presigned URL, `s3://...` for cloud storage). */
  url: string;
  width: number;
  height: number;
}

/** Export options (validated with zod). */
export const LabelStudioExportOptionsSchema = z.strictObject({
  /** `from_name` of the RectangleLabels control. */
  fromName: z.string().min(1).default("label"),
  /** `to_name`: the Image object tag. */
  toName: z.string().min(1).default("image"),
  dataKey: z.string().min(1).default("image"),
  /**
   * How annotations with a polygon are written: `polygon` (default: what the source held, as
   * PolygonLabels results, which need a PolygonLabels control named `polygonFromName`) or
   * `rectangle` (their box, for detection projects whose config has only RectangleLabels).
   * Rotated rectangles are always written as rotated rectangles.
   */
  polygons: z.enum(["rectangle", "polygon"]).default("polygon"),
  polygonFromName: z.string().min(1).default("polygon"),
  /** Include tasks for images without annotations (default true: they still need labelling). */
  includeEmpty: z.boolean().default(true),
});
export type LabelStudioExportOptions = z.input<typeof LabelStudioExportOptionsSchema>;

/** One result entry of an annotation or prediction. */
export interface LabelStudioResult {
  id: string;
  type: "rectanglelabels" | "polygonlabels";
  from_name: string;
  to_name: string;
  original_width: number;
  original_height: number;
  image_rotation: 0;
  value: {
    x?: number;
    y?: number;
    width?: number;
    height?: number;
    rotation?: number;
    points?: [number, number][];
    closed?: boolean;
    rectanglelabels?: string[];
    polygonlabels?: string[];
  };
  score?: number;
}

/** The `predictions[]` entry shape Label Studio imports for pre-annotation. */
export interface LabelStudioPrediction {
  model_version: string;
  score: number;
  result: LabelStudioResult[];
}

/** An importable task. */
export interface LabelStudioTask {
  data: Record<string, string>;
  annotations?: { result: LabelStudioResult[]; ground_truth: boolean }[];
  predictions?: LabelStudioPrediction[];
}

/** Predictions for one image, as stored in the manifest (`PredictionInput` fits). */
export interface PredictionForExport {
  modelName?: string;
  modelVersion: string;
  score?: number | null;
  boxes: PredictionBox[];
}

/**
 * Tasks Label Studio can import, with ground-truth `annotations` (percent coordinates) and,
 * optionally, `predictions` per image.
 *
 * @example
 * ```ts
 * const tasks = toLabelStudioTasks(
 *   [{ id: "img_1", url: "s3://raw/a.jpg", width: 640, height: 480 }],
 *   new Map([["img_1", [{ label: "cat", bbox: [10, 20, 100, 50] }]]]),
 * );
 * await Deno.writeTextFile("tasks.json", JSON.stringify(tasks));
 * ```
 */
export function toLabelStudioTasks(
  images: readonly LabelStudioExportImage[],
  annotationsByImage: ByImage<readonly AnnotationInput[]>,
  options: LabelStudioExportOptions = {},
  predictionsByImage?: ByImage<readonly PredictionForExport[]>,
): LabelStudioTask[] {
  const opts = LabelStudioExportOptionsSchema.parse(options);
  const tasks: LabelStudioTask[] = [];
  for (const img of images) {
    // No entry: unlabelled (no annotation). An empty entry: reviewed, nothing there (a completed
    // annotation with an empty result, which Label Studio shows as done).
    const entry = lookupByImage(annotationsByImage, img.id);
    const anns = entry ?? [];
    const preds = (predictionsByImage && lookupByImage(predictionsByImage, img.id)) ?? [];
    if (entry === undefined && preds.length === 0 && !opts.includeEmpty) continue;
    const task: LabelStudioTask = { data: { [opts.dataKey]: img.url, sluice_image_id: img.id } };
    if (entry !== undefined) {
      task.annotations = [{
        result: anns.map((a, i) => annotationToResult(a, `r${i}`, img, opts)),
        ground_truth: false,
      }];
    }
    if (preds.length > 0) {
      task.predictions = preds.map((p) =>
        predictionsToLabelStudio(p, img, { fromName: opts.fromName, toName: opts.toName })
      );
    }
    tasks.push(task);
  }
  return tasks;
}

/**
 * One prediction set in Label Studio's `predictions[]` shape. Boxes are clipped to the image
 * (models may predict past the border) and boxes with nothing left are left out.
 * `model_version` is `modelName:modelVersion` when a model name is given; `score` defaults to
 * the mean box score.
 *
 * @example
 * ```ts
 * predictionsToLabelStudio(
 *   { modelName: "det", modelVersion: "3", boxes: [{ label: "cat", bbox: [0, 0, 64, 48], score: 0.9 }] },
 *   { width: 640, height: 480 },
 * ); // { model_version: "det:3", score: 0.9, result: [{ value: { x: 0, y: 0, width: 10, height: 10, ... } }] }
 * ```
 */
export function predictionsToLabelStudio(
  prediction: PredictionForExport,
  image: { width: number; height: number },
  options: { fromName?: string; toName?: string } = {},
): LabelStudioPrediction {
  const fromName = options.fromName ?? "label";
  const toName = options.toName ?? "image";
  const result: LabelStudioResult[] = [];
  prediction.boxes.forEach((b, i) => {
    const clipped = clipBox(b.bbox, image.width, image.height);
    if (!clipped) return;
    result.push({
      ...rectResult(`p${i}`, b.label, clipped, 0, image, fromName, toName),
      score: b.score,
    });
  });
  const mean = prediction.boxes.length
    ? prediction.boxes.reduce((s, b) => s + b.score, 0) / prediction.boxes.length
    : 0;
  return {
    model_version: prediction.modelName
      ? `${prediction.modelName}:${prediction.modelVersion}`
      : prediction.modelVersion,
    score: prediction.score ?? mean,
    result,
  };
}

type ExportOpts = z.output<typeof LabelStudioExportOptionsSchema>;

function annotationToResult(
  a: AnnotationInput,
  id: string,
  img: { width: number; height: number },
  opts: ExportOpts,
): LabelStudioResult {
  // Only shapes that were rotated rectangles (imported with a rotation) go back as such; a
  // 4-point polygon drawn as a polygon stays one.
  const rotated = a.polygon && a.rotation ? rotatedRectangle(a.polygon) : null;
  if (rotated && rotated.rotation !== 0) {
    const [x, y] = rotated.origin;
    return rectResult(
      id,
      a.label,
      [x, y, rotated.width, rotated.height],
      rotated.rotation,
      img,
      opts.fromName,
      opts.toName,
    );
  }
  if (a.polygon && a.polygon.length >= 3 && opts.polygons === "polygon") {
    return {
      id,
      type: "polygonlabels",
      from_name: opts.polygonFromName,
      to_name: opts.toName,
      original_width: img.width,
      original_height: img.height,
      image_rotation: 0,
      value: {
        points: a.polygon.map(([x, y]) => [(x / img.width) * 100, (y / img.height) * 100]),
        closed: true,
        polygonlabels: [a.label],
      },
    };
  }
  return rectResult(id, a.label, a.bbox, 0, img, opts.fromName, opts.toName);
}

function rectResult(
  id: string,
  label: string,
  box: BBox,
  rotation: number,
  img: { width: number; height: number },
  fromName: string,
  toName: string,
): LabelStudioResult {
  return {
    id,
    type: "rectanglelabels",
    from_name: fromName,
    to_name: toName,
    original_width: img.width,
    original_height: img.height,
    image_rotation: 0,
    value: {
      x: (box[0] / img.width) * 100,
      y: (box[1] / img.height) * 100,
      width: (box[2] / img.width) * 100,
      height: (box[3] / img.height) * 100,
      rotation,
      rectanglelabels: [label],
    },
  };
}

function compareIds(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  const na = Number(a), nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a < b ? -1 : 1;
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") {
    return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 37) + "..." : v)}`;
  }
  return `${typeof v} ${String(v)}`;
}

/**
 * YOLO label files as Ultralytics reads and writes them
 * (https://docs.ultralytics.com/datasets/detect/, /segment/, /obb/): one `.txt` per image, one
 * object per line, class index from 0, coordinates normalised by the image's width and height:
 *
 * - detect:  `cls cx cy w h`
 * - segment: `cls x1 y1 … xn yn` (n ≥ 3)
 * - obb:     `cls x1 y1 x2 y2 x3 y3 x4 y4` (the four corners)
 *
 * A trailing extra number (the layout `yolo predict save_txt save_conf` writes) is read as a
 * prediction score. Oriented boxes are rotated in PIXEL space and only then normalised, so a
 * rotated box on a non-square image stays a rectangle (its normalised corners are not one).
 * Ultralytics drops a whole image whose label file holds a coordinate outside [0, 1], so export
 * clips every shape to the image first (and reports it). An empty label file means "reviewed,
 * no objects"; a missing one means "not labelled" (Ultralytics treats both as background).
 *
 * @example
 * ```ts
 * const text = formatYoloLabels([{ label: "cat", bbox: [0, 0, 320, 240] }], { width: 640, height: 480 },
 *   new Map([["cat", 0]]), "detect").text; // "0 0.25 0.25 0.5 0.5\n"
 * const { annotations } = parseYoloLabels(text, { width: 640, height: 480 }, ["cat"]);
 * ```
 * @module
 */
import type { AnnotationInput, BBox } from "../manifest/mod.ts";
import type { AnnotationProblem } from "./errors.ts";
import { clipBox, clipPolygon, envelope, type Point, polygonArea } from "./geometry.ts";
import {
  orientedRectangle,
  rotatedBoxAnnotation,
  rotatedCorners,
  rotatedRectangle,
} from "./rotated_box.ts";

/** Which label layout a dataset holds. */
export type YoloTask = "detect" | "segment" | "obb";

/** The YOLO tasks, for option validation. */
export const YOLO_TASKS = ["detect", "segment", "obb"] as const;

/** The written text of one label file, and what could not be written as it was. */
export interface YoloLabelText {
  text: string;
  /** Objects written. */
  objects: number;
  problems: AnnotationProblem[];
}

const fmt = (n: number): string => {
  // Normalised values: full double precision, but no "-0" and no exponent noise near 0 or 1.
  const v = Math.abs(n) < 1e-15 ? 0 : Math.abs(n - 1) < 1e-15 ? 1 : n;
  return String(v);
};

/**
 * One label file's text. Annotations whose label has no class id are skipped with a problem
 * (`unknown label`); shapes partly outside the image are clipped to it; a shape with nothing left
 * inside is skipped.
 *
 * - detect writes each annotation's `bbox`.
 * - segment writes the polygon when there is one, else the box's four corners.
 * - obb writes a rotated box's corners (in the stored order, top-left first, clockwise), else the
 *   box's corners; a polygon that is not a rectangle is written as its envelope (with a problem).
 *
 * @example
 * ```ts
 * formatYoloLabels(anns, { width: 640, height: 480 }, new Map([["cat", 0]]), "obb");
 * ```
 */
export function formatYoloLabels(
  annotations: readonly AnnotationInput[],
  image: { width: number; height: number },
  classIds: ReadonlyMap<string, number>,
  task: YoloTask,
): YoloLabelText {
  const { width: W, height: H } = image;
  const lines: string[] = [];
  const problems: AnnotationProblem[] = [];
  const norm = (pts: readonly Point[]) => pts.map(([x, y]) => `${fmt(x / W)} ${fmt(y / H)}`);
  annotations.forEach((a, i) => {
    const at = `$[${i}]`;
    const cls = classIds.get(a.label);
    if (cls === undefined) {
      problems.push({ path: at, problem: `unknown label ${JSON.stringify(a.label)}: skipped` });
      return;
    }
    const score = a.score !== undefined && a.score !== null ? ` ${fmt(a.score)}` : "";
    const polygon = a.polygon && a.polygon.length >= 3 ? a.polygon : null;
    const clippedBox = (box: BBox): BBox | null => {
      const c = clipBox(box, W, H);
      if (c && (c[0] !== box[0] || c[1] !== box[1] || c[2] !== box[2] || c[3] !== box[3])) {
        problems.push({ path: at, problem: "box reaches outside the image: clipped" });
      }
      if (!c) problems.push({ path: at, problem: "box lies outside the image: skipped" });
      return c;
    };
    if (task === "detect") {
      const b = clippedBox(a.bbox);
      if (!b) return;
      lines.push(
        `${cls} ${fmt((b[0] + b[2] / 2) / W)} ${fmt((b[1] + b[3] / 2) / H)} ${fmt(b[2] / W)} ${
          fmt(b[3] / H)
        }${score}`,
      );
    } else if (task === "segment") {
      let pts: Point[] = polygon ? polygon.map(([x, y]) => [x, y]) : [];
      if (!polygon) {
        const b = clippedBox(a.bbox);
        if (!b) return;
        pts = rotatedCorners(b, 0);
      } else {
        const clipped = clipPolygon(pts, W, H);
        if (clipped.length < 3 || polygonArea(clipped) === 0) {
          problems.push({ path: at, problem: "polygon lies outside the image: skipped" });
          return;
        }
        if (!samePoints(clipped, pts)) {
          problems.push({ path: at, problem: "polygon reaches outside the image: clipped" });
        }
        pts = clipped;
      }
      lines.push(`${cls} ${norm(pts).join(" ")}${score}`);
    } else {
      let corners: Point[] | null = null;
      if (polygon) {
        if (rotatedRectangle(polygon) || orientedRectangle(polygon)) corners = [...polygon];
        else {
          problems.push({
            path: at,
            problem: `polygon of ${polygon.length} points is not a rectangle: wrote its envelope`,
          });
        }
      }
      if (corners && !corners.every(([x, y]) => x >= 0 && y >= 0 && x <= W && y <= H)) {
        problems.push({
          path: at,
          problem: "oriented box reaches outside the image: wrote its clipped envelope",
        });
        const clipped = clipPolygon(corners, W, H);
        corners = null;
        if (clipped.length < 3) {
          problems.push({ path: at, problem: "oriented box lies outside the image: skipped" });
          return;
        }
        const b = envelope(clipped);
        lines.push(`${cls} ${norm(rotatedCorners(b, 0)).join(" ")}${score}`);
        return;
      }
      if (!corners) {
        const b = clippedBox(polygon ? envelope(polygon) : a.bbox);
        if (!b) return;
        corners = rotatedCorners(b, 0);
      }
      lines.push(`${cls} ${norm(corners).join(" ")}${score}`);
    }
  });
  return { text: lines.map((l) => l + "\n").join(""), objects: lines.length, problems };
}

function samePoints(a: readonly Point[], b: readonly Point[]): boolean {
  return a.length === b.length && a.every((p, i) => p[0] === b[i][0] && p[1] === b[i][1]);
}

/** Options of {@link parseYoloLabels}. */
export interface YoloParseOptions {
  /**
   * How lines with 8 (or 9) numbers are read: `obb` as oriented boxes, `segment` as 4-point
   * polygons; `auto` (default) reads them as oriented boxes when the corners form a rectangle in
   * pixel space, else as polygons. Lines of 4 (5) numbers are always boxes.
   */
  task?: YoloTask | "auto";
  /** Used in problem paths, e.g. `labels/train/a.txt`. */
  file?: string;
  /** `sourceRef` prefix (default `yolo:`); each object gets `<prefix><file>:<line>`. */
  sourceRefPrefix?: string;
}

/**
 * Reads one label file. Lines with an unknown class index, a wrong count of numbers or
 * non-numbers are skipped with a problem; blank lines are ignored.
 *
 * @example
 * ```ts
 * parseYoloLabels("0 0.5 0.5 0.2 0.2 0.87\n", { width: 100, height: 50 }, ["cat"]).annotations;
 * // [{ label: "cat", bbox: [40, 20, 20, 10], score: 0.87, sourceRef: "yolo:<labels>:1" }]
 * ```
 */
export function parseYoloLabels(
  text: string,
  image: { width: number; height: number },
  names: readonly string[],
  opts: YoloParseOptions = {},
): { annotations: AnnotationInput[]; problems: AnnotationProblem[] } {
  const { width: W, height: H } = image;
  const file = opts.file ?? "<labels>";
  const prefix = opts.sourceRefPrefix ?? "yolo:";
  const task = opts.task ?? "auto";
  const annotations: AnnotationInput[] = [];
  const problems: AnnotationProblem[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const path = `${file}:${i + 1}`;
    const tokens = line.split(/\s+/);
    const nums = tokens.map(Number);
    if (!nums.every(Number.isFinite) || !/^\d+$/.test(tokens[0])) {
      problems.push({
        path,
        problem: `expected "cls x y ..." numbers, found ${JSON.stringify(line)}`,
      });
      return;
    }
    const cls = nums[0];
    const label = names[cls];
    if (label === undefined) {
      problems.push({
        path,
        problem: `class ${cls} is not among the ${names.length} names: skipped (unknown label)`,
      });
      return;
    }
    let coords = nums.slice(1);
    let score: number | undefined;
    if (coords.length === 5 || (coords.length >= 7 && coords.length % 2 === 1)) {
      score = coords[coords.length - 1];
      coords = coords.slice(0, -1);
    }
    let ann: AnnotationInput;
    if (coords.length === 4) {
      const [cx, cy, w, h] = coords;
      ann = { label, bbox: [(cx - w / 2) * W, (cy - h / 2) * H, w * W, h * H] };
    } else if (coords.length >= 6 && coords.length % 2 === 0) {
      const pts: Point[] = [];
      for (let k = 0; k < coords.length; k += 2) pts.push([coords[k] * W, coords[k + 1] * H]);
      const rect = pts.length === 4 && task !== "segment" ? orientedRectangle(pts) : null;
      if (task === "obb" && pts.length !== 4) {
        problems.push({
          path,
          problem: `expected 8 numbers for an oriented box, found ${coords.length}: skipped`,
        });
        return;
      }
      if (rect) {
        ann = rotatedBoxAnnotation(
          label,
          [rect.origin[0], rect.origin[1], rect.width, rect.height],
          rect.rotation,
        );
      } else {
        if (task === "obb") {
          problems.push({
            path,
            problem: "oriented box corners are not a rectangle: kept as polygon",
          });
        }
        ann = { label, bbox: envelope(pts), polygon: pts };
      }
    } else {
      problems.push({
        path,
        problem:
          `expected 4 (box), 8 (oriented box) or an even count ≥ 6 (polygon) of coordinates, found ${coords.length}: skipped`,
      });
      return;
    }
    if (score !== undefined) ann.score = score;
    ann.sourceRef = `${prefix}${path}`;
    annotations.push(ann);
  });
  return { annotations, problems };
}

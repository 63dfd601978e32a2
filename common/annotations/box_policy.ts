/**
 * Validation of annotation boxes against their image: what to keep, what to clamp, what to drop,
 * and a list of every decision for logging and counting. Bad data never throws: annotation files
 * are written by people and tools, and one broken box must not lose an image's other boxes.
 *
 * @example
 * ```ts
 * const { kept, problems } = applyBoxPolicy(annotations, { width: 640, height: 480 }, {
 *   outOfBounds: "clamp",
 *   labels: ["cat", "dog"],
 * });
 * for (const p of problems) log.warn("box", p);
 * ```
 * @module
 */
import { z } from "zod";
import type { AnnotationInput, BBox } from "../manifest/mod.ts";
import { clipBox, clipPolygon, type Point } from "./geometry.ts";

/** Why a box was changed or dropped. */
export type BoxProblemKind =
  /** NaN, Infinity, or not a number / not 4 numbers (bbox or polygon). Always dropped. */
  | "invalid_number"
  /** Zero or negative width or height. Always dropped. */
  | "non_positive_size"
  /** Smaller than `minSize` after clamping. Always dropped. */
  | "too_small"
  /** No overlap at all with the image. Always dropped. */
  | "outside_image"
  /** Partly outside the image (beyond `tolerance`): clamped or dropped per policy. */
  | "out_of_bounds"
  /** Label missing, empty, or not in the allowlist. Always dropped. */
  | "unknown_label"
  /** Polygon with fewer than 3 points: the polygon is removed, the box kept. */
  | "invalid_polygon";

/** What was done about it. */
export type BoxAction = "dropped" | "clamped" | "polygon_removed";

/** One decision, with the index of the annotation in the input list. */
export interface BoxProblem {
  index: number;
  problem: BoxProblemKind;
  action: BoxAction;
  /** Human-readable detail: what was expected and what was found. */
  detail: string;
}

/** Policy options (validated with zod; unknown keys are refused). */
export const BoxPolicySchema = z.strictObject({
  /** Boxes partly outside the image: clip them (`clamp`, default) or drop them (`drop`). */
  outOfBounds: z.enum(["clamp", "drop"]).default("clamp"),
  /** Label allowlist; absent means any non-empty label is accepted. */
  labels: z.array(z.string().min(1)).optional(),
  /**
   * Overhang in pixels that is clamped silently in either mode: exporters round percentages,
   * so a box ending at 640.0000001 on a 640 px image is not a labelling mistake.
   */
  tolerance: z.number().min(0).default(0.5),
  /** Minimum width and height in pixels after clamping (default: anything > 0). */
  minSize: z.number().min(0).default(0),
});

export type BoxPolicyOptions = z.input<typeof BoxPolicySchema>;
export type BoxPolicy = z.output<typeof BoxPolicySchema>;

const ImageSizeSchema = z.object({
  width: z.number().positive().finite(),
  height: z.number().positive().finite(),
});

/** Kept (possibly clamped) annotations, in input order, and the problems found. */
export interface BoxPolicyResult {
  kept: AnnotationInput[];
  problems: BoxProblem[];
}

/**
 * Applies a box policy to the annotations of one image of `width × height` pixels.
 * Throws only for invalid options or image size (programming errors), never for bad boxes.
 *
 * @example
 * ```ts
 * const r = applyBoxPolicy([{ label: "cat", bbox: [-10, 0, 50, 50] }], { width: 100, height: 100 });
 * r.kept[0].bbox; // [0, 0, 40, 50]
 * r.problems[0];  // { index: 0, problem: "out_of_bounds", action: "clamped", ... }
 * ```
 */
export function applyBoxPolicy(
  annotations: readonly AnnotationInput[],
  image: { width: number; height: number },
  options: BoxPolicyOptions = {},
): BoxPolicyResult {
  const policy = BoxPolicySchema.parse(options);
  const { width, height } = ImageSizeSchema.parse(image);
  const allow = policy.labels ? new Set(policy.labels) : null;
  const kept: AnnotationInput[] = [];
  const problems: BoxProblem[] = [];

  annotations.forEach((ann, index) => {
    const drop = (problem: BoxProblemKind, detail: string) =>
      problems.push({ index, problem, action: "dropped", detail });
    // Input comes from parsed files: check shapes even though the type says they are right.
    const raw: unknown = ann;
    if (typeof raw !== "object" || raw === null) {
      return drop("invalid_number", `expected an annotation object, found ${describe(raw)}`);
    }
    const bbox = ann.bbox as unknown;
    if (!isBBox(bbox)) {
      return drop("invalid_number", `bbox: expected 4 finite numbers, found ${describe(bbox)}`);
    }
    const polygon = ann.polygon as unknown;
    if (polygon !== undefined && polygon !== null && !isPointList(polygon)) {
      return drop(
        "invalid_number",
        `polygon: expected [[x, y], ...] of finite numbers, found ${describe(polygon)}`,
      );
    }
    const label = ann.label as unknown;
    if (typeof label !== "string" || label.trim() === "") {
      return drop("unknown_label", `label: expected a non-empty string, found ${describe(label)}`);
    }
    if (allow && !allow.has(label)) {
      return drop(
        "unknown_label",
        `label ${JSON.stringify(label)} is not one of [${[...allow].join(", ")}]`,
      );
    }
    const [x, y, w, h] = bbox;
    if (!(w > 0 && h > 0)) {
      return drop("non_positive_size", `bbox size: expected width and height > 0, found ${w}×${h}`);
    }
    let box: BBox = [x, y, w, h];
    let points: Point[] | null = isPointList(polygon) ? polygon.map(([px, py]) => [px, py]) : null;
    if (points && points.length < 3) {
      problems.push({
        index,
        problem: "invalid_polygon",
        action: "polygon_removed",
        detail: `polygon: expected at least 3 points, found ${points.length}`,
      });
      points = null;
    }

    const clipped = clipBox(box, width, height);
    if (!clipped) {
      return drop(
        "outside_image",
        `bbox [${box.join(", ")}] does not overlap the ${width}×${height} image`,
      );
    }
    const overhang = Math.max(-x, -y, x + w - width, y + h - height, 0);
    if (overhang > 0) {
      if (overhang > policy.tolerance) {
        if (policy.outOfBounds === "drop") {
          return drop(
            "out_of_bounds",
            `bbox [${box.join(", ")}] extends ${
              round(overhang)
            } px outside the ${width}×${height} image`,
          );
        }
        problems.push({
          index,
          problem: "out_of_bounds",
          action: "clamped",
          detail: `bbox [${box.join(", ")}] extends ${
            round(overhang)
          } px outside the ${width}×${height} image`,
        });
      }
      box = clipped;
    }
    if (points) {
      const inside = clipPolygon(points, width, height);
      if (inside.length >= 3) {
        points = inside;
      } else {
        problems.push({
          index,
          problem: "invalid_polygon",
          action: "polygon_removed",
          detail: "polygon lies outside the image after clipping",
        });
        points = null;
      }
    }
    if (box[2] < policy.minSize || box[3] < policy.minSize) {
      return drop(
        "too_small",
        `bbox size ${round(box[2])}×${round(box[3])}: expected at least ${policy.minSize} px`,
      );
    }
    const out: AnnotationInput = { ...ann, label, bbox: box };
    if (points) out.polygon = points;
    else if (ann.polygon !== undefined) out.polygon = null;
    // A clamped rotated rectangle is no longer a rectangle: its polygon carries the shape.
    if (overhang > 0 && out.rotation) out.rotation = null;
    kept.push(out);
  });
  return { kept, problems };
}

/** Counts problems by `problem/action`, for metrics and logs. */
export function countProblems(problems: readonly BoxProblem[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of problems) {
    counts[`${p.problem}/${p.action}`] = (counts[`${p.problem}/${p.action}`] ?? 0) + 1;
  }
  return counts;
}

function isBBox(v: unknown): v is BBox {
  return Array.isArray(v) && v.length === 4 &&
    v.every((n) => typeof n === "number" && Number.isFinite(n));
}

function isPointList(v: unknown): v is Point[] {
  return Array.isArray(v) &&
    v.every((p) =>
      Array.isArray(p) && p.length === 2 &&
      p.every((n) => typeof n === "number" && Number.isFinite(n))
    );
}

function describe(v: unknown, depth = 0): string {
  let s: string;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") s = String(v);
  else if (v === undefined || v === null) s = String(v);
  else if (typeof v === "string") s = JSON.stringify(v);
  else if (Array.isArray(v)) {
    s = depth > 2 ? "[...]" : `[${v.map((x) => describe(x, depth + 1)).join(",")}]`;
  } else if (typeof v === "object") {
    s = depth > 2 ? "{...}" : `{${Object.keys(v).slice(0, 5).join(",")}}`;
  } else s = typeof v;
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

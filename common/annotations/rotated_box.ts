/**
 * Rotated rectangles as Label Studio defines them (`x, y, width, height, rotation`: rotated
 * CLOCKWISE on screen about the top-left corner `(x, y)`, in pixel space) and as four corners
 * (oriented boxes in YOLO-OBB, DOTA, polygon extensions of VOC). Sluice stores a rotated box as
 * its four corners in `polygon` (top-left corner first, then clockwise on screen), its
 * axis-aligned envelope in `bbox` and its angle in `rotation`.
 *
 * @example
 * ```ts
 * const a = rotatedBoxAnnotation("car", [10, 20, 40, 10], 30);
 * rotatedRectangle(a.polygon!); // { origin: [10, 20], width: 40, height: 10, rotation: 30 }
 * ```
 * @module
 */
import type { AnnotationInput, BBox } from "../manifest/mod.ts";
import {
  applyToPoints,
  boxToCorners,
  envelope,
  type Point,
  rotate,
  signedPolygonArea,
} from "./geometry.ts";

/** A rectangle recovered from corners. */
export interface RotatedRectangle {
  origin: Point;
  width: number;
  height: number;
  /** Degrees clockwise on screen, in `[0, 360)`. */
  rotation: number;
}

/**
 * Angle in `[0, 360)`, with values within 1e-9 of 360 folded to 0.
 *
 * @example
 * ```ts
 * normalizeDegrees(-90); // 270
 * ```
 */
export function normalizeDegrees(d: number): number {
  const r = ((d % 360) + 360) % 360;
  return Math.abs(r - 360) < 1e-9 ? 0 : r;
}

/**
 * The four corners of a rectangle `[x, y, w, h]` rotated by `degrees` about `(x, y)`, top-left
 * first, clockwise on screen.
 *
 * @example
 * ```ts
 * rotatedCorners([0, 0, 2, 1], 90); // [[0,0],[0,2],[-1,2],[-1,0]]
 * ```
 */
export function rotatedCorners(box: BBox, degrees: number): Point[] {
  return applyToPoints(rotate(degrees, box[0], box[1]), boxToCorners(box));
}

/**
 * An annotation for a rotated rectangle: corners in `polygon`, envelope in `bbox`, the angle in
 * `rotation` (a rotation of 0 gives a plain box).
 *
 * @example
 * ```ts
 * rotatedBoxAnnotation("cat", [0, 0, 10, 10], 0); // { label: "cat", bbox: [0, 0, 10, 10] }
 * ```
 */
export function rotatedBoxAnnotation(
  label: string,
  box: BBox,
  degrees: number,
): AnnotationInput {
  const rotation = normalizeDegrees(degrees);
  if (rotation === 0) return { label, bbox: [box[0], box[1], box[2], box[3]] };
  const polygon = rotatedCorners(box, rotation) as [number, number][];
  return { label, bbox: envelope(polygon), polygon, rotation };
}

/**
 * Recognises four corners that form a rectangle, in the order Label Studio builds them (first
 * corner = the rectangle's origin, then clockwise on screen) and recovers origin, sides and
 * angle. Returns null when the points are not a rectangle (to 1e-6 relative) or run
 * counter-clockwise (a mirror image).
 *
 * @example
 * ```ts
 * rotatedRectangle([[0, 0], [2, 0], [2, 1], [0, 1]]); // { origin: [0,0], width: 2, height: 1, rotation: 0 }
 * ```
 */
export function rotatedRectangle(polygon: readonly Point[]): RotatedRectangle | null {
  if (polygon.length !== 4) return null;
  const [p0, p1, p2, p3] = polygon;
  const ux = p1[0] - p0[0], uy = p1[1] - p0[1];
  const vx = p3[0] - p0[0], vy = p3[1] - p0[1];
  const w = Math.hypot(ux, uy), h = Math.hypot(vx, vy);
  if (!(w > 0 && h > 0)) return null;
  const tol = 1e-6 * Math.max(w, h);
  if (Math.abs(ux * vx + uy * vy) > tol * Math.max(w, h)) return null;
  if (Math.abs(p0[0] + ux + vx - p2[0]) > tol || Math.abs(p0[1] + uy + vy - p2[1]) > tol) {
    return null;
  }
  if (ux * vy - uy * vx <= 0) return null;
  const rotation = normalizeDegrees((Math.atan2(uy, ux) * 180) / Math.PI);
  return {
    origin: [p0[0], p0[1]],
    width: w,
    height: h,
    rotation: Math.abs(rotation) < 1e-9 ? 0 : rotation,
  };
}

/**
 * Like {@link rotatedRectangle}, but accepts the corners in either direction (oriented-box
 * formats do not fix one): counter-clockwise corners are read in reverse from the same first
 * corner.
 *
 * @example
 * ```ts
 * orientedRectangle([[0, 0], [0, 1], [2, 1], [2, 0]])?.width; // 2
 * ```
 */
export function orientedRectangle(corners: readonly Point[]): RotatedRectangle | null {
  if (corners.length !== 4) return null;
  const ordered = signedPolygonArea(corners) >= 0
    ? corners
    : [corners[0], corners[3], corners[2], corners[1]];
  return rotatedRectangle(ordered);
}

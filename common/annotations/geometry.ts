/**
 * Plane geometry for annotations: boxes, polygons and 2×3 affine matrices.
 *
 * Coordinates are continuous image coordinates with the origin at the top-left corner of the
 * top-left pixel, x to the right and y DOWN; pixel `(i, j)` covers `[i, i+1) × [j, j+1)`. A
 * {@link BBox} is `[x, y, w, h]` in those coordinates (COCO convention). Because y points down,
 * a positive angle in {@link rotate} turns the picture clockwise as seen on screen.
 *
 * @example
 * ```ts
 * const m = compose(flipHorizontal(640), translate(0, 10));
 * transformBox(m, [10, 20, 100, 50]); // [530, 30, 100, 50]
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";
import type { BBox } from "../manifest/mod.ts";

export type { BBox };

/** `[x, y]` in image coordinates. */
export type Point = [number, number];

/**
 * Row-major 2×3 affine matrix `[a, b, c, d, e, f]`:
 * `x' = a·x + b·y + c`, `y' = d·x + e·y + f`.
 */
export type Affine = [number, number, number, number, number, number];

/** A matrix could not be inverted, or a geometric input made no sense. */
export class GeometryError extends SluiceError {
  constructor(message: string) {
    super("invalid_geometry", message);
    this.name = "GeometryError";
  }
}

// ---- boxes and polygons -----------------------------------------------------------------------

/**
 * The four corners of a box, clockwise on screen from the top-left.
 *
 * @example
 * ```ts
 * boxToCorners([0, 0, 2, 1]); // [[0,0],[2,0],[2,1],[0,1]]
 * ```
 */
export function boxToCorners(box: BBox): [Point, Point, Point, Point] {
  const [x, y, w, h] = box;
  return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]];
}

/**
 * Axis-aligned envelope `[x, y, w, h]` of a set of points. Throws on an empty set.
 *
 * @example
 * ```ts
 * envelope([[1, 5], [3, 2]]); // [1, 2, 2, 3]
 * ```
 */
export function envelope(points: readonly Point[]): BBox {
  if (points.length === 0) {
    throw new GeometryError("envelope: expected at least one point, found 0");
  }
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [x, y] of points) {
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return [minX, minY, maxX - minX, maxY - minY];
}

/** Alias of {@link envelope} for corner lists: the box spanned by its corners. */
export const cornersToBox: (points: readonly Point[]) => BBox = envelope;

/**
 * Area of a box (`w·h`; negative sizes give 0).
 *
 * @example
 * ```ts
 * boxArea([5, 5, 2, 3]); // 6
 * ```
 */
export function boxArea(box: BBox): number {
  return Math.max(0, box[2]) * Math.max(0, box[3]);
}

/**
 * Signed shoelace area: positive when the points run clockwise on screen (y down).
 *
 * @example
 * ```ts
 * signedPolygonArea([[0, 0], [1, 0], [1, 1]]); // 0.5
 * ```
 */
export function signedPolygonArea(points: readonly Point[]): number {
  let s = 0;
  const n = points.length;
  for (let i = 0; i < n; i++) {
    const [x1, y1] = points[i];
    const [x2, y2] = points[(i + 1) % n];
    s += x1 * y2 - x2 * y1;
  }
  return s / 2;
}

/**
 * Polygon area by the shoelace formula (absolute value; fewer than 3 points give 0).
 *
 * @example
 * ```ts
 * polygonArea([[0, 0], [4, 0], [4, 3], [0, 3]]); // 12
 * ```
 */
export function polygonArea(points: readonly Point[]): number {
  if (points.length < 3) return 0;
  return Math.abs(signedPolygonArea(points));
}

/**
 * Intersection of two boxes, or null when they do not overlap with positive area.
 *
 * @example
 * ```ts
 * intersectBoxes([0, 0, 10, 10], [5, 5, 10, 10]); // [5, 5, 5, 5]
 * ```
 */
export function intersectBoxes(a: BBox, b: BBox): BBox | null {
  const x0 = Math.max(a[0], b[0]);
  const y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[0] + a[2], b[0] + b[2]);
  const y1 = Math.min(a[1] + a[3], b[1] + b[3]);
  if (!(x1 > x0 && y1 > y0)) return null;
  return [x0, y0, x1 - x0, y1 - y0];
}

/**
 * A box clipped to the image `[0, width] × [0, height]`, or null when nothing is left.
 *
 * @example
 * ```ts
 * clipBox([-5, 10, 20, 20], 100, 100); // [0, 10, 15, 20]
 * ```
 */
export function clipBox(box: BBox, width: number, height: number): BBox | null {
  return intersectBoxes(box, [0, 0, width, height]);
}

/**
 * Fraction of a box's area that lies inside the image (0 for empty or invalid boxes).
 *
 * @example
 * ```ts
 * visibleFraction([-50, 0, 100, 10], 100, 100); // 0.5
 * ```
 */
export function visibleFraction(box: BBox, width: number, height: number): number {
  const area = boxArea(box);
  if (!(area > 0) || !Number.isFinite(area)) return 0;
  const clipped = clipBox(box, width, height);
  return clipped ? boxArea(clipped) / area : 0;
}

/**
 * A polygon clipped to the image rectangle (Sutherland–Hodgman; exact for any polygon against a
 * convex window). Returns fewer than 3 points when nothing is left.
 *
 * @example
 * ```ts
 * clipPolygon([[-10, 0], [10, 0], [10, 10], [-10, 10]], 100, 100); // [[0,0],[10,0],[10,10],[0,10]]
 * ```
 */
export function clipPolygon(points: readonly Point[], width: number, height: number): Point[] {
  let out: Point[] = points.map(([x, y]) => [x, y]);
  // Each edge: inside test and intersection with the window edge.
  const edges: [(p: Point) => boolean, (a: Point, b: Point) => Point][] = [
    [(p) => p[0] >= 0, (a, b) => cutX(a, b, 0)],
    [(p) => p[0] <= width, (a, b) => cutX(a, b, width)],
    [(p) => p[1] >= 0, (a, b) => cutY(a, b, 0)],
    [(p) => p[1] <= height, (a, b) => cutY(a, b, height)],
  ];
  for (const [inside, cut] of edges) {
    if (out.length === 0) break;
    const input = out;
    out = [];
    for (let i = 0; i < input.length; i++) {
      const cur = input[i];
      const prev = input[(i + input.length - 1) % input.length];
      const curIn = inside(cur);
      const prevIn = inside(prev);
      if (curIn) {
        if (!prevIn) out.push(cut(prev, cur));
        out.push(cur);
      } else if (prevIn) {
        out.push(cut(prev, cur));
      }
    }
  }
  return dedupeConsecutive(out);
}

function cutX(a: Point, b: Point, x: number): Point {
  const t = (x - a[0]) / (b[0] - a[0]);
  return [x, a[1] + t * (b[1] - a[1])];
}

function cutY(a: Point, b: Point, y: number): Point {
  const t = (y - a[1]) / (b[1] - a[1]);
  return [a[0] + t * (b[0] - a[0]), y];
}

function dedupeConsecutive(points: Point[]): Point[] {
  const out: Point[] = [];
  for (const p of points) {
    const last = out[out.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) out.push(p);
  }
  while (
    out.length > 1 && out[0][0] === out[out.length - 1][0] && out[0][1] === out[out.length - 1][1]
  ) {
    out.pop();
  }
  return out;
}

// ---- affine matrices ---------------------------------------------------------------------------

/** The identity matrix. */
export function identity(): Affine {
  return [1, 0, 0, 0, 1, 0];
}

/**
 * Translation by `(tx, ty)`.
 *
 * @example
 * ```ts
 * applyToPoint(translate(3, 4), [1, 1]); // [4, 5]
 * ```
 */
export function translate(tx: number, ty: number): Affine {
  return [1, 0, tx, 0, 1, ty];
}

/**
 * Scaling about `(cx, cy)` (default the origin).
 *
 * @example
 * ```ts
 * applyToPoint(scale(2, 3), [1, 1]); // [2, 3]
 * ```
 */
export function scale(sx: number, sy: number = sx, cx = 0, cy = 0): Affine {
  return [sx, 0, cx - sx * cx, 0, sy, cy - sy * cy];
}

/**
 * Rotation by `degrees` CLOCKWISE on screen (y down) about `(cx, cy)` (default the origin).
 *
 * @example
 * ```ts
 * applyToPoint(rotate(90), [1, 0]); // ≈ [0, 1]: right of the origin moves below it
 * ```
 */
export function rotate(degrees: number, cx = 0, cy = 0): Affine {
  const { cos, sin } = cosSin(degrees);
  return [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy];
}

/**
 * Shear: `x' = x + tan(sx°)·y`, `y' = y + tan(sy°)·x` about `(cx, cy)`.
 *
 * @example
 * ```ts
 * applyToPoint(shear(45, 0), [0, 1]); // ≈ [1, 1]
 * ```
 */
export function shear(degreesX: number, degreesY = 0, cx = 0, cy = 0): Affine {
  const kx = Math.tan((degreesX * Math.PI) / 180);
  const ky = Math.tan((degreesY * Math.PI) / 180);
  return compose(translate(-cx, -cy), [1, kx, 0, ky, 1, 0], translate(cx, cy));
}

/**
 * Mirror left–right inside an image of the given width (`x' = width - x`).
 *
 * @example
 * ```ts
 * transformBox(flipHorizontal(100), [10, 0, 20, 5]); // [70, 0, 20, 5]
 * ```
 */
export function flipHorizontal(width: number): Affine {
  return [-1, 0, width, 0, 1, 0];
}

/**
 * Mirror top–bottom inside an image of the given height (`y' = height - y`).
 *
 * @example
 * ```ts
 * transformBox(flipVertical(100), [0, 10, 5, 20]); // [0, 70, 5, 20]
 * ```
 */
export function flipVertical(height: number): Affine {
  return [1, 0, 0, 0, -1, height];
}

/**
 * Quarter turns clockwise of a `width × height` image onto its new canvas (which is
 * `height × width` for odd `turns`). Exact: no trigonometry.
 *
 * @example
 * ```ts
 * applyToPoint(rotate90(1, 40, 20), [0, 0]); // [20, 0]: top-left goes to top-right
 * ```
 */
export function rotate90(turns: number, width: number, height: number): Affine {
  const k = ((Math.round(turns) % 4) + 4) % 4;
  switch (k) {
    case 0:
      return identity();
    case 1:
      return [0, -1, height, 1, 0, 0];
    case 2:
      return [-1, 0, width, 0, -1, height];
    default:
      return [0, 1, 0, -1, 0, width];
  }
}

/**
 * Composes matrices in APPLICATION order: `compose(a, b, c)` maps a point through `a`, then
 * `b`, then `c`. With no argument it returns the identity.
 *
 * @example
 * ```ts
 * applyToPoint(compose(translate(1, 0), scale(2)), [0, 0]); // [2, 0]
 * ```
 */
export function compose(...matrices: Affine[]): Affine {
  let m = identity();
  for (const next of matrices) m = multiply(next, m);
  return m;
}

/** Matrix product `p·q` (apply `q` first, then `p`). */
export function multiply(p: Affine, q: Affine): Affine {
  const [a, b, c, d, e, f] = p;
  const [A, B, C, D, E, F] = q;
  return [
    a * A + b * D,
    a * B + b * E,
    a * C + b * F + c,
    d * A + e * D,
    d * B + e * E,
    d * C + e * F + f,
  ];
}

/** Determinant of the linear part; negative for mirroring transforms. */
export function determinant(m: Affine): number {
  return m[0] * m[4] - m[1] * m[3];
}

/**
 * Inverse matrix. Throws {@link GeometryError} when the matrix is singular.
 *
 * @example
 * ```ts
 * applyToPoint(invert(translate(3, 4)), [3, 4]); // [0, 0]
 * ```
 */
export function invert(m: Affine): Affine {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) {
    throw new GeometryError(
      `invert: expected a non-singular affine matrix, found determinant ${det} in [${
        m.join(", ")
      }]`,
    );
  }
  const ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
  return [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)];
}

/**
 * Maps one point.
 *
 * @example
 * ```ts
 * applyToPoint([2, 0, 1, 0, 2, 1], [1, 1]); // [3, 3]
 * ```
 */
export function applyToPoint(m: Affine, p: Point): Point {
  return [m[0] * p[0] + m[1] * p[1] + m[2], m[3] * p[0] + m[4] * p[1] + m[5]];
}

/** Maps many points. */
export function applyToPoints(m: Affine, points: readonly Point[]): Point[] {
  return points.map((p) => applyToPoint(m, p));
}

/**
 * Transforms a box: the axis-aligned envelope of its four transformed corners. Exact for
 * flips, quarter turns, scaling and translation; a superset of the true region otherwise.
 *
 * @example
 * ```ts
 * transformBox(rotate(90), [0, 0, 2, 1]); // ≈ [-1, 0, 1, 2]
 * ```
 */
export function transformBox(m: Affine, box: BBox): BBox {
  return envelope(applyToPoints(m, boxToCorners(box)));
}

/**
 * Transforms a polygon exactly (affine maps send polygons to polygons).
 *
 * @example
 * ```ts
 * transformPolygon(scale(2), [[0, 0], [1, 0], [0, 1]]); // [[0,0],[2,0],[0,2]]
 * ```
 */
export function transformPolygon(m: Affine, points: readonly Point[]): Point[] {
  return applyToPoints(m, points);
}

/** Cosine and sine of an angle in degrees, exact at multiples of 90°. */
export function cosSin(degrees: number): { cos: number; sin: number } {
  const k = degrees / 90;
  if (Number.isInteger(k)) {
    const q = ((k % 4) + 4) % 4;
    return [{ cos: 1, sin: 0 }, { cos: 0, sin: 1 }, { cos: -1, sin: 0 }, { cos: 0, sin: -1 }][q];
  }
  const r = (degrees * Math.PI) / 180;
  return { cos: Math.cos(r), sin: Math.sin(r) };
}

/** True when every number of the matrix is finite. */
export function isFiniteAffine(m: Affine): boolean {
  return m.every(Number.isFinite);
}

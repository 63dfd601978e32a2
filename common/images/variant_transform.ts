/**
 * Exact geometry of a variant: where every source pixel lands. {@link planVariant} decides the
 * output size and the mapping `v = (s − crop) · scale + pad` (per axis, `VariantTransform` in
 * common/manifest/mod.ts) from the source size and the spec alone; the renderers (sharp on the
 * CPU, torch on a GPU) then produce exactly that geometry, so the stored transform maps
 * original-image pixels whatever intermediate sizes the renderer used.
 *
 * Coordinates are continuous with a top-left origin: pixel `i` spans `[i, i + 1)`. Scales are
 * always `output size / source size` of the resized content, so rounding the content size to
 * whole pixels is part of the transform, not an error on top of it.
 *
 * @example
 * ```ts
 * const t = planVariant(4000, 3000, { width: 640, height: 640, mode: "letterbox" });
 * // { width: 640, height: 640, scaleX: 0.16, scaleY: 0.16, padX: 0, padY: 80, cropX: 0, cropY: 0, ... }
 * boxToVariant(t, [1000, 1000, 400, 300]); // [160, 240, 64, 48]
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";
import type { AnnotationInput, BBox, VariantTransform } from "../manifest/mod.ts";
import { clipPolygon, intersectBoxes, type Point } from "../annotations/geometry.ts";
import type { VariantMode } from "./variant_spec.ts";

export type { BBox, Point, VariantTransform };

/** What {@link planVariant} needs from a spec. */
export interface VariantGeometry {
  width: number;
  height: number;
  mode: VariantMode;
}

/** A size or transform argument was out of range. */
export class VariantGeometryError extends SluiceError {
  constructor(message: string) {
    super("invalid_variant_geometry", message);
    this.name = "VariantGeometryError";
  }
}

/** Default minimum visible fraction for boxes cut by a crop (as in augmentation). */
export const DEFAULT_MIN_VISIBLE = 0.3;

/**
 * Plans the output geometry of one variant of a `srcWidth × srcHeight` image (EXIF orientation
 * already applied). Content sizes are rounded to whole pixels (at least 1); letterbox padding
 * and cover crops are centred, with the odd pixel on the right / bottom.
 *
 * @example
 * ```ts
 * planVariant(4000, 3000, { width: 1280, height: 1280, mode: "fit" });   // 1280×960, scale 0.32
 * planVariant(4000, 3000, { width: 320, height: 320, mode: "cover" });   // 320×320, cropX 500
 * ```
 */
export function planVariant(
  srcWidth: number,
  srcHeight: number,
  spec: VariantGeometry,
): VariantTransform {
  for (
    const [what, v] of [["source width", srcWidth], ["source height", srcHeight], [
      "variant width",
      spec.width,
    ], ["variant height", spec.height]] as const
  ) {
    if (!(Number.isInteger(v) && v >= 1)) {
      throw new VariantGeometryError(`${what}: expected an integer >= 1, found ${v}`);
    }
  }
  const W = spec.width, H = spec.height;
  const base = { srcWidth, srcHeight, padX: 0, padY: 0, cropX: 0, cropY: 0 };
  switch (spec.mode) {
    case "stretch":
      return { ...base, width: W, height: H, scaleX: W / srcWidth, scaleY: H / srcHeight };
    case "fit": {
      // Never enlarged: upscaling adds bytes, not information.
      const s = Math.min(W / srcWidth, H / srcHeight, 1);
      const w = roundSide(srcWidth * s, W), h = roundSide(srcHeight * s, H);
      return { ...base, width: w, height: h, scaleX: w / srcWidth, scaleY: h / srcHeight };
    }
    case "letterbox": {
      const s = Math.min(W / srcWidth, H / srcHeight);
      const w = roundSide(srcWidth * s, W), h = roundSide(srcHeight * s, H);
      return {
        ...base,
        width: W,
        height: H,
        scaleX: w / srcWidth,
        scaleY: h / srcHeight,
        padX: Math.floor((W - w) / 2),
        padY: Math.floor((H - h) / 2),
      };
    }
    case "cover": {
      const s = Math.max(W / srcWidth, H / srcHeight);
      // The content is resized to w×h (≥ W×H) and a whole-pixel window is cut from its centre,
      // so the crop offset is an integer in content pixels and fractional in source pixels.
      const w = Math.max(W, Math.round(srcWidth * s)), h = Math.max(H, Math.round(srcHeight * s));
      const scaleX = w / srcWidth, scaleY = h / srcHeight;
      return {
        ...base,
        width: W,
        height: H,
        scaleX,
        scaleY,
        cropX: Math.floor((w - W) / 2) / scaleX,
        cropY: Math.floor((h - H) / 2) / scaleY,
      };
    }
    default:
      throw new VariantGeometryError(
        `variant mode: expected fit, letterbox, cover or stretch, found ${
          JSON.stringify(spec.mode)
        }`,
      );
  }
}

function roundSide(v: number, max: number): number {
  return Math.min(max, Math.max(1, Math.round(v)));
}

/**
 * Size of the resized source before padding or cropping (whole pixels): what a renderer resizes
 * the full image to before it pads (letterbox) or cuts (cover).
 *
 * @example
 * ```ts
 * contentSize(planVariant(4000, 3000, { width: 320, height: 320, mode: "cover" })); // { width: 427, height: 320 }
 * ```
 */
export function contentSize(t: VariantTransform): { width: number; height: number } {
  return { width: Math.round(t.srcWidth * t.scaleX), height: Math.round(t.srcHeight * t.scaleY) };
}

/**
 * Offset of the output window inside the resized content, in content pixels (cover crops;
 * `{0, 0}` otherwise). Always whole pixels.
 *
 * @example
 * ```ts
 * contentOffset(planVariant(4000, 3000, { width: 320, height: 320, mode: "cover" })); // { left: 53, top: 0 }
 * ```
 */
export function contentOffset(t: VariantTransform): { left: number; top: number } {
  return { left: Math.round(t.cropX * t.scaleX), top: Math.round(t.cropY * t.scaleY) };
}

/**
 * Maps a source point into the variant.
 *
 * @example
 * ```ts
 * pointToVariant(planVariant(200, 100, { width: 100, height: 100, mode: "letterbox" }), [100, 50]); // [50, 50]
 * ```
 */
export function pointToVariant(t: VariantTransform, p: Point): Point {
  return [(p[0] - t.cropX) * t.scaleX + t.padX, (p[1] - t.cropY) * t.scaleY + t.padY];
}

/**
 * Maps a variant point back into the source image (inverse of {@link pointToVariant}).
 *
 * @example
 * ```ts
 * pointFromVariant(planVariant(200, 100, { width: 100, height: 100, mode: "letterbox" }), [50, 50]); // [100, 50]
 * ```
 */
export function pointFromVariant(t: VariantTransform, p: Point): Point {
  return [(p[0] - t.padX) / t.scaleX + t.cropX, (p[1] - t.padY) / t.scaleY + t.cropY];
}

/**
 * The part of the variant that shows source pixels (excludes letterbox padding; for cover it is
 * the whole output), as a box in variant pixels.
 *
 * @example
 * ```ts
 * visibleRegion(planVariant(200, 100, { width: 100, height: 100, mode: "letterbox" })); // [0, 25, 100, 50]
 * ```
 */
export function visibleRegion(t: VariantTransform): BBox {
  const [x0, y0] = pointToVariant(t, [0, 0]);
  const [x1, y1] = pointToVariant(t, [t.srcWidth, t.srcHeight]);
  const l = Math.max(0, x0), tp = Math.max(0, y0);
  const r = Math.min(t.width, x1), b = Math.min(t.height, y1);
  return [l, tp, Math.max(0, r - l), Math.max(0, b - tp)];
}

/** Options for mapping boxes into a variant. */
export interface ToVariantOptions {
  /**
   * A box whose visible fraction (area inside the visible region / whole area, after mapping) is
   * below this is dropped; the rest are clipped. Default {@link DEFAULT_MIN_VISIBLE}.
   */
  minVisible?: number;
}

/**
 * Maps a source box `[x, y, w, h]` into the variant, clipped to the visible region; null when
 * less than `minVisible` of it survives a cover crop (or it lies outside the image).
 *
 * @example
 * ```ts
 * const t = planVariant(400, 200, { width: 200, height: 200, mode: "cover" }); // cropX 100
 * boxToVariant(t, [50, 0, 100, 100]);  // [0, 0, 50, 100]: half visible, clipped
 * boxToVariant(t, [0, 0, 110, 100]);   // null: only 9% visible
 * ```
 */
export function boxToVariant(
  t: VariantTransform,
  box: BBox,
  opts: ToVariantOptions = {},
): BBox | null {
  const minVisible = checkMinVisible(opts.minVisible);
  const mapped = mapBox(t, box);
  const area = mapped[2] * mapped[3];
  if (!(area > 0) || !Number.isFinite(area)) return null;
  const clipped = intersectBoxes(mapped, visibleRegion(t));
  if (!clipped) return null;
  if ((clipped[2] * clipped[3]) / area < minVisible) return null;
  return clipped;
}

/**
 * Maps a variant box back into source pixels, clipped to the source image (padding maps outside
 * the image and is cut away). Null when nothing of it lies on the image.
 *
 * @example
 * ```ts
 * const t = planVariant(4000, 3000, { width: 640, height: 640, mode: "letterbox" });
 * boxFromVariant(t, [160, 240, 64, 48]); // [1000, 1000, 400, 300]
 * ```
 */
export function boxFromVariant(t: VariantTransform, box: BBox): BBox | null {
  const [x0, y0] = pointFromVariant(t, [box[0], box[1]]);
  const [x1, y1] = pointFromVariant(t, [box[0] + box[2], box[1] + box[3]]);
  return intersectBoxes([x0, y0, x1 - x0, y1 - y0], [0, 0, t.srcWidth, t.srcHeight]);
}

/** Annotations mapped into a variant, and the indices of those dropped by the crop policy. */
export interface VariantAnnotations {
  kept: AnnotationInput[];
  dropped: number[];
}

/**
 * Maps annotations into a variant: boxes as {@link boxToVariant}, polygons mapped and clipped to
 * the visible region. Rotated annotations keep their rotation (scales are uniform up to content
 * rounding, except for `stretch`, where the polygon is the faithful shape).
 *
 * @example
 * ```ts
 * const { kept, dropped } = annotationsToVariant(t, annotations, { minVisible: 0.3 });
 * ```
 */
export function annotationsToVariant(
  t: VariantTransform,
  annotations: readonly AnnotationInput[],
  opts: ToVariantOptions = {},
): VariantAnnotations {
  const kept: AnnotationInput[] = [];
  const dropped: number[] = [];
  const [vx, vy, vw, vh] = visibleRegion(t);
  annotations.forEach((ann, i) => {
    const bbox = boxToVariant(t, ann.bbox, opts);
    if (!bbox) return void dropped.push(i);
    const out: AnnotationInput = { ...ann, bbox };
    if (ann.polygon) {
      const shifted = ann.polygon.map((p) => {
        const [x, y] = pointToVariant(t, p);
        return [x - vx, y - vy] as Point;
      });
      const clipped = clipPolygon(shifted, vw, vh);
      out.polygon = clipped.length >= 3 ? clipped.map(([x, y]) => [x + vx, y + vy] as Point) : null;
    }
    kept.push(out);
  });
  return { kept, dropped };
}

function mapBox(t: VariantTransform, box: BBox): BBox {
  const [x0, y0] = pointToVariant(t, [box[0], box[1]]);
  return [x0, y0, box[2] * t.scaleX, box[3] * t.scaleY];
}

function checkMinVisible(v: number | undefined): number {
  const m = v ?? DEFAULT_MIN_VISIBLE;
  if (!(m >= 0 && m <= 1)) {
    throw new VariantGeometryError(`minVisible: expected a fraction in [0, 1], found ${v}`);
  }
  return m;
}

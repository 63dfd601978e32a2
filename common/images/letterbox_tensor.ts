/**
 * Model input for inference, made by the SAME code as the normalize stage's letterbox variants:
 * `planVariant(…, "letterbox")` for the geometry and the shared sharp render path for the
 * pixels. A detector's boxes in tensor pixels map back to the original image with
 * `boxFromVariant(transform, box)`.
 *
 * @example
 * ```ts
 * const { data, dims, transform } = await letterboxToTensor("/stage/a.jpg", 320);
 * const out = await session.run({ images: new ort.Tensor("float32", data, dims) });
 * const boxInImage = boxFromVariant(transform, [x, y, w, h]);
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";
import type { VariantTransform } from "../manifest/mod.ts";
import {
  decodeForPlans,
  type SharpFactory,
  type SharpInput,
  toRawRgb,
  variantPipeline,
} from "./_sharp_render.ts";
import { DEFAULT_LETTERBOX_BACKGROUND, parseVariantSpec } from "./variant_spec.ts";
import { planVariant } from "./variant_transform.ts";

/** A letterboxed image as a float tensor. */
export interface LetterboxTensor {
  /** NCHW, RGB, values in [0, 1]; length 3 · height · width. */
  data: Float32Array;
  /** `[1, 3, height, width]`. */
  dims: [1, 3, number, number];
  width: number;
  height: number;
  /** Exact mapping from the (EXIF-oriented) source image into the tensor's pixels. */
  transform: VariantTransform;
}

/** A letterboxed image as interleaved 8-bit RGB (HWC). */
export interface LetterboxRgb {
  rgb: Uint8Array;
  width: number;
  height: number;
  transform: VariantTransform;
}

export interface LetterboxOptions {
  /** Pad colour, default {@link DEFAULT_LETTERBOX_BACKGROUND} (the normalize default too). */
  background?: string;
  /** sharp `fastShrinkOnLoad` (as in the CPU resizer; default true). */
  fastShrinkOnLoad?: boolean;
  /** Test seam, see `SharpFactory`. */
  sharpFactory?: SharpFactory;
}

/**
 * Decodes once and letterboxes to `size` (a square side, or width and height) as raw RGB.
 *
 * @example
 * ```ts
 * const { rgb, transform } = await letterboxRgb(bytes, { width: 640, height: 384 });
 * ```
 */
export async function letterboxRgb(
  input: SharpInput,
  size: number | { width: number; height: number },
  opts: LetterboxOptions = {},
): Promise<LetterboxRgb> {
  const { width, height } = typeof size === "number" ? { width: size, height: size } : size;
  const spec = parseVariantSpec({
    name: "letterbox",
    width,
    height,
    mode: "letterbox",
    background: opts.background ?? DEFAULT_LETTERBOX_BACKGROUND,
  });
  const { decoded, transforms: [transform] } = await decodeForPlans(
    input,
    (w, h) => [planVariant(w, h, spec)],
    { factory: opts.sharpFactory, fastShrinkOnLoad: opts.fastShrinkOnLoad },
  );
  const p = await variantPipeline(decoded, transform, spec.background, opts.sharpFactory);
  const rgb = await toRawRgb(p, transform.width, transform.height);
  return { rgb, width: transform.width, height: transform.height, transform };
}

/**
 * Decodes once and letterboxes to `size` as an NCHW float tensor (RGB, 0..1), batch of one.
 *
 * @example
 * ```ts
 * const t = await letterboxToTensor("/stage/a.jpg", 320);
 * t.dims; // [1, 3, 320, 320]
 * ```
 */
export async function letterboxToTensor(
  input: SharpInput,
  size: number | { width: number; height: number },
  opts: LetterboxOptions = {},
): Promise<LetterboxTensor> {
  const { rgb, width, height, transform } = await letterboxRgb(input, size, opts);
  return {
    data: rgbToNchw(rgb, width, height),
    dims: [1, 3, height, width],
    width,
    height,
    transform,
  };
}

/**
 * Interleaved 8-bit RGB (HWC) → planar float NCHW in [0, 1]. `out` lets a caller fill one slot
 * of a batch buffer (`offset` in floats).
 *
 * @example
 * ```ts
 * const batch = new Float32Array(n * 3 * h * w);
 * rgbToNchw(rgb, w, h, batch, i * 3 * h * w);
 * ```
 */
export function rgbToNchw(
  rgb: Uint8Array,
  width: number,
  height: number,
  out: Float32Array = new Float32Array(3 * width * height),
  offset = 0,
): Float32Array {
  const plane = width * height;
  if (rgb.length !== plane * 3) {
    throw new SluiceError(
      "invalid_tensor_input",
      `rgbToNchw: expected ${plane * 3} bytes for ${width}×${height} RGB, found ${rgb.length}`,
    );
  }
  if (out.length < offset + plane * 3) {
    throw new SluiceError(
      "invalid_tensor_input",
      `rgbToNchw: expected an output of at least ${offset + plane * 3} floats, found ${out.length}`,
    );
  }
  const r = offset, g = offset + plane, b = offset + 2 * plane;
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    out[r + i] = rgb[j] / 255;
    out[g + i] = rgb[j + 1] / 255;
    out[b + i] = rgb[j + 2] / 255;
  }
  return out;
}

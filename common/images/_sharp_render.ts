/**
 * The sharp render path shared by the CPU resizer, the letterbox tensor used by inference, and
 * the GPU resizer's encoder: read the header, plan every variant from the oriented source size,
 * decode ONCE (EXIF orientation applied, JPEG shrink-on-load sized for the largest content) to
 * raw RGB, then derive each variant from that raw buffer with its own cheap pipeline.
 *
 * Exactness: every step maps the full extent of its input to the full extent of its output, so
 * the composition of (decode-time shrink, intermediate resize, variant resize) is exactly
 * `content size / source size` per axis, the scale `planVariant` recorded; crops and pads are
 * whole pixels of the final content. Nothing here computes a transform from intermediate sizes.
 *
 * Pixel-centre phase: the transform's convention is that pixel `i` spans `[i, i + 1)`, so a
 * resize by `s` must map centre `x + ½` to `s·(x + ½)`. libvips' reducers (shrinking) follow it;
 * its resize ENLARGES like `affine(idx = ½)` alone (measured: the same edges, whatever the
 * kernel but nearest), which maps `x + ½` to `s·(x + ½) + ½`: every enlarged image came out
 * shifted right/down by half an output pixel (a 2× box edge at 20.5 instead of 20). Axes that
 * grow are therefore enlarged here with sharp's `affine` and the missing `odx = ody = −½` (same
 * bicubic interpolator libvips' resize uses), on a copy whose borders are replicated so that
 * edge pixels do not blend with a background. Measured on drawn boxes (sharp_resizer_test):
 * edges within 0.2 px of the transform, shrinking and enlarging.
 * @module
 */
import sharp, { type Metadata, type OutputInfo, type Sharp, type SharpOptions } from "sharp";
import type { VariantTransform } from "../manifest/mod.ts";
import { ImageDecodeError, RenderError } from "./resizer.ts";
import { contentOffset, contentSize } from "./variant_transform.ts";
import { assertDecodable, type DecodePolicy, DEFAULT_DECODE_POLICY } from "./decode_policy.ts";
import type { VariantSpec } from "./variant_spec.ts";

/** What a render reads: a file path or encoded bytes. */
export type SharpInput = string | Uint8Array;

/**
 * Builds sharp pipelines. Injectable so tests can count how often the original bytes are
 * opened (the one-decode guarantee) without mocking sharp itself.
 */
export type SharpFactory = (input: SharpInput, options?: SharpOptions) => Sharp;

/** Plain `sharp(input, options)`. */
export const defaultSharpFactory: SharpFactory = (input, options) => sharp(input, options);

/** A decoded, oriented, 8-bit sRGB image at an intermediate size. */
export interface DecodedRgb {
  data: Uint8Array;
  width: number;
  height: number;
  /** Source size after EXIF orientation (what the transforms refer to). */
  srcWidth: number;
  srcHeight: number;
}

export interface DecodeOptions {
  factory?: SharpFactory;
  /** Format allowlist, pixel and byte limits checked on the header (default the shared policy). */
  policy?: DecodePolicy;
  /** sharp's `fastShrinkOnLoad` (default true; false leaves more of the shrink to the resampler). */
  fastShrinkOnLoad?: boolean;
}

/** Short description of a render input for error messages. */
export function describeInput(input: SharpInput): string {
  return typeof input === "string" ? JSON.stringify(input) : `<${input.byteLength} bytes>`;
}

/**
 * Source size after EXIF orientation, from the header only; refuses, before any decode, what the
 * decode policy does not allow (format, pixels, bytes).
 */
export async function orientedSize(
  img: Sharp,
  input: SharpInput,
  policy: DecodePolicy = DEFAULT_DECODE_POLICY,
): Promise<{ width: number; height: number; hasAlpha: boolean; orientation: number }> {
  let meta: Metadata;
  let bytes: number;
  try {
    meta = await img.metadata();
    bytes = typeof input === "string" ? (await Deno.stat(input)).size : input.byteLength;
  } catch (err) {
    throw new ImageDecodeError(describeInput(input), `found: ${(err as Error).message}`, {
      cause: err,
    });
  }
  assertDecodable(meta, bytes, describeInput(input), policy);
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!(width > 0 && height > 0)) {
    throw new ImageDecodeError(
      describeInput(input),
      `found no size in the header (format ${meta.format})`,
    );
  }
  return { width, height, hasAlpha: meta.hasAlpha === true, orientation: meta.orientation ?? 1 };
}

/**
 * Opens the input once, plans the transforms from its oriented size, and decodes it once to raw
 * RGB just large enough (per axis) for the largest planned content, never larger than the
 * source. Returns the raw image and the transforms in plan order.
 */
export async function decodeForPlans(
  input: SharpInput,
  plan: (srcWidth: number, srcHeight: number) => VariantTransform[],
  opts: DecodeOptions = {},
): Promise<{ decoded: DecodedRgb; transforms: VariantTransform[] }> {
  const factory = opts.factory ?? defaultSharpFactory;
  // failOn "error": refuse corrupt and truncated data, accept libjpeg's harmless warnings.
  const policy = opts.policy ?? DEFAULT_DECODE_POLICY;
  const img = factory(input, { failOn: "error", limitInputPixels: policy.maxPixels });
  const src = await orientedSize(img, input, policy);
  const transforms = plan(src.width, src.height);
  let w = 1, h = 1;
  for (const t of transforms) {
    const c = contentSize(t);
    w = Math.max(w, c.width);
    h = Math.max(h, c.height);
  }
  w = Math.min(w, src.width);
  h = Math.min(h, src.height);

  img.rotate();
  if (w !== src.width || h !== src.height) {
    img.resize(w, h, { fit: "fill", fastShrinkOnLoad: opts.fastShrinkOnLoad ?? true });
  }
  // Alpha is flattened onto black: variants are opaque (JPEG cannot carry alpha anyway).
  if (src.hasAlpha) img.flatten({ background: "#000000" });
  img.toColourspace("srgb");
  let out: { data: Uint8Array; info: OutputInfo };
  try {
    out = await img.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new ImageDecodeError(describeInput(input), `found: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const { info } = out;
  if (info.width !== w || info.height !== h || info.channels !== 3) {
    throw new RenderError(
      `decode of ${describeInput(input)}: expected ${w}×${h}×3 raw RGB, found ` +
        `${info.width}×${info.height}×${info.channels}`,
    );
  }
  return {
    decoded: { data: out.data, width: w, height: h, srcWidth: src.width, srcHeight: src.height },
    transforms,
  };
}

/** Interleaved 8-bit RGB pixels. */
interface RawRgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * The pipeline that turns the decoded raw image into one variant's pixels (no encoding yet):
 * resize to the content size, then cut the cover window or add the letterbox padding. Content
 * larger than the decode (on either axis) is enlarged first by {@link enlargeExact}.
 */
export async function variantPipeline(
  decoded: DecodedRgb,
  t: VariantTransform,
  background: string,
  factory: SharpFactory = defaultSharpFactory,
): Promise<Sharp> {
  const c = contentSize(t);
  const src: RawRgb = c.width > decoded.width || c.height > decoded.height
    ? await enlargeExact(decoded, c, factory)
    : decoded;
  const p = factory(src.data, {
    raw: { width: src.width, height: src.height, channels: 3 },
  });
  if (c.width !== src.width || c.height !== src.height) {
    p.resize(c.width, c.height, { fit: "fill" });
  }
  if (c.width > t.width || c.height > t.height) {
    const o = contentOffset(t);
    p.extract({ left: o.left, top: o.top, width: t.width, height: t.height });
  } else if (c.width < t.width || c.height < t.height) {
    p.extend({
      left: t.padX,
      top: t.padY,
      right: t.width - c.width - t.padX,
      bottom: t.height - c.height - t.padY,
      background,
    });
  }
  return p;
}

/** Replicated border for the enlarging affine: bicubic reads 2 pixels beyond an edge. */
const ENLARGE_BORDER = 2;

/**
 * Resizes `src` to exactly `size` when at least one axis grows, with pixel centres where the
 * transform puts them (see the module documentation): axes that shrink are shrunk first by
 * libvips' reducer, then the growing axes are enlarged by an affine with the right phase.
 */
async function enlargeExact(
  src: RawRgb,
  size: { width: number; height: number },
  factory: SharpFactory,
): Promise<RawRgb> {
  let img = src;
  const shrunk = {
    width: Math.min(size.width, src.width),
    height: Math.min(size.height, src.height),
  };
  if (shrunk.width !== src.width || shrunk.height !== src.height) {
    const p = factory(src.data, { raw: { width: src.width, height: src.height, channels: 3 } })
      .resize(shrunk.width, shrunk.height, { fit: "fill" });
    img = { ...shrunk, data: await toRawRgb(p, shrunk.width, shrunk.height) };
  }
  const k = ENLARGE_BORDER;
  const padded = replicateBorder(img, k);
  // Output pixel X samples input index x with X = s·(x + idx) + odx (integers are pixel centres):
  // X + ½ = s·(x + ½) needs idx = ½, odx = −½; the replicated border shifts input indices by k.
  const { data, info } = await factory(padded.data, {
    raw: { width: padded.width, height: padded.height, channels: 3 },
  })
    .affine([size.width / img.width, 0, 0, size.height / img.height], {
      idx: 0.5 - k,
      idy: 0.5 - k,
      odx: -0.5,
      ody: -0.5,
      interpolator: sharp.interpolators.bicubic,
    })
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  if (info.width < size.width || info.height < size.height || info.channels !== 3) {
    throw new RenderError(
      `enlarge ${img.width}×${img.height} to ${size.width}×${size.height}: expected at least ` +
        `that much raw RGB, found ${info.width}×${info.height}×${info.channels}`,
    );
  }
  // The affine's output starts at the content's origin and runs past its far edges (the border).
  const out = new Uint8Array(size.width * size.height * 3);
  const row = size.width * 3, stride = info.width * 3;
  for (let y = 0; y < size.height; y++) {
    out.set(data.subarray(y * stride, y * stride + row), y * row);
  }
  return { data: out, width: size.width, height: size.height };
}

/** A copy of `img` with `k` pixels of each edge row / column repeated outwards. */
function replicateBorder(img: RawRgb, k: number): RawRgb {
  const { width: w, height: h } = img;
  const W = w + 2 * k, H = h + 2 * k;
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - k));
    const line = img.data.subarray(sy * w * 3, (sy + 1) * w * 3);
    const o = y * W * 3;
    out.set(line, o + k * 3);
    for (let x = 0; x < k; x++) {
      out.set(line.subarray(0, 3), o + x * 3);
      out.set(line.subarray((w - 1) * 3), o + (k + w + x) * 3);
    }
  }
  return { data: out, width: W, height: H };
}

/** Adds the spec's encoder to a pipeline. */
export function encodeAs(p: Sharp, spec: VariantSpec): Sharp {
  switch (spec.format) {
    case "jpeg":
      return p.jpeg({ quality: spec.quality });
    case "webp":
      return p.webp({ quality: spec.quality });
    case "png":
      return p.png({ compressionLevel: 6 });
    case "avif":
      return p.avif({ quality: spec.quality });
  }
}

/** Runs a pipeline to raw RGB and checks its size. */
export async function toRawRgb(
  p: Sharp,
  width: number,
  height: number,
): Promise<Uint8Array> {
  const { data, info } = await p.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== 3) {
    throw new RenderError(
      `render: expected ${width}×${height}×3 raw RGB, found ${info.width}×${info.height}×${info.channels}`,
    );
  }
  return data;
}

/**
 * Verification of untrusted image objects before anything else touches them.
 *
 * Order matters: size limits first (cheap), then MAGIC BYTES against an allowlist (JPEG, PNG,
 * WebP, TIFF), and only then sharp. libvips also decodes SVG (which can reference local files
 * and URLs), GIF, HEIF, PDF and more; bytes that are not on the allowlist are never handed to
 * sharp. Dimensions come from the header (no decode) and are checked against `maxPixels` before
 * a full decode, which then catches truncated and corrupt data.
 *
 * @example
 * ```ts
 * const info = await inspectImage(bytes, { maxBytes: 50 << 20, maxPixels: 100e6 }, { name: key });
 * const upright = await normalizeOrientation(bytes); // same bytes when orientation is 1
 * ```
 * @module
 */
import { open, stat } from "node:fs/promises";
import sharp, { type Metadata } from "sharp";
import { z } from "zod";
import { messageOf, SluiceError } from "../errors/mod.ts";
import { stripPersonalMetadata } from "./strip_metadata.ts";
import { decodeQuietly } from "./decoder_warnings.ts";
import { DEFAULT_DECODE_POLICY } from "./decode_policy.ts";

/** Formats Sluice accepts. */
export type ImageFormat = "jpeg" | "png" | "webp" | "tiff";

/** Reason codes of {@link ImageError}. */
export type ImageErrorCode =
  | "empty_object"
  | "too_large"
  | "unsupported_format"
  | "too_many_pixels"
  | "corrupt_image";

/** A refused image; `code` says why and `item` names it. */
export class ImageError extends SluiceError {
  override readonly code: ImageErrorCode;
  readonly item: string;
  constructor(code: ImageErrorCode, item: string, problem: string, options?: ErrorOptions) {
    super(code, `${item}: ${problem}`, options);
    this.name = "ImageError";
    this.code = code;
    this.item = item;
  }
}

export interface ImageInfo {
  format: ImageFormat;
  /** After EXIF orientation (orientations 5–8 swap width and height). */
  width: number;
  height: number;
  /** EXIF orientation 1–8 (1 when absent). */
  orientation: number;
  hasAlpha: boolean;
  /** Size of the encoded object in bytes. */
  size: number;
  /**
   * What the decoder warned about when it decoded anyway (libjpeg's "Corrupt JPEG data: …"),
   * null when the decode was clean or not done.
   */
  decodeWarning: string | null;
}

export const ImageLimitsSchema = z.strictObject({
  /** Largest accepted object, bytes. */
  maxBytes: z.number().int().positive(),
  /** Largest accepted width × height (decompression-bomb guard). */
  maxPixels: z.number().int().positive(),
});
export type ImageLimits = z.infer<typeof ImageLimitsSchema>;

export const InspectOptionsSchema = z.strictObject({
  /** Name used in error messages (default: the path, or "image"). */
  name: z.string().optional(),
  /**
   * How strict the full decode is (sharp's `failOn`): `truncated` catches cut-off files only,
   * `error` (default) also corrupt data the decoder cannot get past, `warning` anything libjpeg
   * or libpng complains about. `warning` refuses some real camera files, hence the default.
   */
  failOn: z.enum(["truncated", "error", "warning"]).default("error"),
  /** Skip the full decode (header checks only), e.g. when the caller decodes right after. */
  decode: z.boolean().default(true),
  /**
   * Scale of the verifying decode: `reduced` (default) decodes JPEG at 1/8 DCT scale and WebP at
   * a reduced scale, which still entropy-decodes every block of the stream (where truncation and
   * corruption show), PNG and TIFF row by row; `full` decodes every pixel at full resolution. Both
   * give the same verdicts (`verify_reduced_scale_test.ts`); `full` is for that comparison.
   */
  decodeScale: z.enum(["reduced", "full"]).default("reduced"),
});
export type InspectOptions = z.input<typeof InspectOptionsSchema>;

const SNIFF_BYTES = 16;

/**
 * The allowlisted format of some bytes, from their magic numbers, or null.
 *
 * @example
 * ```ts
 * sniffFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])); // "jpeg"
 * sniffFormat(new TextEncoder().encode("<svg")); // null
 * ```
 */
export function sniffFormat(head: Uint8Array): ImageFormat | null {
  const b = head;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (
    b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 &&
    b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a
  ) return "png";
  if (
    b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP"
  ) return "webp";
  // Classic TIFF only (42); BigTIFF (43) is not something cameras or annotation tools produce.
  if (b.length >= 4 && b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) return "tiff";
  if (b.length >= 4 && b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42) return "tiff";
  return null;
}

/**
 * Verifies an image given as bytes or a file path and returns what it is. Throws
 * {@link ImageError} with code `empty_object`, `too_large`, `unsupported_format`,
 * `too_many_pixels` or `corrupt_image`.
 *
 * @example
 * ```ts
 * const info = await inspectImage("/stage/abc.jpg", { maxBytes: 50_000_000, maxPixels: 100_000_000 });
 * info.width; // after EXIF orientation
 * ```
 */
export async function inspectImage(
  input: Uint8Array | string,
  limits: ImageLimits,
  options: InspectOptions = {},
): Promise<ImageInfo> {
  const { maxBytes, maxPixels } = ImageLimitsSchema.parse(limits);
  const opts = InspectOptionsSchema.parse(options);
  const item = opts.name ?? (typeof input === "string" ? input : "image");

  let size: number;
  let head: Uint8Array;
  if (typeof input === "string") {
    size = (await stat(input)).size;
    checkSize(item, size, maxBytes);
    head = await readHead(input, SNIFF_BYTES);
  } else {
    size = input.byteLength;
    checkSize(item, size, maxBytes);
    head = input.subarray(0, SNIFF_BYTES);
  }
  const format = sniffFormat(head);
  if (!format) {
    throw new ImageError(
      "unsupported_format",
      item,
      `expected JPEG, PNG, WebP or TIFF magic bytes, found ${describeMagic(head)}`,
    );
  }
  const bytes = typeof input === "string" ? await Deno.readFile(input) : input;
  if (bytes.byteLength !== size) checkSize(item, bytes.byteLength, maxBytes);

  let meta: Metadata;
  try {
    // Header only: no pixels are decoded, so the pixel limit is ours to check below.
    meta = await sharp(bytes, { limitInputPixels: false, failOn: "none" }).metadata();
  } catch (err) {
    throw new ImageError("corrupt_image", item, `unreadable ${format} header: ${messageOf(err)}`, {
      cause: err,
    });
  }
  if (meta.format !== format) {
    throw new ImageError(
      "unsupported_format",
      item,
      `magic bytes say ${format} but the decoder found ${meta.format ?? "nothing"}`,
    );
  }
  const w = meta.width ?? 0, h = meta.height ?? 0;
  if (!(w > 0 && h > 0)) {
    throw new ImageError("corrupt_image", item, `expected positive dimensions, found ${w}×${h}`);
  }
  if (w * h > maxPixels) {
    throw new ImageError(
      "too_many_pixels",
      item,
      `${w}×${h} = ${w * h} pixels exceeds the limit of ${maxPixels} (possible decompression bomb)`,
    );
  }
  const decodeWarning = opts.decode
    ? await decodeFully(bytes, {
      item,
      format,
      width: w,
      height: h,
      maxPixels,
      failOn: opts.failOn,
      scale: opts.decodeScale,
    })
    : null;
  const orientation = meta.orientation && meta.orientation >= 1 && meta.orientation <= 8
    ? meta.orientation
    : 1;
  const swap = orientation >= 5;
  return {
    format,
    width: swap ? h : w,
    height: swap ? w : h,
    orientation,
    hasAlpha: meta.hasAlpha === true,
    size,
    decodeWarning,
  };
}

export const NormalizeOptionsSchema = z.strictObject({
  /** JPEG/WebP quality of the re-encoded upright image (default 95: rotation is not a resize). */
  quality: z.number().int().min(1).max(100).default(95),
  /**
   * Keep EXIF (GPS included), XMP and IPTC in the published image (default false: personal
   * metadata is stripped from every image, rotated or not; the ICC profile is always kept).
   */
  keepMetadata: z.boolean().default(false),
  /** Pixel limit of the decode (default the shared decode policy's; ingest passes its own). */
  maxPixels: z.number().int().positive().default(DEFAULT_DECODE_POLICY.maxPixels),
});
export type NormalizeOptions = z.input<typeof NormalizeOptionsSchema>;

/**
 * Applies EXIF orientation to the pixels and drops the tag, so that every consumer (browsers,
 * Label Studio, PyTorch loaders that ignore EXIF) sees the same upright image, and strips personal
 * metadata (EXIF with GPS, XMP, IPTC) unless `keepMetadata`. Orientation 1 (or none) without such
 * metadata returns the SAME bytes object untouched, so content hashes stay stable; with it, JPEG,
 * PNG and WebP lose the metadata losslessly (see `strip_metadata.ts`). The input must
 * have passed {@link inspectImage}: this never sniffs formats itself.
 *
 * @example
 * ```ts
 * const upright = await normalizeOrientation(bytes);
 * upright === bytes; // true when there was nothing to do
 * ```
 */
export async function normalizeOrientation(
  input: Uint8Array,
  options: NormalizeOptions = {},
): Promise<Uint8Array> {
  const { quality, keepMetadata, maxPixels } = NormalizeOptionsSchema.parse(options);
  const format = sniffFormat(input.subarray(0, SNIFF_BYTES));
  if (!format) {
    throw new ImageError(
      "unsupported_format",
      "image",
      "normalizeOrientation: expected JPEG, PNG, WebP or TIFF bytes",
    );
  }
  const meta = await sharp(input, { limitInputPixels: maxPixels }).metadata();
  const orientation = meta.orientation ?? 1;
  const personal = meta.exif !== undefined || meta.xmp !== undefined || meta.iptc !== undefined;
  if (orientation === 1 || orientation < 1 || orientation > 8) {
    if (keepMetadata || !personal) return input;
    // Lossless where the container allows it; TIFF keeps its tags in the image directory.
    if (format !== "tiff") return stripPersonalMetadata(input);
  }
  let img = sharp(input, { limitInputPixels: maxPixels }).autoOrient();
  img = keepMetadata ? img.keepMetadata() : img.keepIccProfile();
  if (format === "jpeg") img = img.jpeg({ quality });
  else if (format === "png") img = img.png();
  else if (format === "webp") img = img.webp({ quality });
  else img = img.tiff({ quality });
  const out = await img.toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function checkSize(item: string, size: number, maxBytes: number): void {
  if (size === 0) {
    throw new ImageError(
      "empty_object",
      item,
      "expected image bytes, found an empty object (0 bytes)",
    );
  }
  if (size > maxBytes) {
    throw new ImageError("too_large", item, `${size} bytes exceeds the limit of ${maxBytes} bytes`);
  }
}

async function readHead(path: string, n: number): Promise<Uint8Array> {
  const fh = await open(path, "r");
  try {
    const buf = new Uint8Array(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

function describeMagic(head: Uint8Array): string {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(head.subarray(0, 12));
  const known: [RegExp, string][] = [
    [/^\s*<(\?xml|svg)/i, "SVG/XML"],
    [/^GIF8[79]a/, "GIF"],
    [/^%PDF/, "PDF"],
    [/^.{4}ftyp(heic|heix|hevc|mif1|msf1|avif)/s, "HEIF/AVIF"],
    [/^BM/, "BMP"],
  ];
  for (const [re, name] of known) if (re.test(text)) return name;
  const hex = Array.from(head.subarray(0, 8), (x) => x.toString(16).padStart(2, "0")).join(" ");
  return hex ? `bytes ${hex}` : "nothing";
}

/**
 * Decodes every byte of the image; throws `corrupt_image` when it fails at `failOn`. Decodes
 * strictly first (`warning`): a clean image costs one decode, and one that only the lenient
 * level accepts is decoded again at `failOn` and returns the strict decoder's complaint.
 *
 * With `scale: "reduced"` the first, strict decode runs at reduced scale, and only a decode that
 * is clean there (no error and no warning from the decoder at all) is accepted from it. Anything
 * else is decided by full-resolution decodes: at 1/8 scale libjpeg still reports a corrupt
 * segment ("Corrupt JPEG data: premature end of data segment"), but libvips may see it only
 * after its last `failOn` check and let the decode pass (found on 4 of 208 damaged real photos
 * of the bench corpus), so such a verdict is never taken from the reduced decode. Warnings are
 * only heard from a decode that runs: with libvips's operation cache on, decoding the same bytes
 * again replays none, so callers that verify (ingest) turn the cache off.
 */
async function decodeFully(
  bytes: Uint8Array,
  o: {
    item: string;
    format: ImageFormat;
    width: number;
    height: number;
    maxPixels: number;
    failOn: "truncated" | "error" | "warning";
    scale: "reduced" | "full";
  },
): Promise<string | null> {
  // Reduced: all of the compressed data goes through the decoder into a 1/16-size output, so
  // nothing image-sized is kept: PNG and TIFF rows are all read by the box shrink; JPEG decodes
  // at 1/8 DCT scale (sharp's shrink-on-load picks 8 for a shrink of 16; libjpeg still
  // entropy-decodes every coefficient of every scan and skips only the full inverse DCT,
  // upsampling and colour conversion); WebP decodes scaled (the whole bitstream is parsed).
  // Not stats(): with several sharp pipelines running at once it loses the loader's error for
  // about one in six truncated PNGs and JPEGs, which then pass (measured with sharp 0.35 /
  // libvips 8.18); it is also 6× slower.
  const notes: string[] = [];
  const decode = (failOn: "truncated" | "error" | "warning", scale: "reduced" | "full") => {
    const img = sharp(bytes, { failOn, limitInputPixels: o.maxPixels, sequentialRead: true })
      .on("warning", (w: string) => notes.push(w));
    if (scale === "full") return img.raw().toBuffer();
    return img
      .resize(Math.max(1, Math.ceil(o.width / 16)), Math.max(1, Math.ceil(o.height / 16)), {
        fit: "fill",
      })
      .raw()
      .toBuffer();
  };
  if (o.scale === "reduced") {
    // Clean only when no pipeline at all heard a warning meanwhile: with decodes running at once,
    // this decode's own warning can be delivered to a neighbour (decoder_warnings.ts).
    const clean = await decodeQuietly(() => decode("warning", "reduced"))
      .then((d) => d.quiet && notes.length === 0, () => false);
    if (clean) return null;
    notes.length = 0;
  }
  let warning: string;
  try {
    await decode("warning", "full");
    return null;
  } catch (err) {
    warning = [messageOf(err), ...notes].join("; ");
    if (o.failOn === "warning") {
      throw new ImageError(
        "corrupt_image",
        o.item,
        `${o.format} does not decode fully: ${warning}`,
        { cause: err },
      );
    }
  }
  try {
    await decode(o.failOn, "full");
  } catch (err) {
    throw new ImageError(
      "corrupt_image",
      o.item,
      `${o.format} does not decode fully: ${messageOf(err)}`,
      { cause: err },
    );
  }
  return warning;
}

/**
 * The one decode policy every stage applies before pixels are decoded: a format allowlist
 * (JPEG, PNG, WebP, TIFF: no SVG, GIF, PDF, HEIF...), a pixel limit (decompression bombs) and a
 * byte limit. It is checked on the header, before any decode, by the shared render path
 * (`_sharp_render.ts`: normalize's resizers, the GPU path's header read, infer's letterbox, so
 * `--input` and `@list` objects that never went through ingest too), and its pixel limit is
 * handed to sharp as `limitInputPixels` wherever sharp decodes.
 *
 * @example
 * ```ts
 * assertDecodable({ format: "svg", width: 10, height: 10 }, 100, "a.svg"); // throws
 * sharp(bytes, decodeOptions()); // { failOn: "error", limitInputPixels: 100_000_000 }
 * ```
 * @module
 */
import { ImageDecodeError } from "./resizer.ts";

/** Formats any stage decodes (sharp's `metadata().format` names). */
export const DECODE_FORMATS: readonly string[] = ["jpeg", "png", "webp", "tiff"];

/** Limits of the decode policy. */
export interface DecodePolicy {
  /** Largest width × height decoded (default 100 000 000, ingest's default too). */
  maxPixels: number;
  /** Largest encoded input decoded (default 256 MiB, infer's default too). */
  maxBytes: number;
}

/** The policy used where a stage configures nothing else. */
export const DEFAULT_DECODE_POLICY: Readonly<DecodePolicy> = {
  maxPixels: 100_000_000,
  maxBytes: 256 * 1024 * 1024,
};

/**
 * Throws {@link ImageDecodeError} unless a header's format is allowed and its size within the
 * limits.
 *
 * @example
 * ```ts
 * assertDecodable(await img.metadata(), 1024, "photo.jpg");
 * ```
 */
export function assertDecodable(
  meta: { format?: string; width?: number; height?: number; pages?: number },
  bytes: number,
  what: string,
  policy: Readonly<DecodePolicy> = DEFAULT_DECODE_POLICY,
): void {
  const format = meta.format ?? "unknown";
  if (!DECODE_FORMATS.includes(format)) {
    throw new ImageDecodeError(
      what,
      `found format ${format}, not one of ${DECODE_FORMATS.join(", ")} (not decoded)`,
    );
  }
  if (bytes > policy.maxBytes) {
    throw new ImageDecodeError(
      what,
      `found ${bytes} bytes, over the limit of ${policy.maxBytes} (not decoded)`,
    );
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (pixels > policy.maxPixels) {
    throw new ImageDecodeError(
      what,
      `found ${meta.width}×${meta.height} pixels, over the limit of ${policy.maxPixels} ` +
        "(not decoded)",
    );
  }
}

/**
 * sharp input options that enforce the policy's pixel limit during a decode.
 *
 * @example
 * ```ts
 * sharp(bytes, decodeOptions({ maxPixels: 4e7, maxBytes: 1e8 }));
 * ```
 */
export function decodeOptions(
  policy: Readonly<DecodePolicy> = DEFAULT_DECODE_POLICY,
): { failOn: "error"; limitInputPixels: number } {
  return { failOn: "error", limitInputPixels: policy.maxPixels };
}

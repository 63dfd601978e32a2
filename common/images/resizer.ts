/**
 * The resizer seam: one interface, a CPU implementation (sharp_resizer.ts) and a GPU one
 * (gpu_resizer.ts), picked by select_resizer.ts. Every implementation decodes each source once,
 * renders all requested variants from that decode, and returns for each the transform planned
 * by `planVariant`, so variants are interchangeable whichever implementation made them.
 *
 * @example
 * ```ts
 * const { resizer } = await selectResizer({ resizer: "auto" });
 * try {
 *   for (const v of await resizer.render("/stage/a.jpg", DEFAULT_VARIANTS)) {
 *     await store.put(keys.render({ ...vars, variant: v.spec.name }), v.bytes);
 *   }
 * } finally {
 *   await resizer.close();
 * }
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";
import type { VariantTransform } from "../manifest/mod.ts";
import type { VariantFormat, VariantSpec } from "./variant_spec.ts";

/** One rendered variant. */
export interface RenderedVariant {
  spec: VariantSpec;
  /** Encoded image (`format`), without metadata (EXIF orientation is already applied). */
  bytes: Uint8Array;
  width: number;
  height: number;
  /** Exact mapping from the (EXIF-oriented) source image to this variant. */
  transform: VariantTransform;
  format: VariantFormat;
  /** sha256 of `bytes`, lowercase hex. */
  sha256: string;
}

/** Renders variants. Implementations own native resources: call `close()` when done. */
export interface Resizer {
  /** "sharp" or "gpu:<device>". */
  readonly name: string;
  /**
   * Decodes `input` (a file path or the encoded bytes) once and renders every spec, in order.
   * Throws {@link ImageDecodeError} when the input is not a decodable image.
   */
  render(input: string | Uint8Array, specs: readonly VariantSpec[]): Promise<RenderedVariant[]>;
  /** Releases workers and native resources; idempotent. */
  close(): Promise<void>;
}

/** The input could not be decoded as an image. */
export class ImageDecodeError extends SluiceError {
  constructor(what: string, detail: string, options?: ErrorOptions) {
    super("decode_failed", `${what}: expected a decodable image, ${detail}`, options);
    this.name = "ImageDecodeError";
  }
}

/** Rendering or encoding failed after a successful decode. */
export class RenderError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super("render_failed", message, options);
    this.name = "RenderError";
  }
}

/** The requested resizer cannot run on this machine; `message` says why. */
export class ResizerUnavailableError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super("resizer_unavailable", message, options);
    this.name = "ResizerUnavailableError";
  }
}

/**
 * The CPU-heavy step of normalize, shared by the stage and its benchmark
 * (tests/bench/normalize.ts): refuse inputs over the size and pixel limits from the header alone
 * (no pixels decoded), then hand the bytes to the resizer, which decodes them ONCE (EXIF
 * orientation applied, JPEG shrink-on-load for the largest variant) and derives every variant
 * from that decode.
 *
 * @example
 * ```ts
 * const { resizer } = await selectResizer({ resizer: "cpu" });
 * const variants = await renderVariants(bytes, DEFAULT_VARIANTS, {
 *   resizer, limits: { maxBytes: 256 << 20, maxPixels: 100_000_000 },
 * });
 * await resizer.close();
 * ```
 * @module
 */
import { inspectImage } from "../../common/images/verify.ts";
import type { RenderedVariant, Resizer } from "../../common/images/resizer.ts";
import type { VariantSpec } from "../../common/images/variant_spec.ts";

/** Size limits checked before decoding. */
export interface RenderLimits {
  /** Largest encoded input, bytes. */
  maxBytes: number;
  /** Largest width × height (decompression-bomb guard). */
  maxPixels: number;
}

export interface RenderVariantsOptions {
  resizer: Resizer;
  limits: RenderLimits;
  /** Names the input in error messages (e.g. its dataset URI). */
  name?: string;
}

/**
 * Checks the input's header against `limits` and renders every spec from one decode.
 * Throws `ImageError` (`too_large`, `too_many_pixels`, `unsupported_format`, `corrupt_image`,
 * `empty_object`) or the resizer's `ImageDecodeError` (`decode_failed`) / `RenderError`.
 *
 * @example
 * ```ts
 * const [v320] = await renderVariants(bytes, [spec320], { resizer, limits });
 * v320.transform; // maps original pixels into the variant
 * ```
 */
export async function renderVariants(
  bytes: Uint8Array,
  specs: readonly VariantSpec[],
  opts: RenderVariantsOptions,
): Promise<RenderedVariant[]> {
  await inspectImage(bytes, opts.limits, { name: opts.name ?? "image", decode: false });
  return await opts.resizer.render(bytes, specs);
}

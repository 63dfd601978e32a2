/**
 * The CPU resizer: sharp (libvips). One decode per source image, with JPEG shrink-on-load sized for
 * the largest variant, EXIF orientation applied once, then every variant derived from that raw
 * buffer (see _sharp_render.ts). In the normalize benchmark (52 Debian wallpaper photos, 2 shared
 * cores) this ran 2.1-2.3× faster than one sharp pipeline per variant, at half its peak RSS.
 * Deriving an image's variants concurrently or one after another measured the same within noise.
 *
 * Concurrency: libvips threads per pipeline × images in flight. On 2 cores the best measured
 * arrangement is 1 libvips thread per pipeline ({@link DEFAULT_SHARP_THREADS}) with one image in
 * flight per core ({@link recommendedItemsInFlight}); more in flight only adds memory (about
 * 40 MB per extra image). Run the worker with `MALLOC_ARENA_MAX=2`: glibc's per-thread arenas
 * otherwise hold on to freed decode buffers (peak RSS about 50% higher in the benchmark).
 *
 * @example
 * ```ts
 * const resizer = new SharpResizer();
 * const variants = await resizer.render(await Deno.readFile("a.jpg"), DEFAULT_VARIANTS);
 * variants[0].transform; // exact mapping from a.jpg's (oriented) pixels to variant "320"
 * await resizer.close();
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import sharp, { type OutputInfo } from "sharp";
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import type { RenderedVariant, Resizer } from "./resizer.ts";
import { RenderError } from "./resizer.ts";
import {
  decodeForPlans,
  defaultSharpFactory,
  describeInput,
  encodeAs,
  type SharpFactory,
  type SharpInput,
  variantPipeline,
} from "./_sharp_render.ts";
import { parseVariantSpec, type VariantSpec } from "./variant_spec.ts";
import { planVariant } from "./variant_transform.ts";

export type { SharpFactory };

/** libvips threads per pipeline: 1, with parallelism coming from images in flight. */
export const DEFAULT_SHARP_THREADS = 1;

/**
 * Images to process at once with {@link DEFAULT_SHARP_THREADS}: one per core.
 *
 * @example
 * ```ts
 * const inFlight = recommendedItemsInFlight(); // 2 on a 2-core machine
 * ```
 */
export function recommendedItemsInFlight(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/** Options of {@link SharpResizer} (validated). */
export const SharpResizerOptionsSchema = z.strictObject({
  /**
   * libvips threads per pipeline, applied process-wide with `sharp.concurrency()` (sharp has no
   * per-pipeline setting). Default {@link DEFAULT_SHARP_THREADS}; null leaves sharp's as is.
   */
  threads: z.number().int().min(1).max(64).nullable().default(DEFAULT_SHARP_THREADS),
  /**
   * libvips' operation cache, process-wide. Off by default: a worker never sees the same image
   * twice, so the cache only holds memory.
   */
  cache: z.boolean().nullable().default(false),
  /**
   * sharp `fastShrinkOnLoad` for the one decode. Default true: fastest, and drawn edges were still
   * measured within 0.15 px of the transform, as with false (sharp_resizer_test checks 0.25 px).
   */
  fastShrinkOnLoad: z.boolean().default(true),
  /** Derive the variants of one image concurrently (default) or one after another. */
  parallelVariants: z.boolean().default(true),
});

export type SharpResizerOptions = z.input<typeof SharpResizerOptionsSchema> & {
  /** Test seam: builds every sharp pipeline (see `SharpFactory`). */
  sharpFactory?: SharpFactory;
};

/**
 * Renders variants with sharp; see the module documentation.
 *
 * @example
 * ```ts
 * const r = new SharpResizer({ threads: 1 });
 * const [v320, v640] = await r.render("/stage/a.jpg", DEFAULT_VARIANTS);
 * ```
 */
export class SharpResizer implements Resizer {
  readonly name = "sharp";
  readonly #factory: SharpFactory;
  readonly #fastShrinkOnLoad: boolean;
  readonly #parallel: boolean;

  constructor(options: SharpResizerOptions = {}) {
    const { sharpFactory, ...rest } = options;
    const parsed = SharpResizerOptionsSchema.safeParse(rest);
    if (!parsed.success) {
      throw new SluiceError(
        "invalid_options",
        `sharp resizer options: ${
          parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
        }`,
      );
    }
    const o = parsed.data;
    if (o.threads !== null) sharp.concurrency(o.threads);
    if (o.cache !== null) sharp.cache(o.cache);
    this.#factory = sharpFactory ?? defaultSharpFactory;
    this.#fastShrinkOnLoad = o.fastShrinkOnLoad;
    this.#parallel = o.parallelVariants;
  }

  async render(input: SharpInput, specs: readonly VariantSpec[]): Promise<RenderedVariant[]> {
    const checked = specs.map((s) => parseVariantSpec(s));
    if (checked.length === 0) return [];
    const { decoded, transforms } = await decodeForPlans(
      input,
      (w, h) => checked.map((s) => planVariant(w, h, s)),
      { factory: this.#factory, fastShrinkOnLoad: this.#fastShrinkOnLoad },
    );
    const one = async (i: number): Promise<RenderedVariant> => {
      const spec = checked[i], t = transforms[i];
      let bytes: Uint8Array;
      let info: OutputInfo;
      try {
        const p = encodeAs(await variantPipeline(decoded, t, spec.background, this.#factory), spec);
        ({ data: bytes, info } = await p.toBuffer({ resolveWithObject: true }));
      } catch (err) {
        throw new RenderError(
          `variant "${spec.name}" of ${describeInput(input)}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (info.width !== t.width || info.height !== t.height) {
        throw new RenderError(
          `variant "${spec.name}" of ${describeInput(input)}: expected ${t.width}×${t.height}, ` +
            `found ${info.width}×${info.height}`,
        );
      }
      return {
        spec,
        bytes,
        width: t.width,
        height: t.height,
        transform: t,
        format: spec.format,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      };
    };
    if (this.#parallel) return await Promise.all(checked.map((_, i) => one(i)));
    const out: RenderedVariant[] = [];
    for (let i = 0; i < checked.length; i++) out.push(await one(i));
    return out;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Fused ingest (`ingest.renderVariants`): one strict decode both verifies an image and renders
 * normalize's variants of it, so that normalize finds every variant of the current spec versions
 * already recorded and decodes nothing (issue 15).
 *
 * The render is normalize's own (`renderVariants` with the sharp resizer, normalize's settings,
 * keys and rows via `write_variants.ts`), so the variants are byte-identical to what normalize
 * writes. Its ONE decode runs at `failOn: "warning"` with the decoder's warnings collected, like
 * the first decode of `verify.ts`: a render that finishes with no error and no warning has
 * entropy-decoded the whole stream cleanly, and the image is accepted (no decode warning). A
 * render during which some other pipeline was told of a warning is not known clean (sharp
 * delivers warnings to whichever pipeline finishes next): inspectImage decides, and the variants
 * are kept when it finds the image clean. Any error or warning, and any input whose published
 * bytes are not the same pixel data (EXIF orientation other than 1, a TIFF rewritten to strip
 * metadata), is decided by `inspectImage` exactly as without fusion (the verdicts and reason codes
 * are the same); an accepted one's variants are then rendered from the bytes ingest publishes, by
 * normalize's own render of them (one more decode in ingest, the one normalize would have made), so
 * normalize finds them recorded too. Phone photos, most of them EXIF-rotated, are fused this way.
 *
 * @example
 * ```ts
 * const fused = new FusedRender(manifest, normalizeSettings);
 * const r = await fused.verifyAndRender(original, { name: key, limits, failOn: "error" });
 * if (r.rendered) effects.variants = await fused.write(store, image.id, sha256, r.rendered);
 * await fused.close();
 * ```
 * @module
 */
import sharp, { type SharpOptions } from "sharp";
import {
  type ImageInfo,
  type ImageLimits,
  inspectImage,
  normalizeOrientation,
} from "../../common/images/verify.ts";
import type { SharpInput } from "../../common/images/_sharp_render.ts";
import { decodeQuietly } from "../../common/images/decoder_warnings.ts";
import type { RenderedVariant } from "../../common/images/resizer.ts";
import { SharpResizer } from "../../common/images/sharp_resizer.ts";
import type { ManifestStore, VariantInput } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { NormalizeSettings } from "../normalize/config.ts";
import { renderVariants } from "../normalize/render_variants.ts";
import { type RegisteredSpec, registerVariantSpecs } from "../normalize/spec_registry.ts";
import { compileNormalizeKeyTemplate } from "../normalize/variant_keys.ts";
import { planVariants, writeVariants } from "../normalize/write_variants.ts";

/** The parts of normalize's settings a fused render needs. */
export type FusedRenderSettings = Pick<
  NormalizeSettings,
  "variants" | "keyTemplate" | "prefix" | "maxBytes" | "maxPixels" | "sharpThreads"
>;

/** What {@link FusedRender.verifyAndRender} found. */
export interface FusedResult {
  /** As `inspectImage` returns it. */
  info: ImageInfo;
  /** The bytes to publish (EXIF orientation applied, personal metadata stripped). */
  upright: Uint8Array;
  /** The variants, in spec order; null when ingest could not render them (left to normalize). */
  rendered: RenderedVariant[] | null;
}

/** Verifies and renders in one decode; see the module documentation. */
export class FusedRender {
  readonly #manifest: Pick<ManifestStore, "registerVariantSpec" | "listVariantSpecs">;
  readonly #settings: FusedRenderSettings;
  readonly #keys;
  readonly #resizer: SharpResizer;
  /** Warnings heard per source being rendered (the bytes object identifies the decode). */
  readonly #watched = new WeakMap<Uint8Array, string[]>();
  #specs: Promise<RegisteredSpec[]> | null = null;

  constructor(
    manifest: Pick<ManifestStore, "registerVariantSpec" | "listVariantSpecs">,
    settings: FusedRenderSettings,
  ) {
    this.#manifest = manifest;
    this.#settings = settings;
    this.#keys = compileNormalizeKeyTemplate(settings.keyTemplate);
    const watched = this.#watched;
    this.#resizer = new SharpResizer({
      threads: settings.sharpThreads,
      cache: false,
      // Only the source decode is made strict and listened to; the variant pipelines (raw
      // input) are built exactly as normalize builds them.
      sharpFactory: (input: SharpInput, options?: SharpOptions) => {
        const notes = typeof input === "string" ? undefined : watched.get(input);
        if (!notes) return sharp(input, options);
        return sharp(input, { ...options, failOn: "warning" })
          .on("warning", (w: string) => notes.push(w));
      },
    });
  }

  /** The current spec versions (registered once, as normalize registers them). */
  specs(): Promise<RegisteredSpec[]> {
    this.#specs ??= registerVariantSpecs(this.#manifest, this.#settings.variants);
    this.#specs.catch(() => this.#specs = null);
    return this.#specs;
  }

  /**
   * Verifies `original` as `inspectImage(original, limits, { name, failOn })` would (same
   * verdict, same `ImageError` codes) and, when the render's strict decode was clean, returns the
   * variants it rendered from the same decode.
   */
  async verifyAndRender(
    original: Uint8Array,
    o: {
      name: string;
      limits: ImageLimits;
      failOn: "truncated" | "error" | "warning";
      keepMetadata: boolean;
    },
  ): Promise<FusedResult> {
    // Header checks (size, magic bytes, format, dimensions, pixel limit): the same errors.
    const header = await inspectImage(original, o.limits, { name: o.name, decode: false });
    const orient = { keepMetadata: o.keepMetadata, maxPixels: o.limits.maxPixels };
    if (header.orientation === 1) {
      // Orientation 1: no decode; the same bytes back, or (JPEG, PNG, WebP) the same bytes with
      // the personal metadata segments cut out losslessly: the same entropy-coded data and ICC
      // profile, so rendering the original gives the pixels normalize gets from the published
      // bytes (variants carry no metadata), and the strict decode is of the original itself.
      const upright = await normalizeOrientation(original, orient).catch(() => null);
      if (upright === original || (upright !== null && header.format !== "tiff")) {
        const render = await this.#renderStrict(original, o.name);
        if (render?.clean) return { info: header, upright, rendered: render.rendered };
        if (render) {
          // Rendered without error, but a warning was delivered somewhere meanwhile: maybe this
          // image's, maybe a neighbour's (decoder_warnings.ts). The verdict is inspectImage's, and
          // the variants are kept when it finds the image clean (the same bytes, the same pixels).
          const info = await inspectImage(original, o.limits, { name: o.name, failOn: o.failOn });
          const rendered = info.decodeWarning === null
            ? render.rendered
            : await this.#renderPublished(upright, o.name);
          return { info, upright, rendered };
        }
      }
    }
    const info = await inspectImage(original, o.limits, { name: o.name, failOn: o.failOn });
    const upright = await normalizeOrientation(original, orient);
    return { info, upright, rendered: await this.#renderPublished(upright, o.name) };
  }

  /** Normalize's render of `bytes` with the current specs (normalize's settings and resizer). */
  async #render(bytes: Uint8Array, name: string): Promise<RenderedVariant[]> {
    const specs = await this.specs();
    return await renderVariants(bytes, specs.map((s) => s.spec), {
      resizer: this.#resizer,
      limits: { maxBytes: this.#settings.maxBytes, maxPixels: this.#settings.maxPixels },
      name,
    });
  }

  /**
   * The variants rendered from the bytes ingest publishes, exactly as normalize renders them
   * (its decode, its `failOn`): for an image whose verifying decode could not give them (EXIF
   * orientation other than 1, a rewritten TIFF, a decode that warned). Null when that render
   * fails: normalize then tries, and reports, as without fusion.
   */
  #renderPublished(published: Uint8Array, name: string): Promise<RenderedVariant[] | null> {
    return this.#render(published, name).catch(() => null);
  }

  /**
   * The variants of the strict render, and whether it was known clean (no warning heard by any
   * pipeline while it ran); null when it failed.
   */
  async #renderStrict(
    bytes: Uint8Array,
    name: string,
  ): Promise<{ rendered: RenderedVariant[]; clean: boolean } | null> {
    await this.specs(); // registered before the decode's window opens
    const notes: string[] = [];
    this.#watched.set(bytes, notes);
    try {
      const { value, quiet } = await decodeQuietly(() => this.#render(bytes, name));
      return { rendered: value, clean: quiet && notes.length === 0 };
    } catch {
      return null;
    } finally {
      this.#watched.delete(bytes);
    }
  }

  /**
   * Uploads the variants of the image published with content hash `sha256` (skipping objects a
   * previous attempt already put at their keys) and returns the rows to record with it.
   */
  async write(
    store: ObjectStore,
    imageId: string,
    sha256: string,
    rendered: readonly RenderedVariant[],
  ): Promise<{ rows: VariantInput[]; written: number }> {
    const planned = planVariants(await this.specs(), {
      keys: this.#keys,
      prefix: this.#settings.prefix,
    }, sha256);
    return await writeVariants(store, imageId, sha256, planned, rendered, { skipPresent: true });
  }

  /** Releases the resizer. */
  async close(): Promise<void> {
    await this.#resizer.close();
  }
}

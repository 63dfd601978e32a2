/**
 * Where normalize puts variants and what it records for them, shared by the normalize stage
 * (`normalize_image.ts`) and ingest's fused render (`stages/ingest/fused_render.ts`), so that a
 * variant written by either has the same key, object metadata and manifest row.
 *
 * @example
 * ```ts
 * const planned = planVariants(specs, { keys, prefix: "variants" }, image.sha256);
 * const rows = await writeVariants(store, image.id, image.sha256, planned, rendered);
 * await manifest.complete(claim, { variants: rows });
 * ```
 * @module
 */
import type { VariantInput } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { RenderedVariant } from "../../common/images/resizer.ts";
import type { KeyTemplate } from "../../common/images/variant_spec.ts";
import type { RegisteredSpec } from "./spec_registry.ts";
import { variantKey } from "./variant_keys.ts";

/** Content types of variant objects. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  jpeg: "image/jpeg",
  webp: "image/webp",
  png: "image/png",
  avif: "image/avif",
};

/** A registered spec with the object key its variant of one source gets. */
export type PlannedVariant = RegisteredSpec & { key: string };

/**
 * The key of every spec's variant of the source with content hash `sha256`.
 *
 * @example
 * ```ts
 * planVariants(specs, { keys, prefix: "variants" }, sha256)[0].key; // "variants/320/…/ab…jpg"
 * ```
 */
export function planVariants(
  specs: readonly RegisteredSpec[],
  o: { keys: KeyTemplate; prefix: string },
  sha256: string,
): PlannedVariant[] {
  return specs.map((s) => ({ ...s, key: variantKey(o.keys, { prefix: o.prefix, ...s, sha256 }) }));
}

export interface WriteVariantsOptions {
  /**
   * Leave an object alone when one of the same size and recorded sha256 is already at its key
   * (a retried item whose earlier attempt uploaded before it was recorded). Default false.
   */
  skipPresent?: boolean;
}

/**
 * Uploads `rendered[i]` to `planned[i].key` (concurrently, straight from memory; the store's put
 * is atomic) and returns the manifest rows to record, after every upload finished.
 *
 * @example
 * ```ts
 * const rows = await writeVariants(store, "img_1", sha256, planned, rendered);
 * rows[0].uri === planned[0].key; // true
 * ```
 */
export async function writeVariants(
  store: ObjectStore,
  imageId: string,
  sourceSha256: string,
  planned: readonly PlannedVariant[],
  rendered: readonly RenderedVariant[],
  opts: WriteVariantsOptions = {},
): Promise<{ rows: VariantInput[]; written: number; reusedBytes: number }> {
  let written = 0, reusedBytes = 0;
  const rows = await Promise.all(rendered.map(async (v, i): Promise<VariantInput> => {
    const p = planned[i];
    const there = opts.skipPresent ? await store.head(p.key) : null;
    if (there?.size === v.bytes.byteLength && there.metadata?.sha256 === v.sha256) {
      reusedBytes += v.bytes.byteLength;
    } else {
      await store.put(p.key, v.bytes, {
        contentType: CONTENT_TYPES[v.format],
        metadata: { "sha256": v.sha256, "source-sha256": sourceSha256, "spec-hash": p.specHash },
      });
      written++;
    }
    return {
      imageId,
      name: p.spec.name,
      specHash: p.specHash,
      version: p.version,
      uri: p.key,
      width: v.width,
      height: v.height,
      bytes: v.bytes.byteLength,
      sha256: v.sha256,
      format: v.format,
      transform: v.transform,
    };
  }));
  return { rows, written, reusedBytes };
}

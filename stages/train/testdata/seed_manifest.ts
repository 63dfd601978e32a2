/**
 * Test data for the train stage: synthetic images (tests/support/synthetic) recorded in a real manifest
 * the way ingest and normalize record them: source object → ingest claim → dataset object
 * (content-addressed) + annotations (original pixels) + a variant rendered by the real
 * `SharpResizer` with its planned transform, completed in one transaction per image.
 *
 * @example
 * ```ts
 * const seeded = await seedTrainingData(manifest, store, { count: 40, seed: 1, variant: { name: "128", width: 128, height: 128, mode: "letterbox" } });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import type { AnnotationInput, ManifestStore, VariantInput } from "../../../common/manifest/mod.ts";
import { imageIdFor } from "../../../common/manifest/mod.ts";
import type { ObjectStore } from "../../../common/objectstore/mod.ts";
import { generateDataset, type SyntheticImage } from "../../../tests/support/synthetic/dataset.ts";
import { SharpResizer } from "../../../common/images/sharp_resizer.ts";
import {
  parseVariantSpec,
  specHash,
  VARIANT_EXTENSIONS,
  type VariantSpecInput,
} from "../../../common/images/variant_spec.ts";

export interface SeedOptions {
  count: number;
  seed: number;
  variant: VariantSpecInput;
  /** Original sizes (default: the generator's mix of aspects). */
  sizes?: [number, number][];
  /** Indices of images recorded without annotations. */
  unannotated?: number[];
  /** Indices of images recorded without the variant. */
  withoutVariant?: number[];
  /** Source URI prefix (default `s3://raw/`). */
  sourcePrefix?: string;
}

export interface SeededImage {
  imageId: string;
  fileName: string;
  source: SyntheticImage;
  annotated: boolean;
  hasVariant: boolean;
  variantKey: string | null;
}

export interface SeededData {
  images: SeededImage[];
  labels: string[];
  specHash: string;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Records `opts.count` synthetic images in `manifest` and `store` (see the module docs). */
export async function seedTrainingData(
  manifest: ManifestStore,
  store: ObjectStore,
  opts: SeedOptions,
): Promise<SeededData> {
  const ds = await generateDataset({ count: opts.count, seed: opts.seed, sizes: opts.sizes });
  await manifest.ensureLabels(ds.labels);
  const spec = parseVariantSpec(opts.variant);
  const hash = specHash(spec);
  const { version } = await manifest.registerVariantSpec(spec.name, hash, spec);
  const prefix = opts.sourcePrefix ?? "s3://raw/";
  const byId = new Map<string, { img: SyntheticImage; index: number }>();
  for (const [index, img] of ds.images.entries()) {
    const sourceUri = prefix + img.fileName;
    await manifest.upsertSourceObject({
      sourceUri,
      sourceKey: img.fileName,
      etag: sha256Hex(img.bytes).slice(0, 32),
      size: img.bytes.byteLength,
    });
    byId.set(await imageIdFor(sourceUri), { img, index });
  }
  const claims = await manifest.claim("ingest", {
    max: opts.count,
    leaseMs: 600_000,
    owner: "seed-fixture",
  });
  const resizer = new SharpResizer();
  const out: SeededImage[] = [];
  try {
    for (const claim of claims) {
      const entry = byId.get(claim.itemId);
      if (!entry) continue;
      const { img, index } = entry;
      const sha = sha256Hex(img.bytes);
      const ext = img.format === "png" ? "png" : "jpg";
      const datasetKey = `images/${sha.slice(0, 2)}/${sha}.${ext}`;
      await store.put(datasetKey, img.bytes, { contentType: `image/${img.format}` });
      const annotated = !(opts.unannotated ?? []).includes(index);
      const hasVariant = !(opts.withoutVariant ?? []).includes(index);
      const variants: VariantInput[] = [];
      let variantKey: string | null = null;
      if (hasVariant) {
        const [v] = await resizer.render(img.bytes, [spec]);
        variantKey = `variants/${spec.name}/${hash}/${sha.slice(0, 2)}/${sha}.${
          VARIANT_EXTENSIONS[v.format]
        }`;
        await store.put(variantKey, v.bytes, { contentType: `image/${v.format}` });
        variants.push({
          imageId: claim.itemId,
          name: spec.name,
          specHash: hash,
          version,
          uri: store.uriFor(variantKey),
          width: v.width,
          height: v.height,
          bytes: v.bytes.byteLength,
          sha256: v.sha256,
          format: v.format,
          transform: v.transform,
        });
      }
      const items: AnnotationInput[] = img.boxes.map((b, i) => ({
        label: b.label,
        bbox: b.bbox,
        sourceRef: `synthetic:${index}:${i}`,
      }));
      await manifest.complete(claim, {
        image: {
          status: "ingested",
          sha256: sha,
          size: img.bytes.byteLength,
          width: img.width,
          height: img.height,
          format: img.format,
          datasetUri: store.uriFor(datasetKey),
        },
        annotations: annotated ? [{ imageId: claim.itemId, source: "coco", items }] : [],
        variants,
      });
      out.push({
        imageId: claim.itemId,
        fileName: img.fileName,
        source: img,
        annotated,
        hasVariant,
        variantKey,
      });
    }
  } finally {
    await resizer.close();
  }
  out.sort((a, b) => (a.imageId < b.imageId ? -1 : 1));
  return { images: out, labels: ds.labels, specHash: hash };
}

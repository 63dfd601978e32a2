/**
 * The dataset snapshot a training run uses: every ingested, non-duplicate image that has
 * annotations and a variant of the chosen name, with its boxes mapped into that variant's pixels
 * through the variant's stored transform, split train/val by a hash of the image id. An image
 * with no boxes that someone labelled as empty is in it too, as a negative: one whose newest
 * active review kept no box (a reviewer confirmed there is nothing to label), or one an imported
 * annotation set lists with no objects (a COCO image without annotations, an empty YOLO label
 * file, a Label Studio task completed empty, a VOC file without objects; `reviewed_empty.ts`).
 * Without them, that labelling work never reached training. The id is derived from the content
 * (images, variant objects, boxes, split), so the same data gives the same snapshot, recorded
 * once with `manifest.createSnapshot`.
 *
 * @example
 * ```ts
 * const snap = await selectSnapshot(manifest, store, { variant: "320", valFraction: 0.2 });
 * await recordSnapshot(manifest, snap);
 * console.log(snap.id, snap.images.length, snap.excluded.length);
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { SluiceError } from "../../common/errors/mod.ts";
import type {
  AnnotationInput,
  AnnotationRow,
  ImageRow,
  ManifestStore,
  SnapshotRow,
  VariantRow,
} from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { annotationsToVariant } from "../../common/images/variant_transform.ts";
import {
  ALL_ANNOTATION_SOURCES,
  readReviewedEmpty,
} from "../../common/annotations/reviewed_empty.ts";
import { canonicalJson } from "../../common/images/variant_spec.ts";
import { type Split, splitImages } from "./split.ts";
import { keyOfUri } from "./store_key.ts";

/**
 * Of `imageIds` (images without annotation rows), those labelled as empty: the newest active
 * review kept no box, or an import recorded the image as reviewed-empty.
 */
async function reviewedEmpty(
  manifest: Pick<ManifestStore, "listReviews" | "getCheckpoint">,
  imageIds: readonly string[],
): Promise<Set<string>> {
  const imported = await readReviewedEmpty(manifest, ALL_ANNOTATION_SOURCES);
  const out = new Set(imageIds.filter((id) => imported.has(id)));
  for (let i = 0; i < imageIds.length; i += PAGE) {
    const newestBoxes = new Map<string, number>();
    // Ordered by reviewed_at: the last row of an image is its newest review.
    for (const r of await manifest.listReviews({ imageIds: imageIds.slice(i, i + PAGE) })) {
      newestBoxes.set(r.imageId, r.boxes.length);
    }
    for (const [id, n] of newestBoxes) if (n === 0) out.add(id);
  }
  return out;
}

/** Version of the selection and split rules, part of every snapshot id. */
// 2: images reviewed as empty are negatives (1 left them out as unannotated).
// 3: images an import recorded as labelled-empty are negatives too.
export const SNAPSHOT_RULES = "sluice-snapshot/3";

/** Annotations read per manifest query. */
const PAGE = 500;

/** One image of a snapshot. */
export interface SnapshotImage {
  imageId: string;
  split: Split;
  /** The variant row trained on (the highest version of the chosen name). */
  variant: VariantRow;
  /** The variant object's key in the dataset store. */
  key: string;
  /** Boxes in variant pixels. */
  annotations: AnnotationInput[];
  /** Annotations the variant cut away (cover crops) and which were left out. */
  dropped: number;
}

/** Why an ingested image is not in the snapshot. */
export type ExclusionReason = "no_annotations" | "no_variant" | "variant_outside_store";

/** A selected snapshot, before or after it is recorded. */
export interface Snapshot {
  id: string;
  variant: string;
  valFraction: number;
  /** In image id order. */
  images: SnapshotImage[];
  /** Label → category id (the manifest's label ids), labels used in the snapshot only. */
  labels: Map<string, number>;
  /** The model's input side: the configured one, or the variants' larger side rounded up to 32. */
  inputSize: number;
  excluded: { imageId: string; reason: ExclusionReason }[];
  /** What `createSnapshot` stores as the spec. */
  spec: SnapshotSpec;
}

/** The spec recorded with the snapshot (enough to rebuild and check it). */
export interface SnapshotSpec {
  rules: string;
  variant: string;
  valFraction: number;
  inputSize: number;
  /** Variant spec hashes used, sorted. */
  variantSpecs: string[];
  labels: { id: number; name: string }[];
  counts: { train: number; val: number; annotations: number; droppedByVariant: number };
  /** sha256 of the canonical JSON of every image's boxes (the snapshot id covers them too). */
  annotationsSha256: string;
}

/** What to select. */
export interface SnapshotOptions {
  variant: string;
  valFraction: number;
  /** Fixed input side; default from the variants. */
  inputSize?: number;
  /** Boxes less visible than this after a cover crop are left out (default 0.3). */
  minVisible?: number;
}

async function allIngested(manifest: ManifestStore): Promise<ImageRow[]> {
  const out: ImageRow[] = [];
  let afterId: string | undefined;
  for (;;) {
    const page = await manifest.listImages({ status: "ingested", afterId, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    afterId = page[page.length - 1].id;
  }
}

function newestVariants(rows: readonly VariantRow[]): Map<string, VariantRow> {
  const best = new Map<string, VariantRow>();
  for (const v of rows) {
    const cur = best.get(v.imageId);
    if (!cur || v.version > cur.version) best.set(v.imageId, v);
  }
  return best;
}

/** The same box imported from two sources (say Label Studio and COCO) counts once. */
function dedupe(rows: readonly AnnotationRow[]): AnnotationInput[] {
  const seen = new Set<string>();
  const out: AnnotationInput[] = [];
  const sorted = [...rows].sort((a, b) => a.id - b.id);
  for (const r of sorted) {
    const k = JSON.stringify([r.label, r.bbox]);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({
      label: r.label,
      bbox: [r.bbox[0], r.bbox[1], r.bbox[2], r.bbox[3]],
      polygon: r.polygon ?? null,
      rotation: r.rotation ?? null,
    });
  }
  return out;
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** The input side for a set of variants: the larger side, rounded up to a multiple of 32. */
export function inputSizeFor(variants: readonly { width: number; height: number }[]): number {
  const side = Math.max(64, ...variants.map((v) => Math.max(v.width, v.height)));
  return Math.ceil(side / 32) * 32;
}

/**
 * Selects the snapshot from the manifest (reads only). Throws `empty_dataset` when no image
 * qualifies.
 *
 * @example
 * ```ts
 * const snap = await selectSnapshot(manifest, store, { variant: "320", valFraction: 0.2 });
 * ```
 */
export async function selectSnapshot(
  manifest: ManifestStore,
  store: Pick<ObjectStore, "uriFor">,
  opts: SnapshotOptions,
): Promise<Snapshot> {
  const images = (await allIngested(manifest)).filter((i) => i.duplicateOf === null);
  const variants = newestVariants(await manifest.listVariants({ name: opts.variant }));
  const excluded: Snapshot["excluded"] = [];
  const withVariant: { image: ImageRow; variant: VariantRow; key: string }[] = [];
  for (const image of images) {
    const variant = variants.get(image.id);
    if (!variant) {
      excluded.push({ imageId: image.id, reason: "no_variant" });
      continue;
    }
    const key = keyOfUri(store, variant.uri);
    if (key === null) {
      excluded.push({ imageId: image.id, reason: "variant_outside_store" });
      continue;
    }
    withVariant.push({ image, variant, key });
  }
  const annotations = new Map<string, AnnotationRow[]>();
  for (let i = 0; i < withVariant.length; i += PAGE) {
    const ids = withVariant.slice(i, i + PAGE).map((x) => x.image.id);
    for (const a of await manifest.listAnnotations(ids)) {
      const list = annotations.get(a.imageId) ?? [];
      list.push(a);
      annotations.set(a.imageId, list);
    }
  }
  const negatives = await reviewedEmpty(
    manifest,
    withVariant.map((x) => x.image.id).filter((id) => !annotations.has(id)),
  );
  const chosen: Omit<SnapshotImage, "split">[] = [];
  for (const { image, variant, key } of withVariant) {
    const rows = annotations.get(image.id) ?? [];
    if (rows.length === 0) {
      if (negatives.has(image.id)) {
        chosen.push({ imageId: image.id, variant, key, annotations: [], dropped: 0 });
      } else excluded.push({ imageId: image.id, reason: "no_annotations" });
      continue;
    }
    const source = dedupe(rows);
    const { kept, dropped } = annotationsToVariant(variant.transform, source, {
      minVisible: opts.minVisible,
    });
    chosen.push({ imageId: image.id, variant, key, annotations: kept, dropped: dropped.length });
  }
  if (chosen.length === 0) {
    const why = Object.entries(
      excluded.reduce<Record<string, number>>((acc, e) => {
        acc[e.reason] = (acc[e.reason] ?? 0) + 1;
        return acc;
      }, {}),
    ).map(([r, n]) => `${n} ${r}`).join(", ");
    throw new SluiceError(
      "empty_dataset",
      `snapshot for variant "${opts.variant}": expected ingested, non-duplicate images with ` +
        `annotations and that variant, found none (${images.length} ingested` +
        `${why ? `; excluded: ${why}` : ""})`,
    );
  }
  chosen.sort((a, b) => (a.imageId < b.imageId ? -1 : a.imageId > b.imageId ? 1 : 0));
  excluded.sort((a, b) => (a.imageId < b.imageId ? -1 : a.imageId > b.imageId ? 1 : 0));
  const { val } = splitImages(chosen.map((c) => c.imageId), opts.valFraction);
  const valSet = new Set(val);
  const snapImages: SnapshotImage[] = chosen.map((c) => ({
    ...c,
    split: valSet.has(c.imageId) ? "val" : "train",
  }));

  const used = new Set(snapImages.flatMap((i) => i.annotations.map((a) => a.label)));
  const known = new Map((await manifest.listLabels()).map((l) => [l.name, l.id]));
  const labels = new Map<string, number>();
  let next = Math.max(0, ...known.values()) + 1;
  for (const name of [...used].sort()) labels.set(name, known.get(name) ?? next++);
  const sortedLabels = [...labels].map(([name, id]) => ({ id, name })).sort((a, b) => a.id - b.id);
  const inputSize = opts.inputSize ?? inputSizeFor(snapImages.map((i) => i.variant));

  const boxes = snapImages.map((i) => [i.imageId, i.annotations.map((a) => [a.label, a.bbox])]);
  const annotationsSha256 = sha256Hex(canonicalJson(boxes));
  const spec: SnapshotSpec = {
    rules: SNAPSHOT_RULES,
    variant: opts.variant,
    valFraction: opts.valFraction,
    inputSize,
    variantSpecs: [...new Set(snapImages.map((i) => i.variant.specHash))].sort(),
    labels: sortedLabels,
    counts: {
      train: snapImages.length - valSet.size,
      val: valSet.size,
      annotations: snapImages.reduce((n, i) => n + i.annotations.length, 0),
      droppedByVariant: snapImages.reduce((n, i) => n + i.dropped, 0),
    },
    annotationsSha256,
  };
  const identity = canonicalJson({
    spec,
    items: snapImages.map((i) => [i.imageId, i.split, i.variant.sha256, i.variant.specHash]),
  });
  return {
    id: "snap-" + sha256Hex(identity).slice(0, 20),
    variant: opts.variant,
    valFraction: opts.valFraction,
    images: snapImages,
    labels,
    inputSize,
    excluded,
    spec,
  };
}

/**
 * Records the snapshot (idempotent: the same id with the same items is accepted again).
 *
 * @example
 * ```ts
 * const row = await recordSnapshot(manifest, snap);
 * row.createdAt; // when it was first recorded
 * ```
 */
export async function recordSnapshot(
  manifest: Pick<ManifestStore, "createSnapshot">,
  snapshot: Snapshot,
): Promise<SnapshotRow> {
  return await manifest.createSnapshot(
    snapshot.id,
    snapshot.spec,
    snapshot.images.map((i) => ({ imageId: i.imageId, split: i.split })),
  );
}

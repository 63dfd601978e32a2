/**
 * What an export writes, gathered from one of two places:
 *
 * - the manifest (`manifestExportSet`): every ingested image with its annotations (per image, the
 *   source written most recently, or the one asked for), reviewed-empty images as `[]`, images
 *   nobody labelled without an entry;
 * - a recorded training snapshot (`snapshotExportSet`): exactly the images, train/val split and
 *   boxes (in variant pixels) that `stages/train` trains on, selected again with the snapshot's
 *   recorded rules and checked against its id, so an export cannot silently differ from what was
 *   trained.
 *
 * @example
 * ```ts
 * const set = await snapshotExportSet(manifest, datasetStore, "snap-0123");
 * set.images.filter((i) => i.split === "val").length;
 * ```
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import type {
  AnnotationInput,
  AnnotationRow,
  ImageRow,
  ManifestStore,
} from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { selectSnapshot } from "../train/snapshot.ts";
import {
  ALL_ANNOTATION_SOURCES,
  readReviewedEmpty,
} from "../../common/annotations/reviewed_empty.ts";

/** One image of an export. */
export interface ExportSetImage {
  /** Sluice image id. */
  id: string;
  /** A file name for directory formats (the source key's last segment, or the variant's). */
  fileName: string;
  /** The name COCO's `file_name` carries (the source key). */
  cocoFileName: string;
  width: number;
  height: number;
  split?: "train" | "val";
  /** The object's URI (source object, dataset copy or variant). */
  uri: string;
  /** Its other URI: the dataset copy for a source object (or null). */
  datasetUri: string | null;
  /** Which store holds `uri`. */
  store: "source" | "dataset";
}

/** The images and annotations to export. */
export interface ExportSet {
  images: ExportSetImage[];
  /** An entry per labelled image; `[]` means reviewed, no objects. */
  byImage: Map<string, AnnotationInput[]>;
  /** Label → manifest label id (ids are stable across exports). */
  labels: Map<string, number>;
  annotations: number;
  /** Set for snapshot exports. */
  snapshotId?: string;
}

const CHUNK = 500;

async function ingestedImages(manifest: ManifestStore): Promise<ImageRow[]> {
  const out: ImageRow[] = [];
  let afterId: string | undefined;
  for (;;) {
    const page = await manifest.listImages({
      status: "ingested",
      limit: 1000,
      ...(afterId ? { afterId } : {}),
    });
    out.push(...page);
    if (page.length < 1000) break;
    afterId = page[page.length - 1].id;
  }
  return out;
}

function toInput(a: AnnotationRow): AnnotationInput {
  return {
    label: a.label,
    bbox: a.bbox,
    ...(a.polygon ? { polygon: a.polygon } : {}),
    ...(a.rotation ? { rotation: a.rotation } : {}),
    ...(a.score !== undefined && a.score !== null ? { score: a.score } : {}),
    ...(a.sourceRef ? { sourceRef: a.sourceRef } : {}),
  };
}

/** Picks one source's annotations per image. */
function pick(rows: AnnotationRow[], source: string | undefined): AnnotationRow[] {
  if (source !== undefined) return rows.filter((r) => r.source === source);
  const newest = new Map<string, number>();
  for (const r of rows) newest.set(r.source, Math.max(newest.get(r.source) ?? 0, r.createdAt));
  let best: string | undefined;
  for (const [s, t] of newest) {
    if (best === undefined || t > newest.get(best)! || (t === newest.get(best) && s < best)) {
      best = s;
    }
  }
  return rows.filter((r) => r.source === best).sort((a, b) => a.id - b.id);
}

const baseName = (key: string) => key.split("/").filter(Boolean).pop() ?? key;

/**
 * The ingested images and their annotations.
 *
 * @example
 * ```ts
 * const set = await manifestExportSet(manifest, { source: "labelstudio" });
 * ```
 */
export async function manifestExportSet(
  manifest: ManifestStore,
  opts: { source?: string; imageUrl?: "source" | "dataset" } = {},
): Promise<ExportSet> {
  const images = (await ingestedImages(manifest)).filter((i) => i.width && i.height);
  const byImage = new Map<string, AnnotationInput[]>();
  const empty = await readReviewedEmpty(
    manifest,
    opts.source !== undefined ? [opts.source] : ALL_ANNOTATION_SOURCES,
  );
  let count = 0;
  for (let i = 0; i < images.length; i += CHUNK) {
    const ids = images.slice(i, i + CHUNK).map((img) => img.id);
    const rows = await manifest.listAnnotations(ids);
    const grouped = new Map<string, AnnotationRow[]>();
    for (const r of rows) grouped.set(r.imageId, [...grouped.get(r.imageId) ?? [], r]);
    for (const id of ids) {
      const chosen = pick(grouped.get(id) ?? [], opts.source).map(toInput);
      if (chosen.length > 0) {
        byImage.set(id, chosen);
        count += chosen.length;
      } else if (empty.has(id)) byImage.set(id, []);
    }
  }
  const useDataset = opts.imageUrl === "dataset";
  return {
    images: images.map((img) => ({
      id: img.id,
      fileName: baseName(img.sourceKey),
      cocoFileName: img.sourceKey,
      width: img.width!,
      height: img.height!,
      uri: useDataset && img.datasetUri ? img.datasetUri : img.sourceUri,
      datasetUri: img.datasetUri,
      store: useDataset && img.datasetUri ? "dataset" : "source",
    })),
    byImage,
    labels: new Map((await manifest.listLabels()).map((l) => [l.name, l.id])),
    annotations: count,
  };
}

const SpecSchema = z.looseObject({
  variant: z.string(),
  valFraction: z.number(),
  inputSize: z.number().int().optional(),
});

/**
 * A recorded snapshot's images (variant objects in the dataset store), split and boxes. Throws a
 * SluiceError `unknown_snapshot` when the id is not recorded and `snapshot_changed` when the
 * data no longer gives the same snapshot (annotations or variants changed since).
 *
 * @example
 * ```ts
 * const set = await snapshotExportSet(manifest, store, row.id);
 * ```
 */
export async function snapshotExportSet(
  manifest: ManifestStore,
  store: Pick<ObjectStore, "uriFor">,
  snapshotId: string,
): Promise<ExportSet> {
  const row = await manifest.getSnapshot(snapshotId);
  if (!row) {
    throw new SluiceError(
      "unknown_snapshot",
      `snapshot ${snapshotId}: expected a recorded snapshot id (sluice-train records them), found none`,
    );
  }
  const spec = SpecSchema.safeParse(row.spec);
  if (!spec.success) {
    throw new SluiceError(
      "unknown_snapshot",
      `snapshot ${snapshotId}: expected a spec with variant and valFraction, found ${
        JSON.stringify(row.spec).slice(0, 200)
      }`,
    );
  }
  const snap = await selectSnapshot(manifest, store, {
    variant: spec.data.variant,
    valFraction: spec.data.valFraction,
    ...(spec.data.inputSize ? { inputSize: spec.data.inputSize } : {}),
  });
  if (snap.id !== snapshotId) {
    throw new SluiceError(
      "snapshot_changed",
      `snapshot ${snapshotId}: the manifest now gives ${snap.id} for variant "${spec.data.variant}" ` +
        "(annotations or variants changed since it was recorded); export that one or restore the data",
    );
  }
  const split = new Map(row.items.map((i) => [i.imageId, i.split]));
  const byImage = new Map<string, AnnotationInput[]>();
  let count = 0;
  for (const img of snap.images) {
    byImage.set(img.imageId, img.annotations);
    count += img.annotations.length;
  }
  return {
    images: snap.images.map((img) => ({
      id: img.imageId,
      fileName: baseName(img.key),
      cocoFileName: img.key,
      width: img.variant.width,
      height: img.variant.height,
      split: split.get(img.imageId) ?? img.split,
      uri: img.variant.uri,
      datasetUri: img.variant.uri,
      store: "dataset",
    })),
    byImage,
    labels: snap.labels,
    annotations: count,
    snapshotId,
  };
}

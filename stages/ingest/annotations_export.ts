/**
 * Exports the ingested images and their annotations from the manifest (or a recorded training
 * snapshot, `snapshot`) as COCO JSON, Label Studio tasks, a YOLO dataset or a Pascal VOC
 * dataset. Category ids are the manifest's stable label ids, or the label config's
 * (label-studio-converter's rule) when one is given. An image with annotations from several
 * sources exports the set written most recently, unless `source` picks one, so that a file
 * imported in two formats is not doubled. Every format carries the Sluice image id
 * (`sluice_image_id`, `sluice_images.json`), so re-importing an export matches exactly.
 *
 * Images a source marked "reviewed, no objects" export as negatives: a completed Label Studio
 * annotation with an empty result, an empty YOLO label file, a VOC file without objects; images
 * nobody labelled export without an annotation.
 *
 * @example
 * ```ts
 * const { document } = await exportAnnotations(manifest, { format: "coco" });
 * await Deno.writeTextFile("coco.json", JSON.stringify(document));
 * ```
 * @module
 */
import { type CocoDataset, toCoco } from "../../common/annotations/coco.ts";
import {
  canonicalLabel,
  type LabelConfig,
  LabelConfigError,
  namesFromLabelConfig,
} from "../../common/annotations/label_config.ts";
import { type LabelStudioTask, toLabelStudioTasks } from "../../common/annotations/labelstudio.ts";
import type { AnnotationInput, ManifestStore } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { uriOfRecorded } from "../../common/objectstore/recorded_key.ts";
import { type ExportSet, manifestExportSet, snapshotExportSet } from "./annotation_sets.ts";
import type { AnnotationFormat } from "./config.ts";

export interface ExportOptions {
  format: AnnotationFormat;
  /** Only annotations from this source (default: per image, the most recently written set). */
  source?: string;
  /** Label Studio image URL: the source object (default) or the published dataset copy. */
  imageUrl?: "source" | "dataset";
  /** COCO `info.date_created` (default now); fix it for byte-stable output. */
  dateCreated?: string;
  /** Label Studio: polygons as polygons (default, what the source held) or as their boxes. */
  polygons?: "rectangle" | "polygon";
  /** Category ids, label order and Label Studio tag names from a label config. */
  labelConfig?: LabelConfig;
  /** Turns an object URI into the `data.image` Label Studio loads (default: the URI). */
  urlFor?: (uri: string) => Promise<string>;
  /** Export a recorded training snapshot (needs `datasetStore`). */
  snapshot?: string;
  datasetStore?: Pick<ObjectStore, "uriFor">;
}

export interface AnnotationExport {
  document: CocoDataset | LabelStudioTask[];
  images: number;
  annotations: number;
}

/**
 * The export set for the options: from a snapshot or from the manifest.
 *
 * @example
 * ```ts
 * const set = await exportSetFor(manifest, { format: "coco", snapshot: "snap-…", datasetStore });
 * ```
 */
export async function exportSetFor(
  manifest: ManifestStore,
  opts: Pick<ExportOptions, "source" | "imageUrl" | "snapshot" | "datasetStore" | "labelConfig">,
): Promise<ExportSet> {
  let set: ExportSet;
  if (opts.snapshot) {
    if (!opts.datasetStore) throw new Error("snapshot export: expected the dataset store");
    set = await snapshotExportSet(manifest, opts.datasetStore, opts.snapshot);
  } else {
    set = await manifestExportSet(manifest, {
      ...(opts.source !== undefined ? { source: opts.source } : {}),
      ...(opts.imageUrl ? { imageUrl: opts.imageUrl } : {}),
    });
  }
  if (opts.datasetStore) resolveDatasetKeys(set, opts.datasetStore);
  if (opts.labelConfig) applyLabelConfig(set, opts.labelConfig);
  return set;
}

/** Dataset objects are recorded as store-relative keys: exports carry their absolute URIs. */
function resolveDatasetKeys(set: ExportSet, store: Pick<ObjectStore, "uriFor">): void {
  for (const img of set.images) {
    if (img.store === "dataset") img.uri = uriOfRecorded(store, img.uri);
    if (img.datasetUri) img.datasetUri = uriOfRecorded(store, img.datasetUri);
  }
}

/**
 * Maps aliases to their labels and checks that the config has every exported label: an export
 * Label Studio would reject (or a class list missing a label) is an error naming the labels.
 */
function applyLabelConfig(set: ExportSet, cfg: LabelConfig): void {
  const missing = new Set<string>();
  for (const [id, anns] of set.byImage) {
    set.byImage.set(
      id,
      anns.map((a) => {
        const label = canonicalLabel(cfg, a.label);
        if (label === null) missing.add(a.label);
        return label === null || label === a.label ? a : { ...a, label };
      }),
    );
  }
  if (missing.size > 0) {
    throw new LabelConfigError(
      `the export has labels ${
        [...missing].sort().map((m) => JSON.stringify(m)).join(", ")
      } that the config lacks (it has ${cfg.labels.map((l) => JSON.stringify(l)).join(", ")})`,
    );
  }
}

/**
 * Class names in class-id order: the label config's (gaps in explicit `category` ids are filled
 * with `unused_<id>`), else the manifest's labels by id.
 *
 * @example
 * ```ts
 * classNames(set, cfg); // ["Airplane", "Car"]
 * ```
 */
export function classNames(set: ExportSet, cfg?: LabelConfig): string[] {
  if (cfg) {
    const max = Math.max(-1, ...cfg.categoryIds.values());
    const names: string[] = [];
    for (let i = 0; i <= max; i++) names.push(`unused_${i}`);
    for (const [l, i] of cfg.categoryIds) names[i] = l;
    return names;
  }
  const used = new Set([...set.byImage.values()].flat().map((a) => a.label));
  const known = [...set.labels].sort((a, b) => a[1] - b[1]).map(([l]) => l);
  return [...known, ...[...used].filter((l) => !set.labels.has(l)).sort()];
}

/**
 * Builds the export document (COCO or Label Studio).
 *
 * @example
 * ```ts
 * const { document, images } = await exportAnnotations(manifest, { format: "labelstudio" });
 * ```
 */
export async function exportAnnotations(
  manifest: ManifestStore,
  opts: ExportOptions,
): Promise<AnnotationExport> {
  const set = await exportSetFor(manifest, opts);
  return await exportDocument(set, opts);
}

/**
 * The COCO or Label Studio document for an export set.
 *
 * @example
 * ```ts
 * const { document } = await exportDocument(set, { format: "coco" });
 * ```
 */
export async function exportDocument(
  set: ExportSet,
  opts: Omit<ExportOptions, "snapshot" | "datasetStore" | "source">,
): Promise<AnnotationExport> {
  const cfg = opts.labelConfig;
  if (opts.format === "coco") {
    const labels = cfg ? new Map(cfg.categoryIds) : set.labels;
    const { coco } = toCoco({
      images: set.images.map((img) => ({
        id: img.id,
        fileName: img.cocoFileName,
        width: img.width,
        height: img.height,
      })),
      annotationsByImage: set.byImage,
      labels,
      description: set.snapshotId ? `Sluice snapshot ${set.snapshotId}` : "Sluice ingest export",
      ...(opts.dateCreated ? { dateCreated: opts.dateCreated } : {}),
    });
    return { document: coco, images: set.images.length, annotations: set.annotations };
  }
  const polygons = opts.polygons ?? "polygon";
  const hasPolygons = [...set.byImage.values()].some((anns: AnnotationInput[]) =>
    anns.some((a) => a.polygon && a.polygon.length >= 3 && !a.rotation)
  );
  const names = cfg
    ? namesFromLabelConfig(cfg, { needPolygons: polygons === "polygon" && hasPolygons })
    : null;
  const urlFor = opts.urlFor ?? ((uri: string) => Promise.resolve(uri));
  const images = [];
  for (const img of set.images) {
    images.push({ id: img.id, url: await urlFor(img.uri), width: img.width, height: img.height });
  }
  const tasks = toLabelStudioTasks(images, set.byImage, {
    polygons,
    ...(names
      ? {
        fromName: names.fromName,
        toName: names.toName,
        dataKey: names.dataKey,
        polygonFromName: names.polygonFromName,
      }
      : {}),
  });
  return { document: tasks, images: set.images.length, annotations: set.annotations };
}

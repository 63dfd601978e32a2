/**
 * Exports the ingested images and their annotations from the manifest as COCO JSON or as
 * Label Studio tasks. Category ids are the manifest's stable label ids. An image with
 * annotations from several sources (`labelstudio`, `coco`, ...) exports the set written most
 * recently, unless `source` picks one, so that a file imported in two formats is not doubled.
 * Both formats carry the Sluice image id (`sluice_image_id`), so re-importing an export matches
 * exactly.
 *
 * @example
 * ```ts
 * const { document } = await exportAnnotations(manifest, { format: "coco" });
 * await Deno.writeTextFile("coco.json", JSON.stringify(document));
 * ```
 * @module
 */
import { type CocoDataset, toCoco } from "../../common/annotations/coco.ts";
import { type LabelStudioTask, toLabelStudioTasks } from "../../common/annotations/labelstudio.ts";
import type {
  AnnotationInput,
  AnnotationRow,
  ImageRow,
  ManifestStore,
} from "../../common/manifest/mod.ts";
import type { AnnotationFormat } from "./config.ts";

export interface ExportOptions {
  format: AnnotationFormat;
  /** Only annotations from this source (default: per image, the most recently written set). */
  source?: string;
  /** Label Studio image URL: the source object (default) or the published dataset copy. */
  imageUrl?: "source" | "dataset";
  /** COCO `info.date_created` (default now); fix it for byte-stable output. */
  dateCreated?: string;
}

export interface AnnotationExport {
  document: CocoDataset | LabelStudioTask[];
  images: number;
  annotations: number;
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

/**
 * Builds the export document.
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
  const images = (await ingestedImages(manifest)).filter((i) => i.width && i.height);
  const byImage = new Map<string, AnnotationInput[]>();
  let count = 0;
  for (let i = 0; i < images.length; i += CHUNK) {
    const ids = images.slice(i, i + CHUNK).map((img) => img.id);
    const rows = await manifest.listAnnotations(ids);
    const grouped = new Map<string, AnnotationRow[]>();
    for (const r of rows) grouped.set(r.imageId, [...grouped.get(r.imageId) ?? [], r]);
    for (const [id, list] of grouped) {
      const chosen = pick(list, opts.source).map(toInput);
      if (chosen.length > 0) {
        byImage.set(id, chosen);
        count += chosen.length;
      }
    }
  }
  if (opts.format === "coco") {
    const labels = new Map((await manifest.listLabels()).map((l) => [l.name, l.id]));
    const { coco } = toCoco({
      images: images.map((img) => ({
        id: img.id,
        fileName: img.sourceKey,
        width: img.width!,
        height: img.height!,
      })),
      annotationsByImage: byImage,
      labels,
      description: "Sluice ingest export",
      ...(opts.dateCreated ? { dateCreated: opts.dateCreated } : {}),
    });
    return { document: coco, images: images.length, annotations: count };
  }
  const tasks = toLabelStudioTasks(
    images.map((img) => ({
      id: img.id,
      url: opts.imageUrl === "dataset" && img.datasetUri ? img.datasetUri : img.sourceUri,
      width: img.width!,
      height: img.height!,
    })),
    byImage,
  );
  return { document: tasks, images: images.length, annotations: count };
}

/**
 * Which images an annotation source marked "reviewed, no objects". The manifest stores an image's
 * annotations per source as a set, and an empty set looks the same as no set at all; this keeps
 * the difference in a manifest checkpoint per source (`ingest:reviewed-empty:<source>`, a sorted
 * JSON list of image ids), so that exports can write such images as negatives (an empty completed
 * Label Studio annotation, an empty YOLO label file, a VOC file without objects) instead of as
 * unlabelled, and training snapshots take them as negatives (images with no boxes).
 *
 * @example
 * ```ts
 * await recordReviewedEmpty(manifest, "labelstudio", { empty: ["img_1"], labelled: ["img_2"] });
 * (await readReviewedEmpty(manifest, ["labelstudio"])).has("img_1"); // true
 * ```
 * @module
 */
import type { ManifestStore } from "../manifest/mod.ts";

/** Every annotation source name an import can record (file and directory formats). */
export const ALL_ANNOTATION_SOURCES = ["labelstudio", "coco", "yolo", "voc"] as const;

/** The checkpoint holding one source's reviewed-empty image ids. */
export function reviewedEmptyCheckpoint(source: string): string {
  return `ingest:reviewed-empty:${source}`;
}

async function read(
  manifest: Pick<ManifestStore, "getCheckpoint">,
  source: string,
): Promise<Set<string>> {
  const raw = await manifest.getCheckpoint(reviewedEmptyCheckpoint(source));
  if (raw === null) return new Set();
  try {
    const list = JSON.parse(raw);
    return new Set(Array.isArray(list) ? list.filter((x) => typeof x === "string") : []);
  } catch {
    return new Set();
  }
}

/**
 * Adds `empty` to the source's reviewed-empty set and removes `labelled` (images that now have
 * objects from this source).
 *
 * @example
 * ```ts
 * await recordReviewedEmpty(manifest, "yolo", { empty: ids, labelled: [] });
 * ```
 */
export async function recordReviewedEmpty(
  manifest: Pick<ManifestStore, "getCheckpoint" | "setCheckpoint">,
  source: string,
  change: { empty: readonly string[]; labelled: readonly string[] },
): Promise<void> {
  if (change.empty.length === 0 && change.labelled.length === 0) return;
  const set = await read(manifest, source);
  const before = set.size;
  let changed = false;
  for (const id of change.empty) set.add(id);
  for (const id of change.labelled) changed = set.delete(id) || changed;
  if (!changed && set.size === before) return;
  await manifest.setCheckpoint(reviewedEmptyCheckpoint(source), JSON.stringify([...set].sort()));
}

/**
 * The union of the given sources' reviewed-empty image ids.
 *
 * @example
 * ```ts
 * const negatives = await readReviewedEmpty(manifest, ["labelstudio", "coco"]);
 * ```
 */
export async function readReviewedEmpty(
  manifest: Pick<ManifestStore, "getCheckpoint">,
  sources: readonly string[],
): Promise<Set<string>> {
  const out = new Set<string>();
  for (const s of sources) for (const id of await read(manifest, s)) out.add(id);
  return out;
}

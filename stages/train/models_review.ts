/**
 * Live review quality of one model version for `sluice-train models show`: from the manifest's
 * active reviews (provenance, migration 1601), the acceptance rate, the boxes by edit, and the
 * precision and recall of the version's pre-annotations against what reviewers kept (IoU 0.5),
 * per class and over all classes (`_all`), as `common/review/review_metrics.ts` computes them for
 * the `sluice_review_*` gauges.
 *
 * @example
 * ```ts
 * const q = await reviewQualityOf(manifest, "det", "3");
 * console.log(formatReviewQuality(q).join("\n"));
 * ```
 * @module
 */
import type { ManifestStore } from "../../common/manifest/mod.ts";
import { type ReviewQuality, summarizeReviews } from "../../common/review/review_metrics.ts";

/**
 * The review quality of `name` version `version`, or null when no review of its predictions is
 * recorded.
 *
 * @example
 * ```ts
 * (await reviewQualityOf(manifest, "det", "3"))?.acceptance; // 0.83
 * ```
 */
export async function reviewQualityOf(
  manifest: ManifestStore,
  name: string,
  version: string,
): Promise<ReviewQuality | null> {
  const rows = await manifest.listReviews({ modelName: name, modelVersion: version });
  return summarizeReviews(rows).find((q) => q.model === name && q.version === version) ?? null;
}

const num = (v: number | null) => (v === null ? "-" : v.toFixed(4));

/**
 * The lines `models show` prints for a version's review quality (indented like the rest).
 *
 * @example
 * ```ts
 * formatReviewQuality(null); // ["  review: no reviewed images"]
 * ```
 */
export function formatReviewQuality(q: ReviewQuality | null): string[] {
  if (!q) return ["  review: no reviewed images"];
  const b = q.boxes;
  const lines = [
    `  review: ${q.images} images (${q.imagesUnchanged} unchanged), acceptance ${
      num(q.acceptance)
    }`,
    `  review boxes: unchanged ${b.unchanged}, moved ${b.moved}, relabelled ${b.relabelled}, ` +
    `deleted ${b.deleted}, added ${b.added}`,
  ];
  const classes = Object.keys(q.perClass);
  const width = Math.max(5, ...classes.map((c) => c.length));
  lines.push(`  review ${"class".padEnd(width)}  precision  recall`);
  for (const c of classes) {
    const v = q.perClass[c];
    lines.push(`  review ${c.padEnd(width)}  ${num(v.precision).padEnd(9)}  ${num(v.recall)}`);
  }
  return lines;
}

/**
 * Live model quality from review: per model version, how its pre-annotations fared against what
 * reviewers kept (IoU 0.5, see `review_diff.ts`), summed over the active reviews in the
 * manifest, and exposed as Prometheus gauges computed at scrape time:
 *
 * - `sluice_review_images{model,version}`: reviewed images with a known prediction;
 * - `sluice_review_acceptance_ratio{model,version}`: predicted boxes accepted unchanged, over all
 *   predicted boxes (1 = reviewers changed nothing);
 * - `sluice_review_images_unchanged_ratio{model,version}`: reviews with no edit at all;
 * - `sluice_review_boxes{model,version,edit}`: boxes by edit (unchanged, moved, relabelled,
 *   deleted, added);
 * - `sluice_review_precision{model,version,class}` = TP / predicted and
 *   `sluice_review_recall{model,version,class}` = TP / reviewed, per class and `class="_all"`
 *   (micro average). A TP is a predicted box matched to a kept box of the same label.
 *
 * @example
 * ```ts
 * registerReviewMetrics(stageMetrics.registry, manifest);
 * summarizeReviews(await manifest.listReviews())[0].precision; // 0.83
 * ```
 * @module
 */
import { Gauge, type Registry } from "prom-client";
import type { ManifestStore, ReviewEditCounts, ReviewRow } from "../manifest/mod.ts";

/** Label of the micro average over all classes. */
export const ALL_CLASSES = "_all";

/** Review quality of one model version. */
export interface ReviewQuality {
  model: string;
  version: string;
  images: number;
  imagesUnchanged: number;
  boxes: ReviewEditCounts;
  /** Predicted boxes accepted unchanged / predicted boxes (null: none predicted). */
  acceptance: number | null;
  /** Per class and {@link ALL_CLASSES}: precision and recall (null when undefined: 0 / 0). */
  perClass: Record<string, { precision: number | null; recall: number | null }>;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

/**
 * Sums active reviews per model version (reviews without a known prediction are left out).
 *
 * @example
 * ```ts
 * const [q] = summarizeReviews(await manifest.listReviews({ modelName: "det" }));
 * q.perClass._all.precision;
 * ```
 */
export function summarizeReviews(rows: readonly ReviewRow[]): ReviewQuality[] {
  type Acc = {
    model: string;
    version: string;
    images: number;
    imagesUnchanged: number;
    boxes: ReviewEditCounts;
    cls: Map<string, { tp: number; predicted: number; reviewed: number }>;
  };
  const by = new Map<string, Acc>();
  for (const r of rows) {
    if (r.state !== "active" || !r.counts || !r.perClass || !r.modelName || !r.modelVersion) {
      continue;
    }
    const key = JSON.stringify([r.modelName, r.modelVersion]);
    let acc = by.get(key);
    if (!acc) {
      acc = {
        model: r.modelName,
        version: r.modelVersion,
        images: 0,
        imagesUnchanged: 0,
        boxes: { unchanged: 0, moved: 0, relabelled: 0, deleted: 0, added: 0 },
        cls: new Map(),
      };
      by.set(key, acc);
    }
    acc.images++;
    const c = r.counts;
    if (c.moved + c.relabelled + c.deleted + c.added === 0) acc.imagesUnchanged++;
    for (const k of Object.keys(acc.boxes) as (keyof ReviewEditCounts)[]) acc.boxes[k] += c[k];
    for (const [label, v] of Object.entries(r.perClass)) {
      for (const name of [label, ALL_CLASSES]) {
        const t = acc.cls.get(name) ?? { tp: 0, predicted: 0, reviewed: 0 };
        t.tp += v.tp;
        t.predicted += v.predicted;
        t.reviewed += v.reviewed;
        acc.cls.set(name, t);
      }
    }
  }
  return [...by.values()]
    .sort((a, b) => a.model.localeCompare(b.model) || a.version.localeCompare(b.version))
    .map((a) => {
      const predicted = a.boxes.unchanged + a.boxes.moved + a.boxes.relabelled + a.boxes.deleted;
      const perClass: ReviewQuality["perClass"] = {};
      for (const [name, t] of [...a.cls].sort(([x], [y]) => x.localeCompare(y))) {
        perClass[name] = { precision: ratio(t.tp, t.predicted), recall: ratio(t.tp, t.reviewed) };
      }
      return {
        model: a.model,
        version: a.version,
        images: a.images,
        imagesUnchanged: a.imagesUnchanged,
        boxes: a.boxes,
        acceptance: ratio(a.boxes.unchanged, predicted),
        perClass,
      };
    });
}

/**
 * Registers the `sluice_review_*` gauges on `registry`; each scrape reads the active reviews.
 *
 * @example
 * ```ts
 * registerReviewMetrics(metrics.stage.registry, manifest);
 * ```
 */
export function registerReviewMetrics(registry: Registry, manifest: ManifestStore): void {
  // Idempotent per registry (two stages may share one).
  if (registry.getSingleMetric("sluice_review_images")) return;
  let pending: Promise<ReviewQuality[]> | null = null;
  // One manifest read per scrape, shared by every gauge's collect().
  const quality = () => {
    pending ??= manifest.listReviews().then(summarizeReviews).finally(() => {
      queueMicrotask(() => (pending = null));
    });
    return pending;
  };
  const mv = ["model", "version"] as const;
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (g: Gauge<L>, q: ReviewQuality) => void,
  ) =>
    new Gauge<L>({
      name: `sluice_review_${name}`,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        for (const q of await quality()) fill(this, q);
      },
    });
  gauge("images", "Reviewed images with a known prediction, by model version.", mv, (g, q) => {
    g.set({ model: q.model, version: q.version }, q.images);
  });
  gauge(
    "acceptance_ratio",
    "Predicted boxes reviewers accepted unchanged, over predicted boxes.",
    mv,
    (g, q) => {
      if (q.acceptance !== null) g.set({ model: q.model, version: q.version }, q.acceptance);
    },
  );
  gauge(
    "images_unchanged_ratio",
    "Reviews that changed nothing, over reviews.",
    mv,
    (g, q) => g.set({ model: q.model, version: q.version }, q.imagesUnchanged / q.images),
  );
  gauge(
    "boxes",
    "Boxes by review edit (unchanged, moved, relabelled, deleted, added).",
    [...mv, "edit"],
    (g, q) => {
      for (const [edit, n] of Object.entries(q.boxes)) {
        g.set({ model: q.model, version: q.version, edit }, n);
      }
    },
  );
  for (const which of ["precision", "recall"] as const) {
    gauge(
      which,
      `${which === "precision" ? "Precision" : "Recall"} of the pre-annotations against ` +
        `reviewed boxes at IoU 0.5, by class (${ALL_CLASSES}: all classes).`,
      [...mv, "class"],
      (g, q) => {
        for (const [cls, v] of Object.entries(q.perClass)) {
          const x = v[which];
          if (x !== null) g.set({ model: q.model, version: q.version, class: cls }, x);
        }
      },
    );
  }
}

/**
 * Review priority: which predicted images a reviewer should see first. The acquisition function,
 * for an image with predicted boxes of scores `s_i` and labels `c_i`:
 *
 * - uncertainty `u = 1 - max_i s_i`: image-level least confidence, one minus the image's best box
 *   score. It assumes no calibration: only the order of scores matters, so it means the same
 *   whether a model's scores sit around 0.5 or, early in training, all below 0.3 (the old
 *   `max_i (1 - |2 s_i - 1|)` equals `2·max s` below 0.5 and so put the most confident images
 *   first). An image with no box gets `emptyUncertainty` (default 1, i.e. a best score of 0: the
 *   model found nothing, so it may have missed every object);
 * - class balance `b = max_i 1 / sqrt(1 + n(c_i))` over the image's *counted* boxes, those with
 *   `s_i ≥ ρ · max_j s_j` (ρ = `relativeFloor`, default 0.5: the boxes within a factor 2 of the
 *   image's best). `n(c)` counts class `c` among the labelled boxes or, without that, the counted
 *   boxes of the batch's predictions (`classCountsOf`). Relative to each image's best box, so
 *   again scale-free: the dozens of low-score boxes a detector emits near its threshold neither
 *   make their class look common nor lend an image their class's rarity (counting every box
 *   flattened `b`: ~50 boxes of every class per image). Rare classes come first;
 * - priority `= (u + λ·b) / (1 + λ)` in [0, 1], with `λ = balanceWeight` (default 0.25).
 *
 * Infer writes it into each Label Studio task as `data.sluice_review_priority`, a fixed
 * 4-decimal string (Label Studio task data are strings here; in [0, 1] with fixed decimals the
 * text order is the numeric order), so the Data Manager can sort by it.
 *
 * @example
 * ```ts
 * reviewPriority([{ label: "cat", score: 0.2 }], {}); // (0.8 + 0.25·1) / 1.25 = 0.84
 * reviewPriority([{ label: "cat", score: 0.9 }], {}); // (0.1 + 0.25·1) / 1.25 = 0.28
 * ```
 * @module
 */
import type { PredictionBox } from "../manifest/mod.ts";

export interface ReviewPriorityOptions {
  /**
   * Boxes per class among labelled data, or among the counted boxes of the batch's predictions
   * (`classCountsOf`); default: none known, so every class counts as rare.
   */
  classCounts?: Readonly<Record<string, number>>;
  /** λ, the weight of the class-balance term (default 0.25). */
  balanceWeight?: number;
  /** Uncertainty of an image without predicted boxes (default 1: a best score of 0). */
  emptyUncertainty?: number;
  /** ρ: a box counts for class balance when its score is ≥ ρ × its image's best (default 0.5). */
  relativeFloor?: number;
}

/** ρ's default: boxes within a factor 2 of their image's best box count for class balance. */
export const RELATIVE_FLOOR = 0.5;

/** The task data key infer writes the priority under. */
export const PRIORITY_KEY = "sluice_review_priority";

const clamp01 = (x: number) => Math.min(1, Math.max(0, Number.isFinite(x) ? x : 0));

/**
 * Review priority of one image (see the module doc).
 *
 * @example
 * ```ts
 * reviewPriority([], {}); // 0.8: (1 + 0.25 * 0) / 1.25
 * ```
 */
export function reviewPriority(
  boxes: readonly Pick<PredictionBox, "label" | "score">[],
  opts: ReviewPriorityOptions = {},
): number {
  const lambda = opts.balanceWeight ?? 0.25;
  if (boxes.length === 0) return clamp01(opts.emptyUncertainty ?? 1) / (1 + lambda);
  let b = 0;
  for (const box of countedBoxes(boxes, opts.relativeFloor)) {
    b = Math.max(b, 1 / Math.sqrt(1 + Math.max(0, opts.classCounts?.[box.label] ?? 0)));
  }
  const u = 1 - Math.max(...boxes.map((x) => clamp01(x.score)));
  return (u + lambda * b) / (1 + lambda);
}

/** The boxes of one image that count for class balance: score ≥ ρ × the image's best. */
function countedBoxes<T extends { score?: number }>(
  boxes: readonly T[],
  floor = RELATIVE_FLOOR,
): T[] {
  const s = (x: T) => x.score === undefined ? 1 : clamp01(x.score);
  const top = Math.max(0, ...boxes.map(s));
  return boxes.filter((x) => s(x) >= floor * top);
}

/**
 * Boxes per class over images' predictions (the class-balance term's fallback counts), counting
 * in each image only the boxes with score ≥ ρ × that image's best (a box without a score counts
 * as 1, so labelled boxes all count).
 *
 * @example
 * ```ts
 * classCountsOf([{ boxes: [{ label: "cat", score: 0.9 }, { label: "dog", score: 0.1 }] }]);
 * // { cat: 1 }: the 0.1 dog is under half of 0.9
 * ```
 */
export function classCountsOf(
  images: readonly { boxes: readonly { label: string; score?: number }[] }[],
  relativeFloor = RELATIVE_FLOOR,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const img of images) {
    for (const b of countedBoxes(img.boxes, relativeFloor)) out[b.label] = (out[b.label] ?? 0) + 1;
  }
  return out;
}

/** The priority as task data: a fixed 4-decimal string. */
export function formatPriority(p: number): string {
  return Math.min(1, Math.max(0, p)).toFixed(4);
}

/**
 * The `k` tasks of highest `data.sluice_review_priority` (ties keep input order); the rest are
 * not pushed for review. Tasks without a priority come last.
 *
 * @example
 * ```ts
 * topKForReview(tasks, 10).length; // min(10, tasks.length)
 * ```
 */
export function topKForReview<T extends { data: Record<string, unknown> }>(
  tasks: readonly T[],
  k: number,
): T[] {
  const p = (t: T) => {
    const v = Number(t.data[PRIORITY_KEY]);
    return Number.isFinite(v) ? v : -1;
  };
  return tasks
    .map((t, i) => ({ t, i, p: p(t) }))
    .sort((a, b) => b.p - a.p || a.i - b.i)
    .slice(0, Math.max(0, k))
    .map((x) => x.t);
}

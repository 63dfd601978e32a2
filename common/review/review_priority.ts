/**
 * Review priority: which predicted images a reviewer should see first. The acquisition function,
 * for an image with predicted boxes of scores `s_i` and labels `c_i`:
 *
 * - uncertainty `u = max_i (1 - |2 s_i - 1|)`: the margin between "object" and "background" of
 *   the least confident box (1 at s = 0.5, 0 at s = 0 or 1; least confidence over box scores);
 *   an image with no box gets `emptyUncertainty` (default 0.5: the model may have missed objects);
 * - class balance `b = max_i 1 / sqrt(1 + n(c_i))`, where `n(c)` counts class `c` among the
 *   labelled boxes (or, without that, among the batch's predictions): rare classes come first;
 * - priority `= (u + λ·b) / (1 + λ)` in [0, 1], with `λ = balanceWeight` (default 0.25).
 *
 * Infer writes it into each Label Studio task as `data.sluice_review_priority`, a fixed
 * 4-decimal string (Label Studio task data are strings here; in [0, 1] with fixed decimals the
 * text order is the numeric order), so the Data Manager can sort by it.
 *
 * @example
 * ```ts
 * reviewPriority([{ label: "cat", bbox: [0, 0, 5, 5], score: 0.5 }], {}); // (1 + 0.25·0.707)/1.25
 * ```
 * @module
 */
import type { PredictionBox } from "../manifest/mod.ts";

export interface ReviewPriorityOptions {
  /** Boxes per class among labelled data (default: none known, so every class counts as rare). */
  classCounts?: Readonly<Record<string, number>>;
  /** λ, the weight of the class-balance term (default 0.25). */
  balanceWeight?: number;
  /** Uncertainty of an image without predicted boxes (default 0.5). */
  emptyUncertainty?: number;
}

/** The task data key infer writes the priority under. */
export const PRIORITY_KEY = "sluice_review_priority";

/**
 * Review priority of one image (see the module doc).
 *
 * @example
 * ```ts
 * reviewPriority([], {}); // 0.4: (0.5 + 0.25 * 0) / 1.25
 * ```
 */
export function reviewPriority(
  boxes: readonly Pick<PredictionBox, "label" | "score">[],
  opts: ReviewPriorityOptions = {},
): number {
  const lambda = opts.balanceWeight ?? 0.25;
  if (boxes.length === 0) return (opts.emptyUncertainty ?? 0.5) / (1 + lambda);
  let u = 0;
  let b = 0;
  for (const box of boxes) {
    const s = Math.min(1, Math.max(0, box.score));
    u = Math.max(u, 1 - Math.abs(2 * s - 1));
    b = Math.max(b, 1 / Math.sqrt(1 + (opts.classCounts?.[box.label] ?? 0)));
  }
  return (u + lambda * b) / (1 + lambda);
}

/** Boxes per class over images' predictions (the class-balance term's fallback counts). */
export function classCountsOf(
  images: readonly { boxes: readonly Pick<PredictionBox, "label">[] }[],
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const img of images) for (const b of img.boxes) out[b.label] = (out[b.label] ?? 0) + 1;
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

/**
 * Review priority: which predicted images a reviewer should see first. The acquisition function,
 * for an image with predicted boxes of scores `s_i` and labels `c_i`:
 *
 * - *counted* boxes: those with `s_i ≥ ρ · max_j s_j` (ρ = `relativeFloor`, default 0.5: the boxes
 *   within a factor 2 of the image's best), so the dozens of low-score boxes a detector emits near
 *   its threshold do not count, whatever the model's score scale;
 * - uncertainty `u = E / K`, where `E = Σ H(s_i)` over the image's `K` (= `maxBoxes`, default 8)
 *   highest counted boxes and `H(s) = -s·log2 s - (1-s)·log2(1-s)`: the entropy, in bits, of the
 *   image's detections if each is an object with probability `s_i`. It grows with the number of
 *   plausible objects in the image and with how unsure the model is of each (a box at 0.5 adds 1
 *   bit, one at 0.05 or 0.95 adds 0.29), the sum aggregation of Brust et al., "Active Learning for
 *   Deep Object Detection" (2018). An image without boxes gets `E = emptyBits` (default 1: one
 *   wholly uncertain object; the model may have missed what is there);
 * - class balance `b = max_i 1 / sqrt(1 + n(c_i))` over the counted boxes, where `n(c)` counts class
 *   `c` among the labelled boxes or, without that, among the counted boxes of the batch's
 *   predictions (`classCountsOf`): rare classes come first;
 * - priority `= (u + λ·b) / (1 + λ)` in [0, 1], with `λ = balanceWeight` (default 0.25).
 *
 * Why a sum over boxes and not the image's least confident box (`1 - max s`, this module's first
 * rule): on the review-loop benchmark (`deno task bench loop --arms
 * uncertainty,least-confident,random`, seeds 1-3), the 24 images with the lowest best box held
 * 1.51 true objects each in round 1 against the pool's 2.56, so each review labelled fewer
 * objects than a random pick; the top 24 by `E` held 3.51. The budget is reviewed images, so an
 * image with more uncertain objects should teach more per review. (On that benchmark neither
 * rule beat random selection: see the README's "Review loop" for the figures and why.)
 *
 * Infer writes it into each Label Studio task as `data.sluice_review_priority`, a fixed
 * 4-decimal string (Label Studio task data are strings here; in [0, 1] with fixed decimals the
 * text order is the numeric order), so the Data Manager can sort by it.
 *
 * @example
 * ```ts
 * // One box at 0.5: E = 1 bit, u = 1/8, b = 1 (no class counts) → (0.125 + 0.25) / 1.25 = 0.3
 * reviewPriority([{ label: "cat", score: 0.5 }], {});
 * // Three unsure cats beat one: E = 3 bits → (0.375 + 0.25) / 1.25 = 0.5
 * reviewPriority([0.5, 0.5, 0.5].map((score) => ({ label: "cat", score })), {});
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
  /** K: the most counted boxes (highest scores first) whose entropy is summed (default 8). */
  maxBoxes?: number;
  /** E of an image without predicted boxes, in bits (default 1: one wholly uncertain object). */
  emptyBits?: number;
  /** ρ: a box counts when its score is ≥ ρ × its image's best (default 0.5). */
  relativeFloor?: number;
}

/** ρ's default: boxes within a factor 2 of their image's best box count. */
export const RELATIVE_FLOOR = 0.5;

/** K's default: the entropy of an image's 8 highest counted boxes is summed. */
export const MAX_BOXES = 8;

/** The task data key infer writes the priority under. */
export const PRIORITY_KEY = "sluice_review_priority";

const clamp01 = (x: number) => Math.min(1, Math.max(0, Number.isFinite(x) ? x : 0));

/**
 * Binary entropy of a score, in bits (0 at 0 and 1, 1 at 0.5).
 *
 * @example
 * ```ts
 * binaryEntropy(0.5); // 1
 * ```
 */
export function binaryEntropy(p: number): number {
  const s = clamp01(p);
  if (s === 0 || s === 1) return 0;
  return -(s * Math.log2(s) + (1 - s) * Math.log2(1 - s));
}

/**
 * Review priority of one image (see the module doc).
 *
 * @example
 * ```ts
 * reviewPriority([], {}); // (1/8 + 0.25 * 0) / 1.25 = 0.1: one uncertain object's worth
 * ```
 */
export function reviewPriority(
  boxes: readonly Pick<PredictionBox, "label" | "score">[],
  opts: ReviewPriorityOptions = {},
): number {
  const lambda = opts.balanceWeight ?? 0.25;
  const k = Math.max(1, Math.floor(opts.maxBoxes ?? MAX_BOXES));
  if (boxes.length === 0) return clamp01(Math.max(0, opts.emptyBits ?? 1) / k) / (1 + lambda);
  const counted = countedBoxes(boxes, opts.relativeFloor);
  let b = 0;
  for (const box of counted) {
    b = Math.max(b, 1 / Math.sqrt(1 + Math.max(0, opts.classCounts?.[box.label] ?? 0)));
  }
  const bits = counted.map((x) => clamp01(x.score)).sort((x, y) => y - x).slice(0, k)
    .reduce((sum, score) => sum + binaryEntropy(score), 0);
  return (bits / k + lambda * b) / (1 + lambda);
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

/**
 * How much a reviewer changed a model's pre-annotation: predicted boxes are matched to reviewed
 * boxes class-agnostically and greedily by IoU (highest first, IoU ≥ 0.5). A matched pair is
 * `unchanged` (same label, IoU ≥ 0.95: the reviewer accepted it), `moved` (same label, edited) or
 * `relabelled` (label changed); unmatched predictions were `deleted`, unmatched reviewed boxes
 * were `added`. Per class it also counts true positives (same label, IoU ≥ 0.5), predictions and
 * reviewed boxes, so precision and recall of the pre-annotations can be summed over many reviews.
 *
 * @example
 * ```ts
 * const d = diffReview(
 *   [{ label: "cat", bbox: [0, 0, 10, 10] }],
 *   [{ label: "cat", bbox: [0, 0, 10, 10] }, { label: "dog", bbox: [50, 50, 5, 5] }],
 * );
 * d.counts; // { unchanged: 1, moved: 0, relabelled: 0, deleted: 0, added: 1 }
 * ```
 * @module
 */
import { iouXywh } from "../detector/box_iou.ts";
import type { BBox } from "../manifest/mod.ts";

/** IoU at or above which a predicted and a reviewed box are the same object. */
export const MATCH_IOU = 0.5;
/** IoU at or above which a same-label match counts as accepted unchanged. */
export const UNCHANGED_IOU = 0.95;

/** A labelled box (`[x, y, w, h]` in image pixels). */
export interface LabelledBox {
  label: string;
  bbox: BBox;
}

/** Edit counts of one review. */
export interface ReviewCounts {
  unchanged: number;
  moved: number;
  relabelled: number;
  deleted: number;
  added: number;
}

/** Per-class counts for precision (`tp / predicted`) and recall (`tp / reviewed`). */
export interface ClassCounts {
  tp: number;
  predicted: number;
  reviewed: number;
}

export interface ReviewDiff {
  counts: ReviewCounts;
  perClass: Record<string, ClassCounts>;
}

/**
 * Diffs predicted boxes against the reviewed ones (see the module doc for the rules).
 *
 * @example
 * ```ts
 * diffReview([{ label: "cat", bbox: [0, 0, 10, 10] }], []).counts.deleted; // 1
 * ```
 */
export function diffReview(
  predicted: readonly LabelledBox[],
  reviewed: readonly LabelledBox[],
): ReviewDiff {
  const pairs: { p: number; r: number; iou: number }[] = [];
  predicted.forEach((p, pi) =>
    reviewed.forEach((r, ri) => {
      const iou = iouXywh(p.bbox, r.bbox);
      if (iou >= MATCH_IOU) pairs.push({ p: pi, r: ri, iou });
    })
  );
  // Highest IoU first; ties prefer same-label pairs, then input order (deterministic).
  pairs.sort((a, b) =>
    b.iou - a.iou ||
    sameLabel(predicted, reviewed, b) - sameLabel(predicted, reviewed, a) ||
    a.p - b.p || a.r - b.r
  );
  const usedP = new Set<number>();
  const usedR = new Set<number>();
  const counts: ReviewCounts = { unchanged: 0, moved: 0, relabelled: 0, deleted: 0, added: 0 };
  const perClass: Record<string, ClassCounts> = {};
  const cls = (label: string) => (perClass[label] ??= { tp: 0, predicted: 0, reviewed: 0 });
  for (const p of predicted) cls(p.label).predicted++;
  for (const r of reviewed) cls(r.label).reviewed++;
  for (const pair of pairs) {
    if (usedP.has(pair.p) || usedR.has(pair.r)) continue;
    usedP.add(pair.p);
    usedR.add(pair.r);
    const label = predicted[pair.p].label;
    if (label !== reviewed[pair.r].label) counts.relabelled++;
    else {
      cls(label).tp++;
      if (pair.iou >= UNCHANGED_IOU) counts.unchanged++;
      else counts.moved++;
    }
  }
  counts.deleted = predicted.length - usedP.size;
  counts.added = reviewed.length - usedR.size;
  return { counts, perClass };
}

function sameLabel(
  predicted: readonly LabelledBox[],
  reviewed: readonly LabelledBox[],
  pair: { p: number; r: number },
): number {
  return predicted[pair.p].label === reviewed[pair.r].label ? 1 : 0;
}

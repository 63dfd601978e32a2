/**
 * Intersection over union of `[x, y, w, h]` boxes, COCO convention (no +1 pixel). The operation
 * order matches the Python reference (`stages/train/trainer/decode.py`, `mean_ap.py`) so both
 * sides round identically.
 * @module
 */

/** `[x, y, w, h]`, top-left origin. */
export type Xywh = readonly [number, number, number, number];

/**
 * IoU of two boxes; 0 when they do not overlap or the union is empty.
 *
 * @example
 * ```ts
 * iouXywh([0, 0, 10, 10], [5, 0, 10, 10]); // 50 / 150 = 0.333…
 * ```
 */
export function iouXywh(a: Xywh, b: Xywh): number {
  const iw = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

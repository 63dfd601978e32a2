/**
 * COCO-style mean average precision for boxes, the definition pycocotools uses for bbox with
 * all areas (and the one the trainer reports, `stages/train/trainer/mean_ap.py`):
 *
 * - IoU thresholds 0.50:0.05:0.95; a detection matches at IoU >= threshold;
 * - per image and category, detections sorted by score (stable), at most `maxDets` kept; each is
 *   matched greedily to the unmatched ground truth with the highest IoU (ties: the later one);
 * - per category, detections of all images (ascending image id) sorted by score (stable),
 *   precision made monotone, AP = mean precision at 101 recall points ("COCO 101-point");
 * - categories without ground truth are left out; crowd annotations are ignored.
 *
 * @example
 * ```ts
 * const r = meanAveragePrecision(cocoGt, predictions);
 * console.log(r.map50, r.map50_95);
 * ```
 * @module
 */
import { iouXywh, type Xywh } from "../detector/box_iou.ts";

export type ImageId = number | string;

export interface GroundTruth {
  images: { id: ImageId }[];
  annotations: { image_id: ImageId; category_id: number; bbox: Xywh; iscrowd?: number }[];
  categories: { id: number; name?: string }[];
}

/** One detection in COCO results format. */
export interface Prediction {
  image_id: ImageId;
  category_id: number;
  bbox: Xywh;
  score: number;
}

export interface ClassAp {
  categoryId: number;
  name: string | null;
  numGt: number;
  /** AP at IoU 0.5; null when the category has no ground truth. */
  ap50: number | null;
  /** AP averaged over IoU 0.50:0.95; null when the category has no ground truth. */
  ap: number | null;
}

export interface MeanApResult {
  map50: number;
  map50_95: number;
  apDefinition: "coco-101-point";
  perClass: ClassAp[];
}

const EPS = 2.220446049250313e-16; // numpy.spacing(1), as pycocotools

/** numpy.linspace's arithmetic (i · step + start, exact end point), so thresholds match. */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num - 1; i++) out.push(i * step + start);
  out.push(stop);
  return out;
}

/** IoU thresholds 0.50, 0.55, …, 0.95. */
export const IOU_THRESHOLDS: readonly number[] = linspace(0.5, 0.95, 10);
const RECALL_POINTS = linspace(0, 1, 101);

function compareIds(a: ImageId, b: ImageId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function averagePrecision(scored: [number, boolean][], numGt: number): number {
  const order = scored.map((_, i) => i).sort((a, b) => scored[b][0] - scored[a][0]);
  let tp = 0, fp = 0;
  const rc: number[] = [], pr: number[] = [];
  for (const i of order) {
    if (scored[i][1]) tp++;
    else fp++;
    rc.push(tp / numGt);
    pr.push(tp / (tp + fp + EPS));
  }
  for (let i = pr.length - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
  let total = 0, j = 0;
  for (const r of RECALL_POINTS) {
    while (j < rc.length && rc[j] < r) j++;
    if (j < rc.length) total += pr[j];
  }
  return total / RECALL_POINTS.length;
}

/**
 * Computes mAP@0.5 and mAP@0.5:0.95 of `predictions` against `gt`.
 *
 * @example
 * ```ts
 * const gt = { images: [{ id: 1 }], categories: [{ id: 1 }],
 *   annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] }] };
 * meanAveragePrecision(gt, [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.9 }]).map50; // 1
 * ```
 */
export function meanAveragePrecision(
  gt: GroundTruth,
  predictions: readonly Prediction[],
  opts: { maxDets?: number } = {},
): MeanApResult {
  const maxDets = opts.maxDets ?? 100;
  const imageIds = [...new Set(gt.images.map((i) => i.id))].sort(compareIds);
  const known = new Set<ImageId>(imageIds);
  const key = (img: ImageId, cat: number) => `${typeof img}:${img}\u0000${cat}`;
  const gts = new Map<string, Xywh[]>();
  for (const a of gt.annotations) {
    if (a.iscrowd) continue;
    const k = key(a.image_id, a.category_id);
    const list = gts.get(k);
    if (list) list.push(a.bbox);
    else gts.set(k, [a.bbox]);
  }
  const dts = new Map<string, Prediction[]>();
  for (const d of predictions) {
    if (!known.has(d.image_id)) continue;
    const k = key(d.image_id, d.category_id);
    const list = dts.get(k);
    if (list) list.push(d);
    else dts.set(k, [d]);
  }
  const perClass: ClassAp[] = [];
  const cats = [...gt.categories].sort((a, b) => a.id - b.id);
  for (const cat of cats) {
    let numGt = 0;
    for (const img of imageIds) numGt += gts.get(key(img, cat.id))?.length ?? 0;
    const name = cat.name ?? null;
    if (numGt === 0) {
      perClass.push({ categoryId: cat.id, name, numGt: 0, ap50: null, ap: null });
      continue;
    }
    const perT: [number, boolean][][] = IOU_THRESHOLDS.map(() => []);
    for (const img of imageIds) {
      const g = gts.get(key(img, cat.id)) ?? [];
      const d = [...(dts.get(key(img, cat.id)) ?? [])]
        .sort((a, b) => b.score - a.score)
        .slice(0, maxDets);
      const ious = d.map((dd) => g.map((gg) => iouXywh(dd.bbox, gg)));
      IOU_THRESHOLDS.forEach((t, ti) => {
        const used = g.map(() => false);
        d.forEach((dd, k) => {
          let best = Math.min(t, 1 - 1e-10);
          let m = -1;
          for (let j = 0; j < g.length; j++) {
            if (used[j] || ious[k][j] < best) continue;
            best = ious[k][j];
            m = j;
          }
          if (m >= 0) used[m] = true;
          perT[ti].push([dd.score, m >= 0]);
        });
      });
    }
    const aps = perT.map((s) => averagePrecision(s, numGt));
    perClass.push({
      categoryId: cat.id,
      name,
      numGt,
      ap50: aps[0],
      ap: aps.reduce((a, b) => a + b, 0) / aps.length,
    });
  }
  const scored = perClass.filter((c) => c.numGt > 0);
  const mean = (f: (c: ClassAp) => number) =>
    scored.length ? scored.reduce((a, c) => a + f(c), 0) / scored.length : 0;
  return {
    map50: mean((c) => c.ap50 ?? 0),
    map50_95: mean((c) => c.ap ?? 0),
    apDefinition: "coco-101-point",
    perClass,
  };
}

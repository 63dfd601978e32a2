/**
 * COCO bbox evaluation exactly as pycocotools' `COCOeval` computes it (and as the trainer reports
 * it, `stages/train/trainer/mean_ap.py`, which implements the same steps):
 *
 * - IoU thresholds 0.50:0.05:0.95, 101 recall points, maxDets 1/10/100, area ranges all / small
 *   (< 32²) / medium (32²–96²) / large (> 96²), areas from the annotation's `area` (else w·h) and
 *   the detection's w·h;
 * - crowd ground truth (`iscrowd: 1`) is an ignore region: its IoU with a detection is
 *   intersection / detection area, it absorbs any number of detections, and a detection matched
 *   to it (or to a ground truth outside the area range) is neither a true nor a false positive;
 *   an unmatched detection outside the area range is ignored as well;
 * - per image and category, detections sorted by score (stable), at most maxDets kept, each
 *   matched greedily to the unmatched ground truth with the highest IoU (ties: the later one),
 *   regular ground truth before ignored (a detection matched to a regular one stops there);
 * - per category, detections of all images (ascending image id) sorted by score (stable),
 *   precision made monotone, AP = mean precision at the 101 recall points; AR = the recall
 *   reached; categories without (non-ignored) ground truth in a range are left out of its mean.
 *
 * `stats` holds COCOeval.summarize()'s twelve numbers (-1 where nothing could be measured).
 *
 * @example
 * ```ts
 * const r = meanAveragePrecision(cocoGt, predictions);
 * console.log(r.map50, r.map50_95, r.stats.apSmall, r.stats.ar100);
 * ```
 * @module
 */
import type { Xywh } from "../detector/box_iou.ts";

export type ImageId = number | string;

export interface GroundTruth {
  images: { id: ImageId }[];
  annotations: {
    image_id: ImageId;
    category_id: number;
    bbox: Xywh;
    iscrowd?: number;
    /** COCO's annotation area (segmentation area); w·h of the box when absent. */
    area?: number;
  }[];
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
  /**
   * The interpolated precision at COCO's 101 recall points (0, 0.01, …, 1) at IoU 0.5: the
   * precision–recall curve; null when the category has no ground truth.
   */
  pr50?: number[] | null;
}

/** COCOeval.summarize()'s numbers, in its order; -1 where nothing could be measured. */
export interface CocoStats {
  /** AP @[IoU 0.50:0.95, all areas, maxDets 100] */
  ap: number;
  ap50: number;
  ap75: number;
  apSmall: number;
  apMedium: number;
  apLarge: number;
  /** AR @[IoU 0.50:0.95, all areas] with 1, 10 and 100 detections per image */
  ar1: number;
  ar10: number;
  ar100: number;
  arSmall: number;
  arMedium: number;
  arLarge: number;
}

export interface MeanApResult {
  /** AP at IoU 0.5 (0 when no category has ground truth). */
  map50: number;
  /** AP averaged over IoU 0.50:0.95 (0 when no category has ground truth). */
  map50_95: number;
  apDefinition: "coco-101-point";
  perClass: ClassAp[];
  stats: CocoStats;
}

/** COCO's area ranges (`[min, max]`, inclusive), in COCOeval's order. */
export const AREA_RANGES = {
  all: [0, 1e10],
  small: [0, 32 ** 2],
  medium: [32 ** 2, 96 ** 2],
  large: [96 ** 2, 1e10],
} as const;
type AreaName = keyof typeof AREA_RANGES;
const AREAS = Object.keys(AREA_RANGES) as AreaName[];

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

/** pycocotools' box IoU: for a crowd ground truth the union is the detection's area. */
function boxIou(d: Xywh, g: Xywh, crowd: boolean): number {
  const w = Math.min(d[2] + d[0], g[2] + g[0]) - Math.max(d[0], g[0]);
  if (w <= 0) return 0;
  const h = Math.min(d[3] + d[1], g[3] + g[1]) - Math.max(d[1], g[1]);
  if (h <= 0) return 0;
  const i = w * h;
  const da = d[2] * d[3];
  return i / (crowd ? da : da + g[2] * g[3] - i);
}

interface Gt {
  bbox: Xywh;
  area: number;
  crowd: boolean;
}

/** COCOeval.evaluateImg's result for one image, category and area range. */
interface ImageEval {
  /** Scores of the kept detections, descending. */
  scores: number[];
  /** [threshold][detection]: matched to a ground truth. */
  matched: boolean[][];
  /** [threshold][detection]: neither TP nor FP. */
  ignored: boolean[][];
  /** Per ground truth: ignored (crowd or outside the area range). */
  gtIgnored: boolean[];
}

function stableOrder<T>(xs: readonly T[], key: (x: T) => number): number[] {
  // Array.prototype.sort is stable, as numpy's mergesort.
  return xs.map((_, i) => i).sort((a, b) => key(xs[a]) - key(xs[b]));
}

function evaluateImage(
  gts: readonly Gt[],
  dts: readonly Prediction[],
  ious: number[][],
  range: readonly [number, number],
  maxDet: number,
): ImageEval | null {
  if (gts.length === 0 && dts.length === 0) return null;
  const ignoredGt = gts.map((g) => g.crowd || g.area < range[0] || g.area > range[1]);
  const gtOrder = stableOrder(ignoredGt, (x) => Number(x));
  const g = gtOrder.map((i) => gts[i]);
  const gtIg = gtOrder.map((i) => ignoredGt[i]);
  // dts arrive sorted by score (stable) and cut at the largest maxDets, as ious' rows.
  const D = Math.min(dts.length, maxDet);
  const d = dts.slice(0, D);
  const matched: boolean[][] = [];
  const ignored: boolean[][] = [];
  for (const t of IOU_THRESHOLDS) {
    const gtMatched = g.map(() => false);
    const m: boolean[] = [];
    const ig: boolean[] = [];
    for (let di = 0; di < D; di++) {
      let best = Math.min(t, 1 - 1e-10);
      let hit = -1;
      for (let gi = 0; gi < g.length; gi++) {
        if (gtMatched[gi] && !g[gi].crowd) continue;
        if (hit > -1 && !gtIg[hit] && gtIg[gi]) break;
        const iou = ious[di][gtOrder[gi]];
        if (iou < best) continue;
        best = iou;
        hit = gi;
      }
      if (hit === -1) {
        const area = d[di].bbox[2] * d[di].bbox[3];
        m.push(false);
        ig.push(area < range[0] || area > range[1]);
        continue;
      }
      gtMatched[hit] = true;
      m.push(true);
      ig.push(gtIg[hit]);
    }
    matched.push(m);
    ignored.push(ig);
  }
  return { scores: d.map((x) => x.score), matched, ignored, gtIgnored: gtIg };
}

/** COCOeval.accumulate for one category, area range and maxDets: precision[T][R], recall[T]. */
function accumulate(
  evals: readonly (ImageEval | null)[],
  maxDet: number,
): { precision: number[][]; recall: number[] } | null {
  const E = evals.filter((e): e is ImageEval => e !== null);
  if (E.length === 0) return null;
  const scores: number[] = [];
  const parts: { e: ImageEval; i: number }[] = [];
  for (const e of E) {
    for (let i = 0; i < Math.min(maxDet, e.scores.length); i++) {
      scores.push(e.scores[i]);
      parts.push({ e, i });
    }
  }
  const npig = E.reduce((n, e) => n + e.gtIgnored.filter((x) => !x).length, 0);
  if (npig === 0) return null;
  const order = stableOrder(scores, (s) => -s);
  const precision: number[][] = [];
  const recall: number[] = [];
  IOU_THRESHOLDS.forEach((_, t) => {
    let tp = 0, fp = 0;
    const rc: number[] = [], pr: number[] = [];
    for (const k of order) {
      const { e, i } = parts[k];
      if (!e.ignored[t][i]) {
        if (e.matched[t][i]) tp++;
        else fp++;
      }
      rc.push(tp / npig);
      pr.push(tp / (fp + tp + EPS));
    }
    recall.push(rc.length ? rc[rc.length - 1] : 0);
    for (let i = pr.length - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    const q: number[] = [];
    let j = 0;
    for (const r of RECALL_POINTS) {
      while (j < rc.length && rc[j] < r) j++;
      q.push(j < rc.length ? pr[j] : 0);
    }
    precision.push(q);
  });
  return { precision, recall };
}

function meanOver(values: number[]): number {
  const kept = values.filter((v) => v > -1);
  return kept.length ? kept.reduce((a, b) => a + b, 0) / kept.length : -1;
}

/**
 * Evaluates `predictions` against `gt` as COCOeval (bbox) does; see the module docs.
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
  const maxDetsList = [1, 10, opts.maxDets ?? 100];
  const maxDet = maxDetsList[2];
  const imageIds = [...new Set(gt.images.map((i) => i.id))].sort(compareIds);
  const known = new Set<ImageId>(imageIds);
  const key = (img: ImageId, cat: number) => `${typeof img}:${img}\u0000${cat}`;
  const gts = new Map<string, Gt[]>();
  for (const a of gt.annotations) {
    const k = key(a.image_id, a.category_id);
    const g: Gt = {
      bbox: a.bbox,
      area: a.area ?? a.bbox[2] * a.bbox[3],
      crowd: Boolean(a.iscrowd),
    };
    const list = gts.get(k);
    if (list) list.push(g);
    else gts.set(k, [g]);
  }
  const dts = new Map<string, Prediction[]>();
  for (const d of predictions) {
    if (!known.has(d.image_id)) continue;
    const k = key(d.image_id, d.category_id);
    const list = dts.get(k);
    if (list) list.push(d);
    else dts.set(k, [d]);
  }
  const cats = [...gt.categories].sort((a, b) => a.id - b.id);
  // [category][area][maxDets] → accumulated, or null
  const acc = cats.map((cat) => {
    const perImage = imageIds.map((img) => {
      const g = gts.get(key(img, cat.id)) ?? [];
      const d = [...(dts.get(key(img, cat.id)) ?? [])].sort((a, b) => b.score - a.score)
        .slice(0, maxDet);
      const ious = d.map((dd) => g.map((gg) => boxIou(dd.bbox, gg.bbox, gg.crowd)));
      return { g, d, ious };
    });
    return AREAS.map((area) => {
      const evals = perImage.map(({ g, d, ious }) =>
        evaluateImage(g, d, ious, AREA_RANGES[area], maxDet)
      );
      return maxDetsList.map((m) => accumulate(evals, m));
    });
  });
  const ai = (a: AreaName) => AREAS.indexOf(a);
  const apOf = (area: AreaName, m: number, t?: number) =>
    meanOver(
      acc.flatMap((perArea) => {
        const r = perArea[ai(area)][m];
        if (!r) return [];
        return t === undefined ? r.precision.flat() : r.precision[t];
      }),
    );
  const arOf = (area: AreaName, m: number) =>
    meanOver(acc.flatMap((perArea) => perArea[ai(area)][m]?.recall ?? []));
  const t75 = IOU_THRESHOLDS.indexOf(0.75);
  const stats: CocoStats = {
    ap: apOf("all", 2),
    ap50: apOf("all", 2, 0),
    ap75: t75 < 0 ? -1 : apOf("all", 2, t75),
    apSmall: apOf("small", 2),
    apMedium: apOf("medium", 2),
    apLarge: apOf("large", 2),
    ar1: arOf("all", 0),
    ar10: arOf("all", 1),
    ar100: arOf("all", 2),
    arSmall: arOf("small", 2),
    arMedium: arOf("medium", 2),
    arLarge: arOf("large", 2),
  };
  const perClass: ClassAp[] = cats.map((cat, k) => {
    let numGt = 0;
    for (const img of imageIds) {
      numGt += (gts.get(key(img, cat.id)) ?? []).filter((g) => !g.crowd).length;
    }
    const r = acc[k][0][2];
    const name = cat.name ?? null;
    if (!r) return { categoryId: cat.id, name, numGt, ap50: null, ap: null, pr50: null };
    return {
      categoryId: cat.id,
      name,
      numGt,
      ap50: meanOver(r.precision[0]),
      ap: meanOver(r.precision.flat()),
      pr50: r.precision[0],
    };
  });
  return {
    map50: Math.max(0, stats.ap50),
    map50_95: Math.max(0, stats.ap),
    apDefinition: "coco-101-point",
    perClass,
    stats,
  };
}

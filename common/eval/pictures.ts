/**
 * Pictures that let a person judge a detector, as Ultralytics writes after each validation:
 * precision–recall curves per class (IoU 0.5, COCO's 101 recall points, AP in the legend), a
 * confusion matrix (IoU ≥ 0.5, score ≥ 0.25, with a background row and column for misses and
 * false alarms) and a contact sheet of validation images with the true boxes (green) and the
 * predicted ones (red, score ≥ 0.3, labelled; a thick green outline around a red one is a hit). Each is an SVG rendered to PNG by sharp.
 *
 * @example
 * ```ts
 * const files = await writeEvalPictures(outDir, { gt, predictions, image: (img) => Deno.readFile(path(img)) });
 * // ["…/pr_curves.png", "…/confusion_matrix.png", "…/contact_sheet.png"]
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import sharp from "sharp";
import type { Xywh } from "../detector/box_iou.ts";
import { type GroundTruth, meanAveragePrecision, type Prediction } from "./mean_ap.ts";

const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function names(gt: GroundTruth): Map<number, string> {
  return new Map(gt.categories.map((c) => [c.id, c.name ?? `class ${c.id}`]));
}

/** SVG of the precision–recall curve of every class with ground truth (IoU 0.5). */
export function prCurvesSvg(gt: GroundTruth, predictions: readonly Prediction[]): string {
  const r = meanAveragePrecision(gt, predictions);
  const W = 640, H = 480, L = 60, T = 30, PW = 400, PH = 400;
  const x = (rc: number) => L + rc * PW;
  const y = (p: number) => T + (1 - p) * PH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<rect x="${L}" y="${T}" width="${PW}" height="${PH}" fill="none" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 10; i++) {
    const v = i / 10;
    parts.push(
      `<line x1="${x(v)}" y1="${T}" x2="${x(v)}" y2="${T + PH}" stroke="#eee"/>`,
      `<line x1="${L}" y1="${y(v)}" x2="${L + PW}" y2="${y(v)}" stroke="#eee"/>`,
      `<text x="${x(v)}" y="${T + PH + 16}" text-anchor="middle">${v.toFixed(1)}</text>`,
      `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`,
    );
  }
  parts.push(
    `<text x="${L + PW / 2}" y="${T + PH + 36}" text-anchor="middle">recall</text>`,
    `<text x="16" y="${T + PH / 2}" text-anchor="middle" transform="rotate(-90 16 ${
      T + PH / 2
    })">precision</text>`,
    `<text x="${L}" y="18" font-weight="bold">precision–recall, IoU 0.5 (mAP@0.5 ${
      r.map50.toFixed(3)
    })</text>`,
  );
  let legend = 0;
  r.perClass.forEach((c, i) => {
    if (!c.pr50) return;
    const color = PALETTE[i % PALETTE.length];
    // Up to the highest recall reached (beyond it COCO's precision is 0 by definition).
    let last = c.pr50.length - 1;
    while (last > 0 && c.pr50[last] === 0) last--;
    const pts = c.pr50.slice(0, last + 1).map((p, k) =>
      `${x(k / 100).toFixed(1)},${y(p).toFixed(1)}`
    )
      .join(" ");
    parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`);
    const ly = T + 10 + legend++ * 18;
    parts.push(
      `<line x1="${L + PW + 16}" y1="${ly}" x2="${
        L + PW + 36
      }" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${L + PW + 42}" y="${ly + 4}">${esc(c.name ?? String(c.categoryId))} ${
        (c.ap50 ?? 0).toFixed(3)
      }</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

function iou(a: Xywh, b: Xywh): number {
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  return (w * h) / (a[2] * a[3] + b[2] * b[3] - w * h);
}

/**
 * The confusion matrix: `counts[p][t]`, rows predicted and columns true classes (the last of each
 * is background). Each true box takes the highest-scored unmatched prediction (any class) with
 * IoU ≥ 0.5 and score ≥ `minScore`; unmatched truths count as predicted background, unmatched
 * predictions as true background. Crowd regions are left out.
 */
export function confusionMatrix(
  gt: GroundTruth,
  predictions: readonly Prediction[],
  minScore = 0.25,
): { labels: string[]; counts: number[][] } {
  const cats = [...gt.categories].sort((a, b) => a.id - b.id);
  const index = new Map(cats.map((c, i) => [c.id, i]));
  const n = cats.length;
  const counts = Array.from({ length: n + 1 }, () => new Array(n + 1).fill(0));
  const byImage = new Map<string, Prediction[]>();
  for (const p of predictions) {
    if (p.score < minScore || !index.has(p.category_id)) continue;
    const k = String(p.image_id);
    byImage.set(k, [...(byImage.get(k) ?? []), p]);
  }
  const truths = new Map<string, GroundTruth["annotations"]>();
  for (const a of gt.annotations) {
    if (a.iscrowd || !index.has(a.category_id)) continue;
    const k = String(a.image_id);
    truths.set(k, [...(truths.get(k) ?? []), a]);
  }
  for (const img of gt.images) {
    const k = String(img.id);
    const preds = [...(byImage.get(k) ?? [])].sort((a, b) => b.score - a.score);
    const used = new Set<number>();
    for (const t of truths.get(k) ?? []) {
      let best = -1, bestIou = 0.5;
      preds.forEach((p, i) => {
        if (used.has(i)) return;
        const v = iou(p.bbox, t.bbox);
        if (v >= bestIou && (best < 0 || p.score > preds[best].score || v > bestIou)) {
          best = i;
          bestIou = v;
        }
      });
      const tc = index.get(t.category_id)!;
      if (best < 0) counts[n][tc]++;
      else {
        used.add(best);
        counts[index.get(preds[best].category_id)!][tc]++;
      }
    }
    preds.forEach((p, i) => {
      if (!used.has(i)) counts[index.get(p.category_id)!][n]++;
    });
  }
  return { labels: [...cats.map((c) => c.name ?? `class ${c.id}`), "background"], counts };
}

/** SVG of {@link confusionMatrix}, cells shaded by their share of the true column. */
export function confusionMatrixSvg(gt: GroundTruth, predictions: readonly Prediction[]): string {
  const { labels, counts } = confusionMatrix(gt, predictions);
  const n = labels.length, cell = Math.max(36, Math.min(64, Math.floor(480 / n)));
  const L = 120, T = 60, W = Math.max(440, L + n * cell + 20), H = T + n * cell + 110;
  const colTotal = labels.map((_, t) => counts.reduce((s, row) => s + row[t], 0));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="20" font-weight="bold">confusion matrix (IoU ≥ 0.5, score ≥ 0.25)</text>`,
    `<text x="${L + (n * cell) / 2}" y="${
      T + n * cell + 90
    }" text-anchor="middle">true class</text>`,
    `<text x="14" y="${T + (n * cell) / 2}" text-anchor="middle" transform="rotate(-90 14 ${
      T + (n * cell) / 2
    })">predicted class</text>`,
  ];
  for (let p = 0; p < n; p++) {
    parts.push(
      `<text x="${L - 6}" y="${T + p * cell + cell / 2 + 4}" text-anchor="end">${
        esc(labels[p])
      }</text>`,
    );
    for (let t = 0; t < n; t++) {
      const share = colTotal[t] ? counts[p][t] / colTotal[t] : 0;
      const shade = Math.round(255 - share * 200);
      parts.push(
        `<rect x="${L + t * cell}" y="${
          T + p * cell
        }" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#999"/>`,
        `<text x="${L + t * cell + cell / 2}" y="${
          T + p * cell + cell / 2 + 4
        }" text-anchor="middle">${counts[p][t]}</text>`,
      );
    }
  }
  for (let t = 0; t < n; t++) {
    const cx = L + t * cell + cell / 2, cy = T + n * cell + 8;
    parts.push(
      `<text x="${cx}" y="${cy}" text-anchor="end" transform="rotate(-45 ${cx} ${cy})">${
        esc(labels[t])
      }</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}

/** What {@link contactSheetPng} and {@link writeEvalPictures} need besides the scores. */
export interface PictureInputs {
  gt: GroundTruth & {
    images: { id: number | string; file_name?: string; width?: number; height?: number }[];
  };
  predictions: readonly Prediction[];
  /** The encoded bytes of a ground-truth image (any format sharp reads). */
  image: (img: { id: number | string; file_name?: string }) => Promise<Uint8Array>;
}

/**
 * A grid of up to `count` images (in ground-truth order) at `tile` px, true boxes green, predicted
 * boxes red (score ≥ 0.3) with class and score.
 */
export async function contactSheetPng(
  o: PictureInputs,
  opts: { count?: number; tile?: number; columns?: number } = {},
): Promise<Uint8Array> {
  const count = Math.min(opts.count ?? 16, o.gt.images.length);
  const tile = opts.tile ?? 240, columns = opts.columns ?? 4;
  const rows = Math.max(1, Math.ceil(count / columns));
  const label = names(o.gt);
  const composites: { input: Buffer; left: number; top: number }[] = [];
  for (let i = 0; i < count; i++) {
    const img = o.gt.images[i];
    const bytes = await o.image(img);
    const meta = await sharp(Buffer.from(bytes)).metadata();
    const w = meta.width ?? tile, h = meta.height ?? tile;
    const s = Math.min(tile / w, tile / h);
    const svg = [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${tile}" height="${tile}" font-family="sans-serif" font-size="11">`,
    ];
    for (const a of o.gt.annotations) {
      if (String(a.image_id) !== String(img.id)) continue;
      const [x, y, bw, bh] = a.bbox.map((v) => v * s);
      svg.push(
        `<rect x="${x}" y="${y}" width="${bw}" height="${bh}" fill="none" stroke="#00c000" stroke-width="4"${
          a.iscrowd ? ' stroke-dasharray="4 3"' : ""
        }/>`,
      );
    }
    for (const p of o.predictions) {
      if (String(p.image_id) !== String(img.id) || p.score < 0.3) continue;
      const [x, y, bw, bh] = p.bbox.map((v) => v * s);
      svg.push(
        `<rect x="${x}" y="${y}" width="${bw}" height="${bh}" fill="none" stroke="#e00000" stroke-width="1.5"/>`,
        `<text x="${x + 2}" y="${Math.max(10, y - 2)}" fill="#e00000">${
          esc(label.get(p.category_id) ?? String(p.category_id))
        } ${p.score.toFixed(2)}</text>`,
      );
    }
    svg.push("</svg>");
    const resized = await sharp(Buffer.from(bytes))
      .resize(Math.round(w * s), Math.round(h * s))
      .extend({
        right: tile - Math.round(w * s),
        bottom: tile - Math.round(h * s),
        background: "#202020",
      })
      .composite([{ input: Buffer.from(svg.join("")), top: 0, left: 0 }])
      .png()
      .toBuffer();
    composites.push({
      input: resized,
      left: (i % columns) * (tile + 4),
      top: Math.floor(i / columns) * (tile + 4),
    });
  }
  return new Uint8Array(
    await sharp({
      create: {
        width: columns * (tile + 4) - 4,
        height: rows * (tile + 4) - 4,
        channels: 3,
        background: "#ffffff",
      },
    }).composite(composites).png().toBuffer(),
  );
}

async function svgToPng(svg: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

/**
 * Writes `pr_curves.png`, `confusion_matrix.png` and `contact_sheet.png` into `dir` (which must
 * exist); returns their paths.
 */
export async function writeEvalPictures(dir: string, o: PictureInputs): Promise<string[]> {
  const files: [string, Uint8Array][] = [
    ["pr_curves.png", await svgToPng(prCurvesSvg(o.gt, o.predictions))],
    ["confusion_matrix.png", await svgToPng(confusionMatrixSvg(o.gt, o.predictions))],
    ["contact_sheet.png", await contactSheetPng(o)],
  ];
  const out: string[] = [];
  for (const [name, bytes] of files) {
    const path = join(dir, name);
    await Deno.writeFile(path, bytes);
    out.push(path);
  }
  return out;
}

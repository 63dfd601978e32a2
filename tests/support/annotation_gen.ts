/**
 * Seeded generator of annotated images for round-trip property tests: non-square sizes, boxes
 * (some touching the border), rotated boxes (Label Studio convention, fully inside the image),
 * polygons, multi-part COCO objects, empty ("reviewed, no objects") and unlabelled images, and
 * labels outside the known class list.
 *
 * @example
 * ```ts
 * const ds = generateDataset(42, { images: 12 });
 * ds.images[0].width; // e.g. 731
 * ```
 * @module
 */
import type { AnnotationInput } from "../../common/manifest/mod.ts";
import { rotatedBoxAnnotation, rotatedCorners } from "../../common/annotations/rotated_box.ts";
import { envelope, type Point } from "../../common/annotations/geometry.ts";

/** Mulberry32: small, seeded, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Known class names; {@link UNKNOWN_LABEL} is used but never listed. */
export const KNOWN_LABELS = ["cat", "dog", "car"];
export const UNKNOWN_LABEL = "zebra";

export interface GeneratedImage {
  id: string;
  fileName: string;
  width: number;
  height: number;
  split: "train" | "val";
  /** null: unlabelled; []: reviewed, no objects. */
  annotations: AnnotationInput[] | null;
  /** COCO-only: multi-part objects, as segmentation part lists. */
  multipart: { label: string; parts: Point[][] }[];
}

export interface GeneratedDataset {
  images: GeneratedImage[];
}

/**
 * A dataset. Kinds per image are random; options turn off what a format cannot hold.
 *
 * @example
 * ```ts
 * generateDataset(1, { images: 5, unknownLabels: false });
 * ```
 */
export function generateDataset(
  seed: number,
  opts: {
    images?: number;
    rotated?: boolean;
    polygons?: boolean;
    multipart?: boolean;
    unknownLabels?: boolean;
    maxSide?: number;
  } = {},
): GeneratedDataset {
  const r = prng(seed);
  const between = (lo: number, hi: number) => lo + r() * (hi - lo);
  const int = (lo: number, hi: number) => Math.floor(between(lo, hi + 1));
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const maxSide = opts.maxSide ?? 900;
  const images: GeneratedImage[] = [];
  const n = opts.images ?? 10;
  for (let i = 0; i < n; i++) {
    const width = int(40, maxSide);
    let height = int(40, maxSide);
    if (width === height) height += 7; // always non-square
    const img: GeneratedImage = {
      id: `img_${seed}_${i}`,
      fileName: `im${i}_${width}x${height}.png`,
      width,
      height,
      split: i % 4 === 3 ? "val" : "train",
      annotations: [],
      multipart: [],
    };
    images.push(img);
    if (i === 0) continue; // reviewed, no objects
    if (i === 1) {
      img.annotations = null; // unlabelled
      continue;
    }
    const anns: AnnotationInput[] = [];
    const count = int(1, 6);
    for (let k = 0; k < count; k++) {
      const label = opts.unknownLabels !== false && r() < 0.1 ? UNKNOWN_LABEL : pick(KNOWN_LABELS);
      const kind = pick(["box", "border", "rotated", "polygon", "multipart"] as const);
      if (
        kind === "box" || kind === "border" || (kind === "rotated" && opts.rotated === false) ||
        (kind === "polygon" && opts.polygons === false) ||
        (kind === "multipart" && opts.multipart === false)
      ) {
        const w = between(2, width / 2), h = between(2, height / 2);
        let x = between(0, width - w), y = between(0, height - h);
        if (kind === "border") {
          if (r() < 0.5) x = r() < 0.5 ? 0 : width - w;
          else y = r() < 0.5 ? 0 : height - h;
          if (r() < 0.3) {
            x = 0;
            y = 0;
          }
        }
        anns.push({ label, bbox: [x, y, w, h] });
      } else if (kind === "rotated") {
        for (let tries = 0; tries < 50; tries++) {
          const w = between(4, width / 3), h = between(4, height / 3);
          const x = between(0, width), y = between(0, height);
          const deg = between(1, 359);
          const corners = rotatedCorners([x, y, w, h], deg);
          if (corners.every(([px, py]) => px >= 0 && py >= 0 && px <= width && py <= height)) {
            anns.push({ ...rotatedBoxAnnotation(label, [x, y, w, h], deg) });
            break;
          }
        }
      } else if (kind === "polygon") {
        anns.push({ label, ...polygonIn(r, width, height) });
      } else {
        const parts = [polygonIn(r, width, height).polygon, polygonIn(r, width, height).polygon];
        img.multipart.push({ label, parts });
      }
    }
    img.annotations = anns;
  }
  return { images };
}

/** A simple star-shaped polygon (no self-intersections) inside the image. */
function polygonIn(
  r: () => number,
  width: number,
  height: number,
): { bbox: [number, number, number, number]; polygon: [number, number][] } {
  const n = 3 + Math.floor(r() * 6);
  const rad = Math.min(width, height) * (0.05 + 0.2 * r());
  const cx = rad + r() * (width - 2 * rad), cy = rad + r() * (height - 2 * rad);
  const pts: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    const a = (2 * Math.PI * (k + 0.2 + 0.6 * r())) / n;
    const rr = rad * (0.4 + 0.6 * r());
    pts.push([cx + rr * Math.cos(a), cy + rr * Math.sin(a)]);
  }
  return { bbox: envelope(pts), polygon: pts };
}

/**
 * Deterministic synthetic detection dataset: textured, noisy backgrounds with 1–4 circles,
 * rectangles and triangles of random colours, at varied original sizes and aspects, as JPEG and
 * PNG files with exact ground-truth boxes. Same options ⇒ byte-identical files.
 *
 * Object sizes are chosen in the space of the letterboxed image (`referenceSize`, 320 px by
 * default): both sides of every box lie within `objectSize` (24–120 px) once the original is
 * scaled by `referenceSize / max(width, height)`, whatever the original size.
 *
 * @example
 * ```ts
 * const ds = await generateDataset({ count: 50, seed: 7, outDir: "/tmp/synth" });
 * console.log(ds.images[0].fileName, ds.images[0].boxes);
 * ```
 * @module
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { z } from "zod";
import { SluiceError } from "../../../common/errors/mod.ts";
import { createRandom, type Random } from "./_random.ts";
import {
  type Canvas,
  createCanvas,
  finish,
  meanColour,
  paintBackground,
  paintShape,
  type Rgb,
  type ShapeSpec,
} from "./_raster.ts";
import { toCocoGroundTruth } from "./coco.ts";
import { toLabelStudioTasks } from "./label_studio.ts";

/** The classes the generator draws, in class-index order. */
export const SYNTHETIC_LABELS: readonly string[] = ["circle", "rectangle", "triangle"];

/** Original sizes used when `sizes` is not given: mixed aspects so letterboxing matters. */
export const DEFAULT_SIZES: readonly [number, number][] = [
  [480, 360],
  [640, 480],
  [400, 600],
  [800, 600],
  [600, 400],
  [360, 480],
  [320, 320],
];

/** `[x, y, w, h]` in original-image pixels, top-left origin (COCO convention). */
export type Box = [number, number, number, number];

export interface SyntheticBox {
  label: string;
  bbox: Box;
}

export interface SyntheticImage {
  fileName: string;
  bytes: Uint8Array;
  width: number;
  height: number;
  format: "jpeg" | "png";
  boxes: SyntheticBox[];
}

export interface SyntheticDataset {
  images: SyntheticImage[];
  /** Class names in class-index order. */
  labels: string[];
}

const sizeSchema = z.tuple([
  z.number().int().min(32).max(8192),
  z.number().int().min(32).max(8192),
]);

/** Options, validated at the edge. */
export const GenerateOptionsSchema = z.object({
  count: z.number().int().min(1).max(1_000_000),
  seed: z.number().int(),
  /** When set, image files plus `coco.json` and `labelstudio.json` are written here. */
  outDir: z.string().min(1).optional(),
  /** Original `[width, height]` choices, picked per image. */
  sizes: z.array(sizeSchema).min(1).optional(),
  /** Side of the letterboxed image in which `objectSize` holds. */
  referenceSize: z.number().int().min(32).default(320),
  /** Min and max object side (px) after letterboxing to `referenceSize`. */
  objectSize: z.tuple([z.number().min(4), z.number().min(4)]).default([24, 120]),
  /** Fraction of images written as PNG (the rest JPEG). */
  pngFraction: z.number().min(0).max(1).default(0.4),
  /** Index of the first image (so a dataset can be generated in chunks). */
  startIndex: z.number().int().min(0).default(0),
  /** Prefix of file names; the index and extension follow. */
  namePrefix: z.string().regex(/^[A-Za-z0-9_.-]*$/).optional(),
});
export type GenerateOptions = z.input<typeof GenerateOptionsSchema>;

/** An image's own PRNG, so any image can be regenerated alone with the same bytes. */
function imageRandom(seed: number, index: number): Random {
  const s = (Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) + Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  return createRandom(s);
}

function intersection(a: Box, b: Box): number {
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

function colourDistance(a: Rgb, b: Rgb): number {
  return Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]);
}

/** Picks a colour that stands out from what lies under the object (up to a few tries). */
function contrastingColour(c: Canvas, box: Box, rnd: Random): Rgb {
  const under = meanColour(c, box);
  let best: Rgb = [0, 0, 0], bestD = -1;
  for (let i = 0; i < 24; i++) {
    const col: Rgb = [rnd.uniform(0, 255), rnd.uniform(0, 255), rnd.uniform(0, 255)];
    const d = colourDistance(col, under);
    if (d >= 120) return col;
    if (d > bestD) [best, bestD] = [col, d];
  }
  return best;
}

interface Plan {
  width: number;
  height: number;
  format: "jpeg" | "png";
  quality: number;
  rgb: Uint8Array;
  boxes: SyntheticBox[];
}

function planImage(
  rnd: Random,
  sizes: readonly [number, number][],
  o: z.output<typeof GenerateOptionsSchema>,
): Plan {
  const [width, height] = rnd.pick(sizes);
  const scale = o.referenceSize / Math.max(width, height);
  // Bounds in original pixels whose letterboxed size stays inside objectSize.
  const lo = Math.ceil(o.objectSize[0] / scale);
  const hi = Math.max(lo, Math.floor(o.objectSize[1] / scale));
  const canvas = createCanvas(width, height);
  paintBackground(canvas, rnd);
  const want = rnd.int(1, 4);
  const boxes: SyntheticBox[] = [];
  for (let k = 0; k < want; k++) {
    const label = rnd.pick(SYNTHETIC_LABELS);
    for (let attempt = 0; attempt < 30; attempt++) {
      const w = Math.min(rnd.int(lo, hi), width);
      let h = w;
      if (label !== "circle") {
        // Aspect between 1:2.5 and 2.5:1, still inside the size bounds.
        const hLo = Math.max(lo, Math.ceil(w / 2.5)), hHi = Math.min(hi, Math.floor(w * 2.5));
        h = Math.min(rnd.int(hLo, Math.max(hLo, hHi)), height);
      }
      const box: Box = [rnd.int(0, width - w), rnd.int(0, height - h), w, h];
      // Overlaps are allowed, but an earlier object must stay mostly visible to be labelled.
      const hidden = boxes.some((b) => intersection(b.bbox, box) > 0.4 * b.bbox[2] * b.bbox[3]);
      if (hidden) continue;
      let shape: ShapeSpec;
      if (label === "triangle") {
        const apex = rnd.pick(["top", "bottom", "left", "right"] as const);
        shape = { kind: "triangle", box, apex, along: rnd.uniform(0, 1) };
      } else {
        shape = { kind: label === "circle" ? "circle" : "rectangle", box };
      }
      paintShape(canvas, shape, contrastingColour(canvas, box, rnd), rnd);
      boxes.push({ label, bbox: box });
      break;
    }
  }
  const rgb = finish(canvas, rnd, rnd.uniform(3, 16));
  const format = rnd.next() < o.pngFraction ? "png" : "jpeg";
  const quality = rnd.int(80, 95);
  return { width, height, format, quality, rgb, boxes };
}

async function encode(p: Plan): Promise<Uint8Array> {
  const img = sharp(p.rgb, { raw: { width: p.width, height: p.height, channels: 3 } });
  const buf = p.format === "png"
    ? await img.png({ compressionLevel: 1 }).toBuffer()
    : await img.jpeg({ quality: p.quality, chromaSubsampling: "4:2:0" }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Generates `count` images with ground truth. Each image has its own PRNG derived from
 * `(seed, index)`, so output never depends on timing or concurrency.
 *
 * @example
 * ```ts
 * const { images, labels } = await generateDataset({ count: 10, seed: 1 });
 * // images[i].bytes is a JPEG or PNG; images[i].boxes[j].bbox is [x, y, w, h] in its pixels.
 * ```
 */
export async function generateDataset(options: GenerateOptions): Promise<SyntheticDataset> {
  const parsed = GenerateOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new SluiceError(
      "invalid_options",
      `generateDataset: expected {count, seed, outDir?, sizes?, ...}, found problems: ${parsed.error.message}`,
    );
  }
  const o = parsed.data;
  if (o.objectSize[0] > o.objectSize[1]) {
    throw new SluiceError(
      "invalid_options",
      `generateDataset: objectSize expected [min, max] with min <= max, found [${o.objectSize}]`,
    );
  }
  const sizes = o.sizes ?? DEFAULT_SIZES;
  const prefix = o.namePrefix ?? `synth-${o.seed}-`;
  if (o.outDir) await mkdir(o.outDir, { recursive: true });
  const images: SyntheticImage[] = [];
  // Painting is JS on this thread while encoding runs in sharp's pool: keep a couple in flight.
  const inFlight: Promise<void>[] = [];
  for (let n = 0; n < o.count; n++) {
    const index = o.startIndex + n;
    const plan = planImage(imageRandom(o.seed, index), sizes, o);
    const fileName = `${prefix}${String(index).padStart(5, "0")}.${
      plan.format === "png" ? "png" : "jpg"
    }`;
    const slot = n;
    inFlight.push(
      encode(plan).then(async (bytes) => {
        images[slot] = {
          fileName,
          bytes,
          width: plan.width,
          height: plan.height,
          format: plan.format,
          boxes: plan.boxes,
        };
        if (o.outDir) await writeFile(join(o.outDir, fileName), bytes);
      }),
    );
    if (inFlight.length >= 3) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const dataset = { images, labels: [...SYNTHETIC_LABELS] };
  if (o.outDir) {
    await writeFile(join(o.outDir, "coco.json"), JSON.stringify(toCocoGroundTruth(dataset)));
    await writeFile(
      join(o.outDir, "labelstudio.json"),
      JSON.stringify(toLabelStudioTasks(dataset, { imageUrl: (f) => f })),
    );
  }
  return dataset;
}

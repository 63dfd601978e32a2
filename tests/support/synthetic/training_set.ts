/**
 * Lays a synthetic dataset out the way the train launcher hands data to the trainer: variant
 * images letterboxed to the input size under `images/`, `train.json` and `val.json` (COCO, boxes
 * in variant pixels) and `shards/node-<rank>.txt` (one file name per line, round-robin). Tests
 * and benchmarks use it to exercise the trainer without the ingest and normalize stages.
 *
 * @example
 * ```ts
 * const ds = await generateDataset({ count: 60, seed: 3 });
 * const set = await writeTrainingSet(ds, { dir: "/tmp/run", inputSize: 320, valCount: 12, shards: 2 });
 * // python3 train.py --data-dir /tmp/run --shard /tmp/run/shards/node-0.txt ...
 * ```
 * @module
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { z } from "zod";
import { SluiceError } from "../../../common/errors/mod.ts";
import { type CocoGroundTruth, toCocoGroundTruth } from "./coco.ts";
import type { SyntheticDataset, SyntheticImage } from "./dataset.ts";

export const TrainingSetOptionsSchema = z.object({
  dir: z.string().min(1),
  inputSize: z.number().int().min(32).default(320),
  /** The last `valCount` images become the validation split. */
  valCount: z.number().int().min(0),
  shards: z.number().int().min(1).default(1),
  /** Variant encoding; PNG keeps pixels identical across decoders (used by parity tests). */
  format: z.enum(["png", "jpeg"]).default("png"),
  /** Letterbox padding grey level. */
  pad: z.number().int().min(0).max(255).default(114),
});
export type TrainingSetOptions = z.input<typeof TrainingSetOptionsSchema>;

export interface TrainingSet {
  dir: string;
  imagesDir: string;
  trainCocoPath: string;
  valCocoPath: string;
  shardPaths: string[];
  train: CocoGroundTruth;
  val: CocoGroundTruth;
}

async function letterbox(
  img: SyntheticImage,
  size: number,
  pad: number,
  format: "png" | "jpeg",
): Promise<{ bytes: Uint8Array; boxes: SyntheticImage["boxes"] }> {
  const scale = size / Math.max(img.width, img.height);
  const nw = Math.max(1, Math.round(img.width * scale));
  const nh = Math.max(1, Math.round(img.height * scale));
  const left = Math.floor((size - nw) / 2), top = Math.floor((size - nh) / 2);
  let pipeline = sharp(img.bytes).resize(nw, nh, { fit: "fill" }).extend({
    left,
    top,
    right: size - nw - left,
    bottom: size - nh - top,
    background: { r: pad, g: pad, b: pad },
  }).removeAlpha();
  pipeline = format === "png"
    ? pipeline.png({ compressionLevel: 1 })
    : pipeline.jpeg({ quality: 92 });
  const buf = await pipeline.toBuffer();
  const sx = nw / img.width, sy = nh / img.height;
  return {
    bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength),
    boxes: img.boxes.map((b) => ({
      label: b.label,
      bbox: [b.bbox[0] * sx + left, b.bbox[1] * sy + top, b.bbox[2] * sx, b.bbox[3] * sy],
    })),
  };
}

/**
 * Writes the trainer's inputs for `dataset` under `opts.dir`.
 *
 * @example
 * ```ts
 * const set = await writeTrainingSet(ds, { dir, valCount: 10, shards: 2 });
 * console.log(set.shardPaths); // [dir/shards/node-0.txt, dir/shards/node-1.txt]
 * ```
 */
export async function writeTrainingSet(
  dataset: SyntheticDataset,
  options: TrainingSetOptions,
): Promise<TrainingSet> {
  const parsed = TrainingSetOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new SluiceError(
      "invalid_options",
      `writeTrainingSet: expected {dir, valCount, inputSize?, shards?}, found problems: ${parsed.error.message}`,
    );
  }
  const o = parsed.data;
  if (o.valCount >= dataset.images.length) {
    throw new SluiceError(
      "invalid_options",
      `writeTrainingSet: valCount expected < ${dataset.images.length} images, found ${o.valCount}`,
    );
  }
  const imagesDir = join(o.dir, "images");
  const shardsDir = join(o.dir, "shards");
  await mkdir(imagesDir, { recursive: true });
  await mkdir(shardsDir, { recursive: true });
  const ext = o.format === "png" ? "png" : "jpg";
  const variants: SyntheticImage[] = [];
  for (const img of dataset.images) {
    const { bytes, boxes } = await letterbox(img, o.inputSize, o.pad, o.format);
    const fileName = img.fileName.replace(/\.[a-z]+$/, "") + "." + ext;
    await writeFile(join(imagesDir, fileName), bytes);
    variants.push({
      ...img,
      fileName,
      bytes,
      width: o.inputSize,
      height: o.inputSize,
      format: o.format,
      boxes,
    });
  }
  const nTrain = variants.length - o.valCount;
  const all = toCocoGroundTruth({ images: variants, labels: dataset.labels });
  const split = (from: number, to: number): CocoGroundTruth => {
    const images = all.images.slice(from, to);
    const ids = new Set(images.map((i) => i.id));
    return {
      images,
      annotations: all.annotations.filter((a) => ids.has(a.image_id)),
      categories: all.categories,
    };
  };
  const train = split(0, nTrain), val = split(nTrain, variants.length);
  const trainCocoPath = join(o.dir, "train.json"), valCocoPath = join(o.dir, "val.json");
  await writeFile(trainCocoPath, JSON.stringify(train));
  await writeFile(valCocoPath, JSON.stringify(val));
  const shardPaths: string[] = [];
  for (let r = 0; r < o.shards; r++) {
    const names = train.images.filter((_, i) => i % o.shards === r).map((i) => i.file_name);
    const path = join(shardsDir, `node-${r}.txt`);
    await writeFile(path, names.join("\n") + "\n");
    shardPaths.push(path);
  }
  return { dir: o.dir, imagesDir, trainCocoPath, valCocoPath, shardPaths, train, val };
}

/**
 * Small distinct images for fault cases and the load benchmark: image `i` is a 64–256 px JPEG
 * (even `i`) or PNG (odd `i`) of a colour derived from `i` with a contrasting square at a
 * position derived from `i`, so no two images of one run share their bytes (ingest deduplicates
 * by content) and every one decodes. Encoded with real sharp.
 *
 * @example
 * ```ts
 * const img = await smallImage(7); // { name: "img_000007.png", bytes: Uint8Array, width, height }
 * await writeSmallImages("/tmp/raw", 100); // img_000000.jpg … img_000099.png
 * ```
 * @module
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";

/** One generated image. */
export interface SmallImage {
  name: string;
  bytes: Uint8Array;
  width: number;
  height: number;
}

/**
 * Image number `i` (deterministic).
 *
 * @example
 * ```ts
 * (await smallImage(0)).name; // "img_000000.jpg"
 * ```
 */
export async function smallImage(i: number): Promise<SmallImage> {
  const width = 64 + (i * 37) % 193;
  const height = 64 + (i * 59) % 193;
  // A colour per index (distinct for i < 2^21), and a square that moves with it.
  const r = (i * 67) & 0xff, g = (i >> 3) & 0xff, b = ((i >> 11) * 29 + 40) & 0xff;
  const side = 8 + i % 24;
  const square = await sharp({
    create: { width: side, height: side, channels: 3, background: { r: 255 - r, g: 255 - g, b } },
  }).png().toBuffer();
  const img = sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .composite([{ input: square, left: i % (width - side), top: (i >> 4) % (height - side) }]);
  const png = i % 2 === 1;
  const bytes = new Uint8Array(
    png ? await img.png().toBuffer() : await img.jpeg({ quality: 85 }).toBuffer(),
  );
  return { name: `img_${String(i).padStart(6, "0")}.${png ? "png" : "jpg"}`, bytes, width, height };
}

/**
 * Writes images `0 .. count-1` into `dir` (which must exist), `parallel` encodes at a time, and
 * returns their names.
 *
 * @example
 * ```ts
 * const names = await writeSmallImages(dir, 500);
 * ```
 */
export async function writeSmallImages(
  dir: string,
  count: number,
  parallel = 4,
): Promise<string[]> {
  return await generateSmallImages(count, async (img) => {
    await writeFile(join(dir, img.name), img.bytes);
  }, parallel);
}

/**
 * Generates images `0 .. count-1` and hands each to `sink` (e.g. an object-store put),
 * `parallel` at a time; returns their names in index order.
 *
 * @example
 * ```ts
 * await generateSmallImages(40, (img) => store.put(img.name, img.bytes));
 * ```
 */
export async function generateSmallImages(
  count: number,
  sink: (img: SmallImage) => Promise<void>,
  parallel = 4,
): Promise<string[]> {
  const names: string[] = new Array(count);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < count; i = next++) {
      const img = await smallImage(i);
      await sink(img);
      names[i] = img.name;
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
  return names;
}

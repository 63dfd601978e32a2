/**
 * Test images for the resizer tests: real encoded files made with sharp from drawn pixels, and
 * measurements of where a drawn, coloured rectangle ended up in a rendered image.
 * @module
 */
import sharp from "sharp";
import type { BBox } from "../manifest/mod.ts";

/** Interleaved 8-bit RGB. */
export interface Rgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A grey, textured image (R = G = B): a gradient plus a checker, so resizing has real work. */
export function texturedGrey(width: number, height: number): Rgb {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = 40 + Math.round((140 * (x + y)) / (width + height)) +
        ((((x >> 3) ^ (y >> 3)) & 1) ? 20 : 0);
      const i = (y * width + x) * 3;
      data[i] = data[i + 1] = data[i + 2] = v;
    }
  }
  return { data, width, height };
}

/** Fills an integer rectangle `[x, y, w, h]` with a colour. */
export function fillRect(img: Rgb, [x, y, w, h]: BBox, rgb: [number, number, number]): Rgb {
  for (let yy = y; yy < y + h; yy++) {
    for (let xx = x; xx < x + w; xx++) {
      const i = (yy * img.width + xx) * 3;
      img.data[i] = rgb[0];
      img.data[i + 1] = rgb[1];
      img.data[i + 2] = rgb[2];
    }
  }
  return img;
}

/** Encodes drawn pixels as a high-quality JPEG (4:4:4, so colour edges stay sharp) or PNG. */
export async function encode(
  img: Rgb,
  format: "jpeg" | "png" = "jpeg",
  opts: { orientation?: number } = {},
): Promise<Uint8Array> {
  let p = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  p = format === "jpeg" ? p.jpeg({ quality: 95, chromaSubsampling: "4:4:4" }) : p.png();
  if (opts.orientation) p = p.withMetadata({ orientation: opts.orientation });
  return await p.toBuffer();
}

/** Decodes any encoded image to RGB. */
export async function decode(bytes: Uint8Array): Promise<Rgb> {
  const { data, info } = await sharp(bytes).toColourspace("srgb").removeAlpha().raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels, found ${info.channels}`);
  return { data, width: info.width, height: info.height };
}

/** The pixel at (x, y). */
export function pixel(img: Rgb, x: number, y: number): [number, number, number] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

/**
 * Where a saturated red (`which: "red"`) or green rectangle lies, to sub-pixel precision: each
 * pixel's coverage is its colour excess over grey, normalised by the strongest; the centroid
 * and the extent (coverage mass / peak profile) give a box robust to resampling blur.
 */
export function findColouredBox(img: Rgb, which: "red" | "green"): BBox | null {
  const { width, height, data } = img;
  const cov = new Float64Array(width * height);
  let peak = 0;
  for (let i = 0, p = 0; p < width * height; i += 3, p++) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    const v = which === "red" ? r - (g + b) / 2 : g - (r + b) / 2;
    cov[p] = Math.max(0, v);
    peak = Math.max(peak, cov[p]);
  }
  if (peak < 60) return null;
  // The inside level is the median of the strong pixels (ringing overshoots are not the level).
  const ref = median(Array.from(cov).filter((v) => v > peak / 2));
  const cols = new Float64Array(width), rows = new Float64Array(height);
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // Faint colour fringes (JPEG ringing) are noise, not box.
      const c = cov[y * width + x] / ref;
      const v = c < 0.1 ? 0 : Math.min(1, c);
      cols[x] += v;
      rows[y] += v;
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  // Column sums on the plateau are the box height, row sums its width.
  const h = median(Array.from(cols).filter((v) => v > Math.max(...cols) / 2));
  const w = median(Array.from(rows).filter((v) => v > Math.max(...rows) / 2));
  const cx = mx / mass, cy = my / mass;
  return [cx - w / 2, cy - h / 2, w, h];
}

function median(values: number[]): number {
  const s = values.sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Where the stored point (x, y) of a `w × h` stored image appears after EXIF orientation `o`. */
export function orientPoint(
  o: number,
  w: number,
  h: number,
  [x, y]: [number, number],
): [number, number] {
  switch (o) {
    case 2:
      return [w - x, y];
    case 3:
      return [w - x, h - y];
    case 4:
      return [x, h - y];
    case 5:
      return [y, x];
    case 6:
      return [h - y, x];
    case 7:
      return [h - y, w - x];
    case 8:
      return [y, w - x];
    default:
      return [x, y];
  }
}

/** A stored box after EXIF orientation `o`. */
export function orientBox(o: number, w: number, h: number, [x, y, bw, bh]: BBox): BBox {
  const a = orientPoint(o, w, h, [x, y]), b = orientPoint(o, w, h, [x + bw, y + bh]);
  const x0 = Math.min(a[0], b[0]), y0 = Math.min(a[1], b[1]);
  return [x0, y0, Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1])];
}

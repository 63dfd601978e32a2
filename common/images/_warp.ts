/**
 * Affine resampling of interleaved 8-bit RGB pixels, in plain JS so that the pixels follow
 * exactly the same matrix as the boxes (see common/annotations/geometry.ts for the coordinate
 * convention: pixel (i, j) covers [i, i+1) × [j, j+1), its centre is (i + 0.5, j + 0.5)).
 * @module
 */
import { type Affine, invert } from "../annotations/geometry.ts";

const SNAP = 1e-7;

/**
 * Renders `dst[u, v] = src(M⁻¹(u + ½, v + ½))` with bilinear interpolation. Destination pixels
 * whose source point falls outside the source image get `fill`; inside, edge pixels are
 * clamped. Mappings that land on pixel centres (flips, quarter turns, integer crops) copy pixels
 * exactly: interpolation weights that are within 1e-7 of 0 or 1 are snapped.
 */
export function warpAffine(
  src: Uint8Array,
  srcWidth: number,
  srcHeight: number,
  matrix: Affine,
  dstWidth: number,
  dstHeight: number,
  fill: readonly [number, number, number],
): Uint8Array {
  const [a, b, c, d, e, f] = invert(matrix);
  const out = new Uint8Array(dstWidth * dstHeight * 3);
  const maxX = srcWidth - 1, maxY = srcHeight - 1;
  const [fr, fg, fb] = fill;
  for (let v = 0; v < dstHeight; v++) {
    const yc = v + 0.5;
    for (let u = 0; u < dstWidth; u++) {
      const xc = u + 0.5;
      const px = a * xc + b * yc + c;
      const py = d * xc + e * yc + f;
      let o = (v * dstWidth + u) * 3;
      if (!(px >= 0 && py >= 0 && px <= srcWidth && py <= srcHeight)) {
        out[o] = fr;
        out[o + 1] = fg;
        out[o + 2] = fb;
        continue;
      }
      const sx = px - 0.5, sy = py - 0.5;
      let x0 = Math.floor(sx), y0 = Math.floor(sy);
      let fx = sx - x0, fy = sy - y0;
      if (fx < SNAP) fx = 0;
      else if (fx > 1 - SNAP) {
        x0++;
        fx = 0;
      }
      if (fy < SNAP) fy = 0;
      else if (fy > 1 - SNAP) {
        y0++;
        fy = 0;
      }
      const xa = x0 < 0 ? 0 : x0 > maxX ? maxX : x0;
      const xb = x0 + 1 > maxX ? maxX : x0 + 1 < 0 ? 0 : x0 + 1;
      const ya = y0 < 0 ? 0 : y0 > maxY ? maxY : y0;
      const yb = y0 + 1 > maxY ? maxY : y0 + 1 < 0 ? 0 : y0 + 1;
      const i00 = (ya * srcWidth + xa) * 3, i10 = (ya * srcWidth + xb) * 3;
      const i01 = (yb * srcWidth + xa) * 3, i11 = (yb * srcWidth + xb) * 3;
      if (fx === 0 && fy === 0) {
        out[o++] = src[i00];
        out[o++] = src[i00 + 1];
        out[o] = src[i00 + 2];
        continue;
      }
      const w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
      for (let k = 0; k < 3; k++) {
        const val = src[i00 + k] * w00 + src[i10 + k] * w10 + src[i01 + k] * w01 +
          src[i11 + k] * w11;
        out[o + k] = val + 0.5; // Uint8Array truncates; values are within [0, 255]
      }
    }
  }
  return out;
}

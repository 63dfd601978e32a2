/**
 * Drawing into raw interleaved RGB buffers. The generator paints in JS rather than through an SVG
 * renderer so that every pixel depends only on the seed (no font or rasteriser version leaks in)
 * and so that the ground-truth box is exactly the painted extent.
 * @module
 */
import type { Random } from "./_random.ts";

/** An interleaved 8-bit RGB image being painted. */
export interface Canvas {
  width: number;
  height: number;
  /** Float working buffer (RGB interleaved), clamped to bytes at the end. */
  data: Float32Array;
}

export type Rgb = [number, number, number];

/** Shapes the generator knows how to paint; each fills its box [x, y, w, h] tightly. */
export type ShapeSpec =
  | { kind: "circle"; box: [number, number, number, number] }
  | { kind: "rectangle"; box: [number, number, number, number] }
  | {
    kind: "triangle";
    box: [number, number, number, number];
    /** Side the apex sits on and its position along that side (0..1). */
    apex: "top" | "bottom" | "left" | "right";
    along: number;
  };

export function createCanvas(width: number, height: number): Canvas {
  return { width, height, data: new Float32Array(width * height * 3) };
}

export function randomColour(rnd: Random, lo = 0, hi = 255): Rgb {
  return [rnd.uniform(lo, hi), rnd.uniform(lo, hi), rnd.uniform(lo, hi)];
}

/**
 * Linear gradient, optional sinusoidal stripes and soft blotches: enough texture that a detector
 * cannot find objects by looking for "anything not flat".
 */
export function paintBackground(c: Canvas, rnd: Random): void {
  const { width: w, height: h, data } = c;
  const c0 = randomColour(rnd, 20, 235);
  const c1 = randomColour(rnd, 20, 235);
  const theta = rnd.uniform(0, Math.PI * 2);
  const gx = Math.cos(theta), gy = Math.sin(theta);
  const corners = [0, gx * w, gy * h, gx * w + gy * h];
  const gMin = Math.min(...corners), gSpan = Math.max(...corners) - gMin || 1;
  const stripes = rnd.next() < 0.6;
  const period = rnd.uniform(0.02, 0.15) * Math.max(w, h);
  const phi = rnd.uniform(0, Math.PI);
  const sx = Math.cos(phi) * 2 * Math.PI / period, sy = Math.sin(phi) * 2 * Math.PI / period;
  const amp = stripes ? rnd.uniform(8, 40) : 0;
  const sc = randomColour(rnd, -1, 1);
  // sin(a·x + b·y) = sin(a·x)cos(b·y) + cos(a·x)sin(b·y): per-row and per-column tables keep
  // this to a few multiplies per pixel instead of a sin call.
  const sinX = new Float32Array(w), cosX = new Float32Array(w);
  for (let x = 0; x < w; x++) [sinX[x], cosX[x]] = [Math.sin(sx * x), Math.cos(sx * x)];
  const d0 = c1[0] - c0[0], d1 = c1[1] - c0[1], d2 = c1[2] - c0[2];
  const s0 = amp * sc[0], s1 = amp * sc[1], s2 = amp * sc[2];
  for (let y = 0; y < h; y++) {
    const sinY = Math.sin(sy * y), cosY = Math.cos(sy * y);
    let i = y * w * 3;
    for (let x = 0; x < w; x++, i += 3) {
      const t = (gx * x + gy * y - gMin) / gSpan;
      const s = sinX[x] * cosY + cosX[x] * sinY;
      data[i] = c0[0] + d0 * t + s * s0;
      data[i + 1] = c0[1] + d1 * t + s * s1;
      data[i + 2] = c0[2] + d2 * t + s * s2;
    }
  }
  const blotches = rnd.int(1, 6);
  const minDim = Math.min(w, h);
  for (let b = 0; b < blotches; b++) {
    const r = rnd.uniform(0.05, 0.35) * minDim;
    const cx = rnd.uniform(0, w), cy = rnd.uniform(0, h);
    const col = randomColour(rnd, 0, 255);
    const alpha = rnd.uniform(0.2, 0.6);
    const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
    const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const d2 = ((x - cx) ** 2 + (y - cy) ** 2) / (r * r);
        if (d2 >= 1) continue;
        // Smooth falloff so blotches have no edges a detector could mistake for a shape.
        const a = alpha * (1 - d2) * (1 - d2);
        const i = (y * w + x) * 3;
        data[i] += (col[0] - data[i]) * a;
        data[i + 1] += (col[1] - data[i + 1]) * a;
        data[i + 2] += (col[2] - data[i + 2]) * a;
      }
    }
  }
}

/** Mean colour of the canvas inside an integer box (sampled on a coarse grid). */
export function meanColour(c: Canvas, box: [number, number, number, number]): Rgb {
  const [bx, by, bw, bh] = box;
  const step = Math.max(1, Math.floor(Math.min(bw, bh) / 8));
  const sum: Rgb = [0, 0, 0];
  let n = 0;
  for (let y = by; y < by + bh; y += step) {
    for (let x = bx; x < bx + bw; x += step) {
      const i = (y * c.width + x) * 3;
      sum[0] += c.data[i];
      sum[1] += c.data[i + 1];
      sum[2] += c.data[i + 2];
      n++;
    }
  }
  return [sum[0] / n, sum[1] / n, sum[2] / n];
}

function insideTest(shape: ShapeSpec): (px: number, py: number) => boolean {
  const [x, y, w, h] = shape.box;
  switch (shape.kind) {
    case "rectangle":
      return (px, py) => px >= x && px < x + w && py >= y && py < y + h;
    case "circle": {
      const cx = x + w / 2, cy = y + h / 2, rx = w / 2, ry = h / 2;
      // Ellipse test so a box that is not exactly square still fills tightly.
      return (px, py) => ((px - cx) / rx) ** 2 + ((py - cy) / ry) ** 2 <= 1;
    }
    case "triangle": {
      const t = shape.along;
      let v: [number, number][];
      if (shape.apex === "top") v = [[x + t * w, y], [x + w, y + h], [x, y + h]];
      else if (shape.apex === "bottom") v = [[x, y], [x + w, y], [x + t * w, y + h]];
      else if (shape.apex === "left") v = [[x, y + t * h], [x + w, y], [x + w, y + h]];
      else v = [[x, y], [x + w, y + t * h], [x, y + h]];
      const [[ax, ay], [bx, by], [cx, cy]] = v;
      const area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
      return (px, py) => {
        const e0 = ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) * area;
        const e1 = ((cx - bx) * (py - by) - (cy - by) * (px - bx)) * area;
        const e2 = ((ax - cx) * (py - cy) - (ay - cy) * (px - cx)) * area;
        return e0 >= 0 && e1 >= 0 && e2 >= 0;
      };
    }
  }
}

/**
 * Fills a shape with a shaded colour, anti-aliased by 4 sub-samples per pixel so edges look like
 * a real resize would leave them (hard aliased edges would be an easy cue that letterboxing blurs).
 */
export function paintShape(c: Canvas, shape: ShapeSpec, colour: Rgb, rnd: Random): void {
  const inside = insideTest(shape);
  const [x, y, w, h] = shape.box;
  const shadeAngle = rnd.uniform(0, Math.PI * 2);
  const shadeAmp = rnd.uniform(0, 30);
  const sx = Math.cos(shadeAngle) * shadeAmp / Math.max(w, h);
  const sy = Math.sin(shadeAngle) * shadeAmp / Math.max(w, h);
  const x0 = Math.max(0, Math.floor(x)), x1 = Math.min(c.width, Math.ceil(x + w));
  const y0 = Math.max(0, Math.floor(y)), y1 = Math.min(c.height, Math.ceil(y + h));
  const d = c.data;
  for (let py = y0; py < y1; py++) {
    for (let px = x0; px < x1; px++) {
      let cover = 0;
      if (inside(px + 0.25, py + 0.25)) cover++;
      if (inside(px + 0.75, py + 0.25)) cover++;
      if (inside(px + 0.25, py + 0.75)) cover++;
      if (inside(px + 0.75, py + 0.75)) cover++;
      if (cover === 0) continue;
      const a = cover / 4;
      const shade = sx * (px - x - w / 2) + sy * (py - y - h / 2);
      const i = (py * c.width + px) * 3;
      d[i] += (colour[0] + shade - d[i]) * a;
      d[i + 1] += (colour[1] + shade - d[i + 1]) * a;
      d[i + 2] += (colour[2] + shade - d[i + 2]) * a;
    }
  }
}

/**
 * Adds per-pixel noise (luminance plus a little chroma) and clamps to bytes. The per-pixel draws
 * use an inline xorshift seeded from `rnd` and a normal lookup table: calling the general PRNG
 * seven times per pixel made this the slowest step of generation.
 */
export function finish(c: Canvas, rnd: Random, sigma: number): Uint8Array {
  const out = new Uint8Array(c.data.length);
  const d = c.data;
  const normals = new Float32Array(4096);
  for (let i = 0; i < normals.length; i++) normals[i] = rnd.normal() * sigma;
  const chroma = (sigma * 0.35) / 16;
  let x = (Math.floor(rnd.next() * 0xffffffff) | 1) >>> 0;
  for (let i = 0; i < d.length; i += 3) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const l = normals[x & 4095];
    const v0 = d[i] + l + (((x >>> 12) & 31) - 15.5) * chroma;
    const v1 = d[i + 1] + l + (((x >>> 17) & 31) - 15.5) * chroma;
    const v2 = d[i + 2] + l + (((x >>> 22) & 31) - 15.5) * chroma;
    out[i] = v0 < 0 ? 0 : v0 > 255 ? 255 : Math.round(v0);
    out[i + 1] = v1 < 0 ? 0 : v1 > 255 ? 255 : Math.round(v1);
    out[i + 2] = v2 < 0 ? 0 : v2 > 255 ? 255 : Math.round(v2);
  }
  return out;
}

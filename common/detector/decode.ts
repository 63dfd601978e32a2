/**
 * Decodes the Sluice detector's outputs (`heatmap`, `size`, `offset`; see the trainer's
 * `model_card.json`) into boxes in input (variant) pixels, then class-wise NMS, score threshold
 * and top-k. It mirrors `stages/train/trainer/decode.py` step for step (the decoding the trainer
 * scored its mAP with):
 *
 * 1. peaks: cells whose score is the maximum of their 3×3 neighbourhood (a 3×3 max-pool with
 *    -inf padding) and `>= scoreThreshold` (compared in float32);
 * 2. candidates sorted by score descending, ties by flat index (class, y, x); first `preNmsTopK`;
 * 3. centre `((x + offset₀) · stride, (y + offset₁) · stride)`, size `(size₀, size₁)` in pixels,
 *    corners clipped to the input, empty boxes dropped;
 * 4. greedy NMS per class: drop a box whose IoU with a kept box of its class is `> nmsIou`;
 * 5. the first `topK` survivors.
 *
 * @example
 * ```ts
 * const out = await session.run({ images: new ort.Tensor("float32", input, [1, 3, 320, 320]) });
 * const [dets] = decodeDetections({ heatmap: out.heatmap, size: out.size, offset: out.offset });
 * for (const d of dets) console.log(labels[d.classId], d.score, d.bbox);
 * ```
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import { iouXywh } from "./box_iou.ts";

/** What decoding needs from a tensor (onnxruntime-node's `Tensor` fits). */
export interface TensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
}

export interface DetectorOutputs {
  heatmap: TensorLike;
  size: TensorLike;
  offset: TensorLike;
}

export interface Detection {
  classId: number;
  score: number;
  /** `[x, y, w, h]` in input pixels. */
  bbox: [number, number, number, number];
}

export const DecodeOptionsSchema = z.object({
  stride: z.number().int().min(1).default(4),
  scoreThreshold: z.number().min(0).max(1).default(0.05),
  preNmsTopK: z.number().int().min(1).default(100),
  nmsIou: z.number().min(0).max(1).default(0.5),
  topK: z.number().int().min(1).default(100),
  /** Input size in pixels; default map size × stride. */
  inputWidth: z.number().positive().optional(),
  inputHeight: z.number().positive().optional(),
});
export type DecodeOptions = z.input<typeof DecodeOptionsSchema>;

export class DetectorOutputError extends SluiceError {
  constructor(message: string) {
    super("invalid_model_output", message);
    this.name = "DetectorOutputError";
  }
}

function asFloat32(name: string, t: TensorLike, dims: number[]): Float32Array {
  if (!(t.data instanceof Float32Array)) {
    throw new DetectorOutputError(
      `${name}: expected float32 data, found ${Object.prototype.toString.call(t.data)}`,
    );
  }
  const ok = t.dims.length === 4 && dims.every((d, i) => d < 0 || t.dims[i] === d);
  if (!ok) {
    throw new DetectorOutputError(
      `${name}: expected dims [${dims.map((d) => d < 0 ? "?" : d)}], found [${t.dims}]`,
    );
  }
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) {
    throw new DetectorOutputError(
      `${name}: expected ${n} values for dims [${t.dims}], found ${t.data.length}`,
    );
  }
  return t.data;
}

/**
 * Decodes every image of a batch.
 *
 * @example
 * ```ts
 * const perImage = decodeDetections(outputs, { scoreThreshold: 0.3 });
 * ```
 */
export function decodeDetections(
  outputs: DetectorOutputs,
  options: DecodeOptions = {},
): Detection[][] {
  const parsed = DecodeOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new SluiceError(
      "invalid_options",
      `decodeDetections: expected valid options, found problems: ${parsed.error.message}`,
    );
  }
  const o = parsed.data;
  const hmDims = outputs.heatmap.dims;
  const hm = asFloat32("heatmap", outputs.heatmap, [-1, -1, -1, -1]);
  const [n, c, h, w] = hmDims;
  const size = asFloat32("size", outputs.size, [n, 2, h, w]);
  const off = asFloat32("offset", outputs.offset, [n, 2, h, w]);
  const result: Detection[][] = [];
  for (let i = 0; i < n; i++) {
    result.push(
      decodeOne(
        hm.subarray(i * c * h * w, (i + 1) * c * h * w),
        size.subarray(i * 2 * h * w, (i + 1) * 2 * h * w),
        off.subarray(i * 2 * h * w, (i + 1) * 2 * h * w),
        c,
        h,
        w,
        o,
      ),
    );
  }
  return result;
}

function decodeOne(
  hm: Float32Array,
  size: Float32Array,
  off: Float32Array,
  c: number,
  h: number,
  w: number,
  o: z.output<typeof DecodeOptionsSchema>,
): Detection[] {
  const threshold = Math.fround(o.scoreThreshold);
  const inW = o.inputWidth ?? w * o.stride;
  const inH = o.inputHeight ?? h * o.stride;
  const plane = h * w;
  const candidates: number[] = [];
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const idx = k * plane + y * w + x;
        const v = hm[idx];
        if (!(v >= threshold)) continue;
        let peak = true;
        for (let dy = -1; dy <= 1 && peak; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= h) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= w) continue;
            if (hm[k * plane + yy * w + xx] > v) {
              peak = false;
              break;
            }
          }
        }
        if (peak) candidates.push(idx);
      }
    }
  }
  // Candidates are already in flat-index order, so a stable sort gives index order on ties.
  candidates.sort((a, b) => hm[b] - hm[a]);
  const kept: Detection[] = [];
  for (const idx of candidates.slice(0, o.preNmsTopK)) {
    const classId = Math.floor(idx / plane);
    const rem = idx - classId * plane;
    const y = Math.floor(rem / w), x = rem - y * w;
    const cx = (x + off[rem]) * o.stride;
    const cy = (y + off[plane + rem]) * o.stride;
    const bw = size[rem], bh = size[plane + rem];
    const x1 = Math.max(0, cx - bw / 2);
    const y1 = Math.max(0, cy - bh / 2);
    const x2 = Math.min(inW, cx + bw / 2);
    const y2 = Math.min(inH, cy + bh / 2);
    if (!(x2 > x1 && y2 > y1)) continue;
    const bbox: [number, number, number, number] = [x1, y1, x2 - x1, y2 - y1];
    if (kept.some((d) => d.classId === classId && iouXywh(d.bbox, bbox) > o.nmsIou)) continue;
    kept.push({ classId, score: hm[idx], bbox });
    if (kept.length >= o.topK) break;
  }
  return kept;
}

/**
 * From detector outputs to boxes on the original image: decode peaks into boxes in tensor
 * pixels (common/detector/decode.ts, class-wise NMS unless the graph already did it), apply the
 * score threshold, then map each box back through the letterbox transform the preprocessing
 * recorded (`boxFromVariant`), clipped to the image.
 *
 * @example
 * ```ts
 * const perImage = decodeBatch(outputs, spec, { scoreThreshold: 0.3 });
 * const boxes = toOriginalBoxes(perImage[0], transforms[0], spec.labels);
 * ```
 * @module
 */
import { decodeDetections, type Detection } from "../../common/detector/decode.ts";
import { boxFromVariant } from "../../common/images/variant_transform.ts";
import type { PredictionBox, VariantTransform } from "../../common/manifest/mod.ts";
import type { DetectorSpec } from "./model_card.ts";
import type { WireTensor } from "./detector_session.ts";

/** Output-side settings. */
export interface PostprocessOptions {
  /** Boxes scoring below this are dropped. */
  scoreThreshold: number;
  /** Overrides the model card's NMS IoU. */
  nmsIou?: number;
}

/**
 * Decodes a batch of outputs into detections per image, in tensor pixels.
 *
 * @example
 * ```ts
 * const [dets] = decodeBatch(outputs, spec, { scoreThreshold: 0.25 });
 * ```
 */
export function decodeBatch(
  outputs: Record<string, WireTensor>,
  spec: DetectorSpec,
  opts: PostprocessOptions,
): Detection[][] {
  // Below-threshold boxes sort after every kept one, so they could never suppress a kept box:
  // decoding at the output threshold gives the same boxes as decoding low and filtering.
  const threshold = Math.max(spec.decode.scoreThreshold, opts.scoreThreshold);
  return decodeDetections(
    {
      heatmap: outputs[spec.outputs.heatmap],
      size: outputs[spec.outputs.size],
      offset: outputs[spec.outputs.offset],
    },
    {
      stride: spec.stride,
      scoreThreshold: threshold,
      preNmsTopK: spec.decode.preNmsTopK,
      // IoU is never above 1, so 1 keeps every box: the graph's own NMS stands.
      nmsIou: spec.decode.nmsInGraph ? 1 : (opts.nmsIou ?? spec.decode.nmsIou),
      topK: spec.decode.topK,
      inputWidth: spec.inputWidth,
      inputHeight: spec.inputHeight,
    },
  );
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/**
 * Maps detections from tensor pixels to original-image pixels, clipped to the image; boxes that
 * lie entirely in the letterbox padding are dropped. Coordinates are rounded to 1/1000 px and
 * scores to 6 decimals, so every host writes the same numbers.
 *
 * @example
 * ```ts
 * toOriginalBoxes([{ classId: 0, score: 0.9, bbox: [10, 50, 20, 20] }], t, ["cat"]);
 * // [{ label: "cat", score: 0.9, bbox: [...] }] in source pixels
 * ```
 */
export function toOriginalBoxes(
  detections: readonly Detection[],
  transform: VariantTransform,
  labels: readonly string[],
): PredictionBox[] {
  const out: PredictionBox[] = [];
  for (const d of detections) {
    const box = boxFromVariant(transform, d.bbox);
    if (!box) continue;
    const bbox: [number, number, number, number] = [
      round3(box[0]),
      round3(box[1]),
      round3(box[2]),
      round3(box[3]),
    ];
    if (!(bbox[2] > 0 && bbox[3] > 0)) continue;
    out.push({
      label: labels[d.classId] ?? `class_${d.classId}`,
      bbox,
      score: Math.round(d.score * 1e6) / 1e6,
    });
  }
  return out;
}

/**
 * The image-level score: the mean box score (0 without boxes).
 *
 * @example
 * ```ts
 * imageScore([{ label: "a", bbox: [0, 0, 1, 1], score: 0.5 }, { label: "a", bbox: [0, 0, 1, 1], score: 1 }]); // 0.75
 * ```
 */
export function imageScore(boxes: readonly PredictionBox[]): number {
  if (boxes.length === 0) return 0;
  return boxes.reduce((s, b) => s + b.score, 0) / boxes.length;
}

import assert from "node:assert/strict";
import { planVariant } from "../../common/images/variant_transform.ts";
import type { DetectorSpec } from "./model_card.ts";
import type { WireTensor } from "./detector_session.ts";
import { decodeBatch, imageScore, toOriginalBoxes } from "./postprocess.ts";

const SIDE = 20, STRIDE = 4, INPUT = SIDE * STRIDE;

const SPEC: DetectorSpec = {
  format: "sluice-centernet/1",
  inputName: "images",
  inputWidth: INPUT,
  inputHeight: INPUT,
  outputs: { heatmap: "heatmap", size: "size", offset: "offset" },
  stride: STRIDE,
  labels: ["cat", "dog"],
  categoryIds: [1, 2],
  decode: { scoreThreshold: 0.05, preNmsTopK: 100, nmsIou: 0.5, topK: 100, nmsInGraph: false },
};

interface Peak {
  n: number;
  c: number;
  x: number;
  y: number;
  score: number;
  off: [number, number];
  size: [number, number];
}

/** Detector outputs for a batch of `n` images with the given peaks. */
function outputs(n: number, peaks: Peak[]): Record<string, WireTensor> {
  const C = SPEC.labels.length, plane = SIDE * SIDE;
  const heatmap = new Float32Array(n * C * plane);
  const size = new Float32Array(n * 2 * plane);
  const offset = new Float32Array(n * 2 * plane);
  for (const p of peaks) {
    const cell = p.y * SIDE + p.x;
    heatmap[(p.n * C + p.c) * plane + cell] = p.score;
    size[p.n * 2 * plane + cell] = p.size[0];
    size[p.n * 2 * plane + plane + cell] = p.size[1];
    offset[p.n * 2 * plane + cell] = p.off[0];
    offset[p.n * 2 * plane + plane + cell] = p.off[1];
  }
  return {
    heatmap: { data: heatmap, dims: [n, C, SIDE, SIDE] },
    size: { data: size, dims: [n, 2, SIDE, SIDE] },
    offset: { data: offset, dims: [n, 2, SIDE, SIDE] },
  };
}

Deno.test("decoded boxes map back to original pixels through the letterbox transform", () => {
  // 160×100 letterboxed to 80×80: scale 0.5, content 80×50, 15 px of padding above.
  const t = planVariant(160, 100, { width: INPUT, height: INPUT, mode: "letterbox" });
  assert.deepEqual([t.scaleX, t.scaleY, t.padX, t.padY], [0.5, 0.5, 0, 15]);
  const out = outputs(2, [
    // Centre ((5 + 0.25) · 4, (7 + 0.5) · 4) = (21, 30), 16×12 → [13, 24, 16, 12] in the tensor.
    { n: 0, c: 1, x: 5, y: 7, score: 0.9, off: [0.25, 0.5], size: [16, 12] },
    // Below the output threshold.
    { n: 0, c: 0, x: 15, y: 15, score: 0.2, off: [0, 0], size: [8, 8] },
    // Entirely in the top padding (y < 15): nothing of it is on the image.
    { n: 0, c: 0, x: 10, y: 1, score: 0.8, off: [0.5, 0.5], size: [8, 4] },
    // The second image of the batch.
    { n: 1, c: 0, x: 10, y: 10, score: 0.7, off: [0, 0], size: [20, 20] },
  ]);
  const perImage = decodeBatch(out, SPEC, { scoreThreshold: 0.25 });
  assert.equal(perImage.length, 2);
  assert.deepEqual(perImage[0].map((d) => [d.classId, d.bbox]), [[1, [13, 24, 16, 12]], [0, [
    38,
    4,
    8,
    4,
  ]]]);
  const boxes = toOriginalBoxes(perImage[0], t, SPEC.labels);
  assert.deepEqual(boxes, [{ label: "dog", bbox: [26, 18, 32, 24], score: 0.9 }]);
  const second = toOriginalBoxes(perImage[1], t, SPEC.labels);
  // [30, 30, 20, 20] in the tensor → x 60, y (30 − 15) / 0.5 = 30, 40×40.
  assert.deepEqual(second, [{ label: "cat", bbox: [60, 30, 40, 40], score: 0.7 }]);
  assert.equal(imageScore(boxes), 0.9);
  assert.equal(imageScore([]), 0);
});

Deno.test("boxes crossing the image edge are clipped to it; scores and coordinates are rounded", () => {
  const t = planVariant(160, 100, { width: INPUT, height: INPUT, mode: "letterbox" });
  // [2, 10, 12, 12] in the tensor: its top 5 px lie in the padding.
  const [dets] = decodeBatch(
    outputs(1, [{ n: 0, c: 0, x: 2, y: 4, score: 0.612345678, off: [0, 0], size: [12, 12] }]),
    SPEC,
    { scoreThreshold: 0.25 },
  );
  const [box] = toOriginalBoxes(dets, t, SPEC.labels);
  assert.deepEqual(box.bbox, [4, 0, 24, 14]);
  assert.equal(box.score, 0.612346);
});

Deno.test("class-wise NMS applies unless the graph already did it", () => {
  const peaks: Peak[] = [
    { n: 0, c: 0, x: 5, y: 5, score: 0.9, off: [0, 0], size: [16, 16] },
    // Same class, shifted by 4 px: IoU (12·16) / (2·256 − 192) = 0.6 > 0.5.
    { n: 0, c: 0, x: 6, y: 5, score: 0.8, off: [0, 0], size: [16, 16] },
    // Other class on the very same box (size and offset maps are shared by all classes):
    // never suppressed by class 0.
    { n: 0, c: 1, x: 5, y: 5, score: 0.7, off: [0, 0], size: [16, 16] },
  ];
  // Peaks must be 3×3 maxima of their class map: x 5 and 6 are neighbours, so move one apart.
  peaks[1].x = 7;
  peaks[1].off = [-1, 0];
  const out = outputs(1, peaks);
  const [withNms] = decodeBatch(out, SPEC, { scoreThreshold: 0.25 });
  assert.deepEqual(withNms.map((d) => [d.classId, d.score]), [[0, Math.fround(0.9)], [
    1,
    Math.fround(0.7),
  ]]);
  const [graphNms] = decodeBatch(out, { ...SPEC, decode: { ...SPEC.decode, nmsInGraph: true } }, {
    scoreThreshold: 0.25,
  });
  assert.equal(graphNms.length, 3);
  const [looser] = decodeBatch(out, SPEC, { scoreThreshold: 0.25, nmsIou: 0.7 });
  assert.equal(looser.length, 3);
});

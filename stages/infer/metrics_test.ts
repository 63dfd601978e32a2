import assert from "node:assert/strict";
import { createInferMetrics } from "./metrics.ts";

Deno.test("infer metrics: predictions per class and the score distribution", async () => {
  const m = createInferMetrics();
  m.observeBoxes([
    { label: "car", score: 0.92 },
    { label: "car", score: 0.35 },
    { label: "person", score: 0.61 },
  ]);
  const text = await m.metrics();
  assert.match(text, /^sluice_infer_predictions_by_class_total\{label="car"\} 2$/m);
  assert.match(text, /^sluice_infer_predictions_by_class_total\{label="person"\} 1$/m);
  assert.match(text, /^sluice_infer_detection_score_bucket\{le="0.4"\} 1$/m);
  assert.match(text, /^sluice_infer_detection_score_bucket\{le="0.7"\} 2$/m);
  assert.match(text, /^sluice_infer_detection_score_count 3$/m);
});

import assert from "node:assert/strict";
import { compareInferRows, engineOfPythonBackend } from "./infer_comparison.ts";

Deno.test("infer bench rows are compared only when the same engine ran", () => {
  const sluice = { engine: "onnxruntime" as const, imagesPerSec: 40 };
  const fallback = compareInferRows(sluice, {
    engine: engineOfPythonBackend("torch"),
    imagesPerSec: 80,
  });
  assert.equal(fallback.comparable, false);
  assert.match(fallback.verdict, /^NOT COMPARABLE \(onnxruntime vs torch/);
  const same = compareInferRows(sluice, { engine: "onnxruntime", imagesPerSec: 40 });
  assert.deepEqual(same, { ratio: 1, comparable: true, verdict: "PASS" });
  assert.equal(
    compareInferRows(sluice, { engine: "onnxruntime", imagesPerSec: 50 }).verdict,
    "BELOW TARGET",
  );
  assert.throws(() => engineOfPythonBackend("tensorrt"), /expected python backend/);
});

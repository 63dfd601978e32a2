/**
 * Test child: loads onnxruntime-node the way the infer detector worker does (the preload first,
 * with SLUICE_RUNTIME_CACHE_DIR set by the test), runs `add_one.onnx` and prints the output and
 * the paths libonnxruntime and the binding were mapped from.
 *
 * `add_one.onnx` (97 bytes) is `y = x + 1` on a float vector, opset 13, made with Python's
 * `onnx.helper` (make_node("Add", ["x", "one"], ["y"]) with the initializer one = [1.0]).
 * @module
 */
import "../onnxruntime_preload.ts";
import * as ort from "onnxruntime-node";

const session = await ort.InferenceSession.create(
  new URL("./add_one.onnx", import.meta.url).pathname,
);
const out = await session.run({ x: new ort.Tensor("float32", new Float32Array([1, 2.5]), [2]) });
const mapped = [
  ...new Set(
    Deno.readTextFileSync("/proc/self/maps").split("\n").map((l) =>
      l.split(/\s+/).slice(5).join(" ")
    )
      .filter((p) => /onnxruntime[^/]*\.(node|so[.0-9]*)$/.test(p)),
  ),
];
console.log(JSON.stringify({ y: [...(out.y.data as Float32Array)], mapped }));

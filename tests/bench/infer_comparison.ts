/**
 * How the infer benchmark compares its two rows. The Python side runs onnxruntime when it can be
 * imported and otherwise PyTorch; each row carries the engine that actually ran, and a ratio is
 * held against the target only when both rows ran the same engine (ONNX Runtime). Otherwise
 * the verdict says the rows are not comparable instead of reporting PASS or BELOW TARGET.
 *
 * @example
 * ```ts
 * compareInferRows({ engine: "onnxruntime", imagesPerSec: 50 }, { engine: "torch", imagesPerSec: 40 });
 * // { ratio: 1.25, comparable: false, verdict: "NOT COMPARABLE (onnxruntime vs torch)" }
 * ```
 * @module
 */

/** The engine family of a row: ONNX Runtime (node or Python) or PyTorch. */
export type InferEngine = "onnxruntime" | "torch";

/** The part of a benchmark row the comparison reads. */
export interface InferRowEngine {
  engine: InferEngine;
  imagesPerSec: number;
}

/** The benchmark's throughput target: Sluice at least this fraction of Python's. */
export const INFER_TARGET_RATIO = 0.95;

/**
 * The engine a Python backend name stands for; throws on an unknown name rather than guess.
 *
 * @example
 * ```ts
 * engineOfPythonBackend("onnxruntime"); // "onnxruntime"
 * ```
 */
export function engineOfPythonBackend(backend: string): InferEngine {
  if (backend === "onnxruntime" || backend === "torch") return backend;
  throw new Error(`infer bench: expected python backend onnxruntime or torch, found ${backend}`);
}

/**
 * Ratio of Sluice to Python throughput and the verdict against {@link INFER_TARGET_RATIO}.
 *
 * @example
 * ```ts
 * compareInferRows(sluice, python).verdict; // "PASS", "BELOW TARGET" or "NOT COMPARABLE (…)"
 * ```
 */
export function compareInferRows(
  sluice: InferRowEngine,
  python: InferRowEngine,
): { ratio: number; comparable: boolean; verdict: string } {
  const ratio = sluice.imagesPerSec / python.imagesPerSec;
  const comparable = sluice.engine === python.engine;
  const verdict = !comparable
    ? `NOT COMPARABLE (${sluice.engine} vs ${python.engine}: install python3 onnxruntime)`
    : ratio >= INFER_TARGET_RATIO
    ? "PASS"
    : "BELOW TARGET";
  return { ratio, comparable, verdict };
}

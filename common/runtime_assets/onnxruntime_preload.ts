/**
 * Side-effect module: loads onnxruntime-node's binding (and libonnxruntime) from the runtime
 * cache. Import it first in every module graph that imports onnxruntime-node (the infer detector
 * worker: each worker is its own isolate with its own require cache).
 *
 * @example
 * ```ts
 * import "../../common/runtime_assets/onnxruntime_preload.ts"; // before onnxruntime-node
 * ```
 * @module
 */
import { preloadNativeAddon } from "./preload.ts";

preloadNativeAddon("onnxruntime");

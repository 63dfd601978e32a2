/**
 * Test child: materialises onnxruntime-node's binding and libonnxruntime (≈ 46 MB, a wide window
 * for a race) into the cache directory given as the first argument and prints the result as JSON.
 * Run two at once to check that concurrent first starts agree on one intact directory.
 * @module
 */
import { materialiseFiles } from "../materialise.ts";
import { onnxRuntimeAddon } from "../native_addons.ts";

const source = onnxRuntimeAddon();
const r = materialiseFiles({ cacheDir: Deno.args[0], name: source.name, files: source.files });
console.log(JSON.stringify(r));

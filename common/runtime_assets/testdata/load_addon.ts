/**
 * Test child: loads the `.node` file given as the first argument with `require`, the way a
 * package loads its addon, and prints "loaded" (or fails with the loader's error).
 * @module
 */
import { createRequire } from "node:module";

createRequire(import.meta.url)(Deno.args[0]);
console.log("loaded");

/**
 * Test child: loads the sharp package at the entry file given as the first argument (a copy laid
 * out like a compiled binary's, where the addon's rpath finds no libvips), optionally after
 * installing its addon from the runtime cache given as the second argument; then resizes an image
 * and prints the result and the paths libvips and the addon were mapped from.
 * @module
 */
import { createRequire } from "node:module";
import { installNativeAddon, sharpAddon } from "../native_addons.ts";

const [entry, cacheDir] = Deno.args;
if (cacheDir) installNativeAddon(sharpAddon(entry), cacheDir);
const sharp = createRequire(import.meta.url)(entry);
const { info } = await sharp({
  create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 10, b: 10 } },
}).resize(32, 24).jpeg().toBuffer({ resolveWithObject: true });
const mapped = [
  ...new Set(
    Deno.readTextFileSync("/proc/self/maps").split("\n").map((l) =>
      l.split(/\s+/).slice(5).join(" ")
    )
      .filter((p) => /libvips-cpp|sharp-linux/.test(p)),
  ),
];
console.log(
  JSON.stringify({ width: info.width, height: info.height, format: info.format, mapped }),
);

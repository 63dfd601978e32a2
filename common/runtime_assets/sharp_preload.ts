/**
 * Side-effect module: loads sharp's native addon (and libvips) from the runtime cache. Import it
 * first in every entry point whose module graph imports sharp, so that it runs before sharp does.
 *
 * @example
 * ```ts
 * import "../../common/runtime_assets/sharp_preload.ts"; // first import of stages/<stage>/main.ts
 * ```
 * @module
 */
import { preloadNativeAddon } from "./preload.ts";

preloadNativeAddon("sharp");

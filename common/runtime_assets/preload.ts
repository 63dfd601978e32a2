/**
 * Loads a native addon from the runtime cache while modules are being evaluated (see
 * `native_addons.ts`); `sharp_preload.ts` and `onnxruntime_preload.ts` call it as a side effect.
 *
 * In a compiled binary a failure is fatal: the package could not load its addon anyway, and the
 * error says why (an unwritable cache names `runtime.cacheDir`). Under `deno run` the package's
 * own addon works, so a failure is reported on stderr and the package loads its own copy; so does
 * an entry point that imported the package first (tests do).
 *
 * @example
 * ```ts
 * preloadNativeAddon("sharp"); // before `import sharp from "sharp"` is evaluated
 * ```
 * @module
 */
import { createRequire } from "node:module";
import { earlyCacheDir } from "./cache_dir.ts";
import {
  type InstalledAddon,
  installNativeAddon,
  type NativeAddonKind,
  nativeAddonSource,
} from "./native_addons.ts";

const require = createRequire(import.meta.url);

/** Installs the addon `kind` from the runtime cache; undefined when it was left to the package. */
export function preloadNativeAddon(
  kind: NativeAddonKind,
  standalone = Deno.build.standalone === true,
): InstalledAddon | undefined {
  try {
    const source = nativeAddonSource(kind);
    if (!standalone && require.cache[source.requireKey]) return undefined;
    return installNativeAddon(source, earlyCacheDir());
  } catch (err) {
    if (standalone) throw err;
    console.error(
      `sluice: ${kind} native addon not loaded from the runtime cache (${
        err instanceof Error ? err.message : String(err)
      }); using the package's own copy`,
    );
    return undefined;
  }
}

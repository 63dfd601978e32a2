/**
 * Runtime assets: everything a stage binary needs as a real file, materialised on first start into
 * a versioned, content-addressed directory of the runtime cache (`runtime.cacheDir`, default
 * `<staging.root>/runtime-cache`, else `$XDG_CACHE_HOME/sluice`), atomically, and reused after.
 *
 * - Native addons (sharp + libvips, onnxruntime-node + libonnxruntime): loaded from the cache by
 *   `sharp_preload.ts` / `onnxruntime_preload.ts`, imported first by the entry points.
 * - Directories of files other programs read (the Python trainer): {@link materialiseRuntimeAssets}
 *   with `directories`, called by a stage at start-up once its configuration is loaded.
 *
 * @example
 * ```ts
 * import "../../common/runtime_assets/sharp_preload.ts";
 * // ... after loading the configuration:
 * const assets = await materialiseRuntimeAssets(config, {
 *   addons: ["onnxruntime"],
 *   directories: { trainer: { source: "/app/stages/train/trainer", include: /\.py$/ } },
 * });
 * assets.directories.trainer; // "/mnt/nvme/sluice/runtime-cache/trainer-…"
 * ```
 * @module
 */
import { join } from "node:path";
import { SluiceError } from "../errors/mod.ts";
import { cacheDirOf } from "./cache_dir.ts";
import { materialiseFiles } from "./materialise.ts";
import { installedAddons, type NativeAddonKind, nativeAddonSource } from "./native_addons.ts";

export { cacheDirOf, defaultCacheDir, earlyCacheDir } from "./cache_dir.ts";
export { type AssetFile, type AssetSpec, materialiseFiles } from "./materialise.ts";
export {
  type InstalledAddon,
  installedAddons,
  installNativeAddon,
  NATIVE_ADDONS,
  type NativeAddonKind,
  nativeAddonSource,
  onnxRuntimeAddon,
  sharpAddon,
} from "./native_addons.ts";

/** A directory of files to materialise (its top level only). */
export interface DirectoryAsset {
  /** Where the files are (module-relative, so a compiled binary reads its embedded copy). */
  source: string;
  /** Which file names to take. */
  include: RegExp;
}

/** What to materialise besides the addons already loaded. */
export interface RuntimeAssetNeeds {
  /** Addons to materialise now without loading them (a worker loads them later). */
  addons?: readonly NativeAddonKind[];
  /** Named directories to materialise. */
  directories?: Readonly<Record<string, DirectoryAsset>>;
}

/** Where everything is. */
export interface RuntimeAssets {
  cacheDir: string;
  /** Addon name → materialised directory (loaded ones and those asked for). */
  addons: Partial<Record<NativeAddonKind, string>>;
  /** Directory name → materialised directory. */
  directories: Record<string, string>;
}

function directoryFiles(name: string, asset: DirectoryAsset) {
  let names: string[];
  try {
    names = [...Deno.readDirSync(asset.source)].filter((e) =>
      e.isFile && asset.include.test(e.name)
    )
      .map((e) => e.name).sort();
  } catch (err) {
    throw new SluiceError(
      "runtime_asset_missing",
      `runtime asset ${name}: cannot list ${asset.source}: ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
  if (names.length === 0) {
    throw new SluiceError(
      "runtime_asset_missing",
      `runtime asset ${name}: expected files matching ${asset.include} in ${asset.source}, found none`,
    );
  }
  return names.map((n) => ({ from: join(asset.source, n), to: n }));
}

/**
 * Materialises what `needs` lists into the configured runtime cache and returns where everything
 * is. In a compiled binary (`standalone`), throws when an addon was loaded from another cache
 * directory than the configuration names (set the cache where both see it: flag,
 * `SLUICE_RUNTIME_CACHE_DIR` or the config file); under `deno run` (tests calling a stage's
 * `main` in-process) an addon loaded from elsewhere is simply left in place.
 */
export function materialiseRuntimeAssets(
  config: { runtime: { cacheDir?: string }; staging: { root: string } },
  needs: RuntimeAssetNeeds = {},
  standalone = Deno.build.standalone === true,
): Promise<RuntimeAssets> {
  try {
    const cacheDir = cacheDirOf(config);
    const addons: RuntimeAssets["addons"] = {};
    for (const a of installedAddons()) {
      if (standalone && !a.dir.startsWith(cacheDir + "/")) {
        throw new SluiceError(
          "runtime_cache_mismatch",
          `runtime cache: the ${a.kind} addon was loaded from ${a.dir}, expected under ` +
            `${cacheDir} (runtime.cacheDir); set the cache directory by flag, environment or ` +
            `config file, where start-up code reads it`,
        );
      }
      addons[a.kind] = a.dir;
    }
    for (const kind of needs.addons ?? []) {
      if (addons[kind]) continue;
      const source = nativeAddonSource(kind);
      addons[kind] = materialiseFiles({ cacheDir, name: source.name, files: source.files }).dir;
    }
    const directories: Record<string, string> = {};
    for (const [name, asset] of Object.entries(needs.directories ?? {})) {
      directories[name] = materialiseFiles({
        cacheDir,
        name,
        files: directoryFiles(name, asset),
      }).dir;
    }
    return Promise.resolve({ cacheDir, addons, directories });
  } catch (err) {
    return Promise.reject(err);
  }
}

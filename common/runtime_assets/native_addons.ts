/**
 * The native addons the stages load (sharp with libvips, onnxruntime-node with libonnxruntime),
 * materialised into the runtime cache and loaded from there.
 *
 * Why: a compiled binary (`deno compile`) extracts a `.node` file alone to a temporary path, so its
 * relative rpath (sharp: `$ORIGIN/../../sharp-libvips-linux-x64/lib`; onnxruntime: `$ORIGIN/`)
 * no longer finds the shared library it needs (denoland/deno#32198). Here the addon and its
 * libraries are written in their package layout, so the rpath resolves; the addon is loaded from
 * there with `require`; and its module is registered in the require cache under the path the
 * package's own loader asks for (sharp: `require("@img/sharp-linux-x64/sharp.node")`, resolved
 * from sharp's directory; onnxruntime-node: `require("../bin/napi-v6/linux/x64/…node")` from its
 * `dist/`), so the package uses the materialised addon instead of extracting its own.
 *
 * This must run before the package is evaluated: import `./sharp_preload.ts` or
 * `./onnxruntime_preload.ts` as the first import of an entry point.
 *
 * @example
 * ```ts
 * const addon = installNativeAddon(sharpAddon(), "/var/cache/sluice");
 * const { default: sharp } = await import("sharp"); // uses addon.addonPath
 * ```
 * @module
 */
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { SluiceError } from "../errors/mod.ts";
import { type AssetFile, materialiseFiles } from "./materialise.ts";

const require = createRequire(import.meta.url);

/** Where an addon comes from and how its package asks for it. */
export interface NativeAddonSource {
  /** Short name: "sharp" or "onnxruntime". */
  kind: NativeAddonKind;
  /** Cache directory name prefix (package, version, platform). */
  name: string;
  /** The files to materialise (the addon and the shared libraries it needs). */
  files: AssetFile[];
  /** The addon's path inside the materialised directory. */
  addonRel: string;
  /** The require-cache key the package's own `require` resolves to. */
  requireKey: string;
}

/** The addons {@link nativeAddonSource} knows. */
export const NATIVE_ADDONS = ["sharp", "onnxruntime"] as const;
/** One of {@link NATIVE_ADDONS}. */
export type NativeAddonKind = typeof NATIVE_ADDONS[number];

/** A loaded addon. */
export interface InstalledAddon {
  kind: NativeAddonKind;
  /** The materialised directory. */
  dir: string;
  /** The `.node` file loaded. */
  addonPath: string;
  /** Whether this process wrote the directory (false: reused). */
  written: boolean;
}

function listDir(dir: string, what: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile || e.isSymlink).map((e) => e.name)
      .sort();
  } catch (err) {
    throw new SluiceError(
      "runtime_asset_missing",
      `${what}: cannot list ${dir}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

function packageVersion(packageJson: string): string {
  const v = JSON.parse(Deno.readTextFileSync(packageJson)).version;
  return typeof v === "string" ? v : "unknown";
}

function linuxArch(arch: string): string {
  if (Deno.build.os !== "linux" || (arch !== "x64" && arch !== "arm64")) {
    throw new SluiceError(
      "runtime_platform_unsupported",
      `native addons: expected linux on x64 or arm64, found ${Deno.build.os} on ${arch}`,
    );
  }
  return arch;
}

function resolveFrom(from: string, specifier: string, what: string): string {
  try {
    return createRequire(from).resolve(specifier);
  } catch (err) {
    throw new SluiceError(
      "runtime_asset_missing",
      `${what}: cannot resolve ${specifier} from ${from}: ${
        err instanceof Error ? err.message : String(err)
      } (is the package for this platform installed?)`,
      { cause: err },
    );
  }
}

/**
 * sharp's addon and libvips for this platform (glibc Linux), found the way sharp finds them.
 * `sharpEntry` is sharp's resolved entry file (default: the one this project imports).
 */
export function sharpAddon(
  sharpEntry = require.resolve("sharp"),
  arch = process.arch,
): NativeAddonSource {
  const a = linuxArch(arch);
  const what = "sharp native addon";
  const requireKey = resolveFrom(sharpEntry, `@img/sharp-linux-${a}/sharp.node`, what);
  const addonPkg = dirname(requireKey);
  const libvipsPkg = dirname(
    resolveFrom(requireKey, `@img/sharp-libvips-linux-${a}/package`, what),
  );
  const addonFiles = listDir(join(addonPkg, "lib"), what).filter((f) => f.endsWith(".node"));
  if (addonFiles.length !== 1) {
    throw new SluiceError(
      "runtime_asset_missing",
      `${what}: expected one .node file in ${join(addonPkg, "lib")}, found ${addonFiles.length}`,
    );
  }
  const libs = listDir(join(libvipsPkg, "lib"), what).filter((f) => /\.so(\.\d+)*$/.test(f));
  const version = packageVersion(join(dirname(sharpEntry), "..", "package.json"));
  const addonRel = `@img/sharp-linux-${a}/lib/${addonFiles[0]}`;
  return {
    kind: "sharp",
    name: `sharp-${version}-linux-${a}`,
    requireKey,
    addonRel,
    files: [
      { from: join(addonPkg, "lib", addonFiles[0]), to: addonRel, mode: 0o755 },
      ...libs.map((f) => ({
        from: join(libvipsPkg, "lib", f),
        to: `@img/sharp-libvips-linux-${a}/lib/${f}`,
        mode: 0o755,
      })),
    ],
  };
}

/**
 * onnxruntime-node's binding and libonnxruntime for this platform, found the way
 * onnxruntime-node finds them. `ortEntry` is its resolved entry file.
 */
export function onnxRuntimeAddon(
  ortEntry = require.resolve("onnxruntime-node"),
  arch = process.arch,
): NativeAddonSource {
  const a = linuxArch(arch);
  const what = "onnxruntime-node native addon";
  const requireKey = resolveFrom(
    ortEntry,
    `../bin/napi-v6/linux/${a}/onnxruntime_binding.node`,
    what,
  );
  const binDir = dirname(requireKey);
  const rel = `bin/napi-v6/linux/${a}`;
  const version = packageVersion(join(dirname(ortEntry), "..", "package.json"));
  return {
    kind: "onnxruntime",
    name: `onnxruntime-node-${version}-linux-${a}`,
    requireKey,
    addonRel: `${rel}/${basename(requireKey)}`,
    files: listDir(binDir, what).filter((f) => f.endsWith(".node") || /\.so(\.\d+)*$/.test(f))
      .map((f) => ({ from: join(binDir, f), to: `${rel}/${f}`, mode: 0o755 })),
  };
}

/** The source of an addon by name. */
export function nativeAddonSource(kind: NativeAddonKind): NativeAddonSource {
  return kind === "sharp" ? sharpAddon() : onnxRuntimeAddon();
}

const installed = new Map<NativeAddonKind, InstalledAddon>();

/** The addons loaded from the runtime cache in this isolate. */
export function installedAddons(): InstalledAddon[] {
  return [...installed.values()];
}

/**
 * Materialises `source` under `cacheDir`, loads the addon from there and registers it for the
 * package's own `require`. Throws when the package already loaded another copy of its addon
 * (an entry point imported the package before this ran), naming both paths.
 */
export function installNativeAddon(source: NativeAddonSource, cacheDir: string): InstalledAddon {
  const done = installed.get(source.kind);
  if (done) return done;
  const cached = require.cache[source.requireKey];
  if (cached) {
    throw new SluiceError(
      "runtime_addon_order",
      `${source.kind} native addon: the package already loaded ${source.requireKey} before the ` +
        `runtime cache copy was installed; import common/runtime_assets/${
          source.kind === "sharp" ? "sharp" : "onnxruntime"
        }_preload.ts before anything that imports the package`,
    );
  }
  const m = materialiseFiles({ cacheDir, name: source.name, files: source.files });
  const addonPath = join(m.dir, source.addonRel);
  require(addonPath);
  const key = require.resolve(addonPath);
  const loaded = require.cache[key];
  if (!loaded) {
    throw new SluiceError(
      "runtime_addon_load",
      `${source.kind} native addon: loaded ${addonPath} but found no module for it in the require cache`,
    );
  }
  require.cache[source.requireKey] = loaded;
  const result: InstalledAddon = { kind: source.kind, dir: m.dir, addonPath, written: m.written };
  installed.set(source.kind, result);
  return result;
}

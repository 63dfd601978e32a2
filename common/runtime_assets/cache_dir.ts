/**
 * Where the runtime cache lives: `runtime.cacheDir` when set; else `<staging.root>/runtime-cache`
 * when the staging root exists (the NVMe mount on a production host); else
 * `$XDG_CACHE_HOME/sluice` (`~/.cache/sluice`).
 *
 * Native addons are loaded while modules are still being evaluated, before the configuration is
 * parsed, so {@link earlyCacheDir} reads the same two settings (flag, environment, JSON config
 * file, default; the same precedence as `loadConfig`) on its own, synchronously.
 * `materialiseRuntimeAssets` later checks that the full configuration agrees.
 *
 * @example
 * ```ts
 * defaultCacheDir("/mnt/nvme/sluice", { HOME: "/home/s" });
 * // "/mnt/nvme/sluice/runtime-cache" if that root exists, else "/home/s/.cache/sluice"
 * earlyCacheDir(["run", "--runtime-cache-dir", "/srv/cache"], {}, "/"); // "/srv/cache"
 * ```
 * @module
 */
import { join, resolve } from "node:path";

type Env = Readonly<Record<string, string | undefined>>;

/** The default staging root (as in the shared configuration schema). */
export const DEFAULT_STAGING_ROOT = "/mnt/nvme/sluice";

/** The cache's directory name under the staging root. */
export const STAGING_CACHE_NAME = "runtime-cache";

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** The cache directory when `runtime.cacheDir` is unset (see the module doc). */
export function defaultCacheDir(stagingRoot: string, env: Env): string {
  if (isDirectory(stagingRoot)) return join(stagingRoot, STAGING_CACHE_NAME);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && xdg.startsWith("/")) return join(xdg, "sluice");
  const home = env.HOME;
  if (home && home.startsWith("/")) return join(home, ".cache", "sluice");
  return join("/tmp", `sluice-cache-${Deno.uid() ?? "user"}`);
}

/** The runtime cache directory of a parsed configuration. */
export function cacheDirOf(
  config: { runtime: { cacheDir?: string }; staging: { root: string } },
  env: Env = Deno.env.toObject(),
): string {
  return config.runtime.cacheDir ?? defaultCacheDir(config.staging.root, env);
}

/** The value of `--name value` or `--name=value` in argv (the last one wins, as in loadConfig). */
function flag(argv: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") break;
    if (a === `--${name}` && i + 1 < argv.length) found = argv[++i];
    else if (a.startsWith(`--${name}=`)) found = a.slice(name.length + 3);
  }
  return found;
}

function fileSetting(file: Record<string, unknown> | undefined, section: string, key: string) {
  const s = file?.[section];
  if (s && typeof s === "object" && !Array.isArray(s)) {
    const v = (s as Record<string, unknown>)[key];
    if (typeof v === "string" && v.length > 0) return v;
  }
  return undefined;
}

function readConfigFile(path: string | undefined, cwd: string) {
  if (!path) return undefined;
  try {
    const parsed = JSON.parse(Deno.readTextFileSync(resolve(cwd, path)));
    return parsed && typeof parsed === "object" ? parsed as Record<string, unknown> : undefined;
  } catch {
    // loadConfig reports a missing or malformed file properly, a moment later.
    return undefined;
  }
}

/**
 * The runtime cache directory from the command line, environment and config file alone (for
 * code that runs before the configuration is loaded).
 */
export function earlyCacheDir(
  argv: readonly string[] = Deno.args,
  env: Env = Deno.env.toObject(),
  cwd: string = Deno.cwd(),
): string {
  const file = readConfigFile(flag(argv, "config") ?? env.SLUICE_CONFIG, cwd);
  const explicit = flag(argv, "runtime-cache-dir") ?? env.SLUICE_RUNTIME_CACHE_DIR ??
    fileSetting(file, "runtime", "cacheDir");
  if (explicit) return resolve(cwd, explicit);
  const root = flag(argv, "staging-root") ?? env.SLUICE_STAGING_ROOT ??
    fileSetting(file, "staging", "root") ?? DEFAULT_STAGING_ROOT;
  return defaultCacheDir(resolve(cwd, root), env);
}

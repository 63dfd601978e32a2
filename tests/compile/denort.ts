/**
 * Finds the `denort` runtime base that `deno compile` embeds. It is downloaded from dl.deno.land
 * on first use, which is unreachable on these machines, so compile tasks and tests check first
 * and skip with a clear reason instead of failing half-way.
 *
 * @example
 * ```ts
 * const base = await findDenortBase();
 * if (!base.found) console.log(`skip: ${base.reason}`);
 * ```
 * @module
 */
import { join } from "node:path";

export type DenortBase = { found: true; path: string } | { found: false; reason: string };

/** The cache location Deno uses for the base of the running version, and DENORT_BIN if set. */
export async function findDenortBase(): Promise<DenortBase> {
  const explicit = Deno.env.get("DENORT_BIN");
  if (explicit) {
    try {
      await Deno.stat(explicit);
      return { found: true, path: explicit };
    } catch {
      return { found: false, reason: `DENORT_BIN=${explicit} does not exist` };
    }
  }
  const denoDir = Deno.env.get("DENO_DIR") ??
    join(Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/root", ".cache"), "deno");
  const version = Deno.version.deno;
  const target = Deno.build.target;
  const path = join(denoDir, "dl", "release", `v${version}`, `denort-${target}.zip`);
  try {
    await Deno.stat(path);
    return { found: true, path };
  } catch {
    return {
      found: false,
      reason: `deno compile needs its runtime base denort-${target}.zip for Deno ${version}, ` +
        `downloaded from https://dl.deno.land, which is unreachable here; not in ${path} and ` +
        `DENORT_BIN is unset`,
    };
  }
}

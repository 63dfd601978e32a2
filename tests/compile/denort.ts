/**
 * Finds the `denort` runtime base that `deno compile` embeds, per target. Deno downloads it from
 * dl.deno.land on first use (into `$DENO_DIR/dl/release/v<version>/denort-<target>.zip`), which is
 * unreachable on some machines; `DENORT_BIN` names one explicitly. This checks first, so the
 * compile task fails with the reason and the way out instead of half-way, and refuses a
 * `DENORT_BIN` that cannot produce a real stage binary (the `deno` CLI itself, or another
 * architecture's file).
 *
 * @example
 * ```ts
 * const base = await findDenortBase("x86_64-unknown-linux-gnu");
 * if (!base.found) console.error(base.reason);
 * ```
 * @module
 */
import { join } from "node:path";
import type { Target } from "./stages.ts";

export type DenortBase =
  | { found: true; path: string; via: "DENORT_BIN" | "cache" }
  | { found: false; reason: string };

const ELF_MACHINE: Record<number, string> = { 0x3e: "x86_64", 0xb7: "aarch64" };

/** The architecture of an ELF file ("x86_64", "aarch64", another name, or undefined). */
export function elfArch(path: string): string | undefined {
  let head: Uint8Array;
  try {
    const f = Deno.openSync(path);
    try {
      head = new Uint8Array(20);
      if (f.readSync(head) !== 20) return undefined;
    } finally {
      f.close();
    }
  } catch {
    return undefined;
  }
  if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) {
    return undefined;
  }
  const machine = head[18] | (head[19] << 8);
  return ELF_MACHINE[machine] ?? `ELF machine 0x${machine.toString(16)}`;
}

/** The directory Deno caches downloads in. */
export function denoDir(env: Readonly<Record<string, string | undefined>>): string {
  return env.DENO_DIR ??
    join(env.XDG_CACHE_HOME ?? join(env.HOME ?? "/root", ".cache"), "deno");
}

/** Whether `path` is the full deno CLI (which prints `deno <version>` for `--version`). */
async function isDenoCli(path: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(path, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    return /^deno \d+\.\d+\.\d+/m.test(text) && /typescript/m.test(text);
  } catch {
    return false;
  }
}

/** The runtime base for `target`: DENORT_BIN when set (checked), else Deno's download cache. */
export async function findDenortBase(
  target: Target,
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): Promise<DenortBase> {
  const version = Deno.version.deno;
  const explicit = env.DENORT_BIN;
  if (explicit) {
    try {
      await Deno.stat(explicit);
    } catch {
      return { found: false, reason: `DENORT_BIN=${explicit} does not exist` };
    }
    const arch = elfArch(explicit);
    const wanted = target.split("-")[0];
    if (arch !== wanted) {
      return {
        found: false,
        reason: `DENORT_BIN=${explicit} is ${
          arch ? `an ${arch} binary` : "not an ELF binary"
        }; expected the ${wanted} denort for ${target}`,
      };
    }
    if (await isDenoCli(explicit)) {
      return {
        found: false,
        reason: `DENORT_BIN=${explicit} is the deno CLI, not denort: a binary built on it ` +
          `ignores the embedded program and behaves like plain \`deno\`, so it would not be a ` +
          `Sluice stage`,
      };
    }
    return { found: true, path: explicit, via: "DENORT_BIN" };
  }
  const path = join(denoDir(env), "dl", "release", `v${version}`, `denort-${target}.zip`);
  try {
    await Deno.stat(path);
    return { found: true, path, via: "cache" };
  } catch {
    return {
      found: false,
      reason: `deno compile needs Deno's runtime base denort-${target}.zip for Deno ${version}; ` +
        `it is not in ${path} and DENORT_BIN is unset (deno compile would download it from ` +
        `https://dl.deno.land, which is unreachable here)`,
    };
  }
}

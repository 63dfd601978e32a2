/**
 * The Python trainer as a binary carries it: `stages/train/trainer/*.py`, read module-relative
 * (so a compiled `sluice-train` reads the copy embedded with `deno compile --include`) and
 * materialised into the runtime cache, because `python3` cannot read files inside the binary
 * (denoland/deno#27006). The default trainer command names `stages/train/trainer/train.py`;
 * {@link materialisedTrainerCommand} points such arguments at the materialised copy, so the trainer
 * runs from any working directory, with or without a checkout.
 *
 * @example
 * ```ts
 * config.stage.trainerCommand = await materialisedTrainerCommand(config);
 * // ["/usr/bin/python3", "/mnt/nvme/sluice/runtime-cache/trainer-…/train.py"]
 * ```
 * @module
 */
import { join } from "node:path";
import { materialiseRuntimeAssets } from "../../common/runtime_assets/mod.ts";

/** The trainer's source directory (inside the binary when compiled). */
export const TRAINER_SOURCE_DIR = join(import.meta.dirname!, "trainer");

/** How trainer command arguments name files of the bundled trainer. */
export const BUNDLED_TRAINER_PREFIX = "stages/train/trainer/";

/** The files a trainer run needs (the Python modules). */
export const TRAINER_FILES = /\.py$/;

/**
 * `command` with every argument naming a bundled trainer file (`stages/train/trainer/<file>`,
 * optionally `./`-prefixed) replaced by that file in `trainerDir`; other arguments unchanged.
 */
export function withTrainerDir(command: readonly string[], trainerDir: string): string[] {
  return command.map((arg) => {
    const rel = arg.startsWith("./") ? arg.slice(2) : arg;
    if (!rel.startsWith(BUNDLED_TRAINER_PREFIX)) return arg;
    const file = rel.slice(BUNDLED_TRAINER_PREFIX.length);
    return file.length > 0 && !file.includes("/") && TRAINER_FILES.test(file)
      ? join(trainerDir, file)
      : arg;
  });
}

/** Materialises the trainer into the runtime cache and returns the command that runs it. */
export async function materialisedTrainerCommand(config: {
  runtime: { cacheDir?: string };
  staging: { root: string };
  stage: { trainerCommand: string[] };
}): Promise<string[]> {
  const assets = await materialiseRuntimeAssets(config, {
    directories: { trainer: { source: TRAINER_SOURCE_DIR, include: TRAINER_FILES } },
  });
  return withTrainerDir(config.stage.trainerCommand, assets.directories.trainer);
}

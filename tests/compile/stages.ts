/**
 * What `deno compile` builds: one self-contained binary per stage and Linux target. Besides the
 * module graph, a binary embeds (`--include`) what is not imported statically: the infer detector
 * worker (a Worker's module) and the Python trainer's files, which `sluice-train` materialises into
 * its runtime cache before handing them to `python3` (common/runtime_assets). npm packages,
 * native addons and their shared libraries included, are embedded with the graph.
 *
 * @example
 * ```ts
 * compileArgs(STAGE_BINARIES[0], "dist", "x86_64-unknown-linux-gnu");
 * // ["compile", "--allow-all", "--no-check", "--target", "x86_64-unknown-linux-gnu",
 * //  "--output", "dist/x86_64-unknown-linux-gnu/sluice-ingest", "stages/ingest/main.ts"]
 * ```
 * @module
 */

/** The Linux targets built by default. */
export const TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] as const;
/** One of {@link TARGETS}. */
export type Target = typeof TARGETS[number];

/** One stage's binary. */
export interface StageBinary {
  stage: string;
  binary: string;
  entry: string;
  /** Files embedded besides the module graph (paths relative to the checkout). */
  include: string[];
}

const TRAINER_DIR = "stages/train/trainer";

/** The trainer's Python files, relative to `root` (the checkout). */
function trainerFiles(root: string): string[] {
  return [...Deno.readDirSync(`${root}/${TRAINER_DIR}`)]
    .filter((e) => e.isFile && e.name.endsWith(".py"))
    .map((e) => `${TRAINER_DIR}/${e.name}`).sort();
}

/** The four stage binaries, for the checkout at `root` (default: the working directory). */
export function stageBinaries(root = "."): StageBinary[] {
  return [
    { stage: "ingest", binary: "sluice-ingest", entry: "stages/ingest/main.ts", include: [] },
    {
      stage: "normalize",
      binary: "sluice-normalize",
      entry: "stages/normalize/main.ts",
      include: [],
    },
    {
      stage: "train",
      binary: "sluice-train",
      entry: "stages/train/main.ts",
      include: trainerFiles(root),
    },
    {
      stage: "infer",
      binary: "sluice-infer",
      entry: "stages/infer/main.ts",
      include: ["stages/infer/_detector_worker.ts"],
    },
  ];
}

/** The stage binaries of this checkout. */
export const STAGE_BINARIES: StageBinary[] = stageBinaries(
  new URL("../../", import.meta.url).pathname,
);

/** Where a stage's binary for `target` goes under `outDir`. */
export function binaryPath(s: StageBinary, outDir: string, target: Target): string {
  return `${outDir}/${target}/${s.binary}`;
}

/**
 * The `deno compile` arguments for one stage and target; `exclude`: paths kept out of the binary
 * (compile_plan.ts passes the npm packages the stage does not import).
 */
export function compileArgs(
  s: StageBinary,
  outDir: string,
  target: Target,
  exclude: string[] = [],
): string[] {
  return [
    "compile",
    "--allow-all",
    "--no-check",
    "--target",
    target,
    ...s.include.flatMap((p) => ["--include", p]),
    ...exclude.flatMap((p) => ["--exclude", p]),
    "--output",
    binaryPath(s, outDir, target),
    s.entry,
  ];
}

/** The target this machine runs. */
export function hostTarget(): Target | undefined {
  return (TARGETS as readonly string[]).includes(Deno.build.target)
    ? Deno.build.target as Target
    : undefined;
}

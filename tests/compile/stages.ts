/**
 * What `deno compile` builds: one self-contained binary per stage. Native addons (sharp's libvips,
 * onnxruntime) are included as files because Deno extracts `.node` files to a temp path at run
 * time, where their relative rpath no longer finds the bundled shared libraries
 * (denoland/deno#32198).
 * @module
 */

export interface StageBinary {
  stage: string;
  binary: string;
  entry: string;
  include: string[];
}

export const STAGE_BINARIES: StageBinary[] = [
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
    include: ["stages/train/trainer"],
  },
  {
    stage: "infer",
    binary: "sluice-infer",
    entry: "stages/infer/main.ts",
    include: ["stages/infer/_detector_worker.ts"],
  },
];

/** The `deno compile` arguments for one stage. */
export function compileArgs(s: StageBinary, outDir: string): string[] {
  return [
    "compile",
    "--allow-all",
    "--no-check",
    ...s.include.flatMap((p) => ["--include", p]),
    "--output",
    `${outDir}/${s.binary}`,
    s.entry,
  ];
}

/**
 * `make demo` / `deno task demo`: the whole pipeline on one machine with the embedded defaults
 * (local directory object store, SQLite manifest, MLflow file store, all under ./.sluice/):
 *
 * 1. seed the raw bucket with a deterministic synthetic dataset and a Label Studio export;
 * 2. ingest: discover, verify, publish, import the annotations;
 * 3. normalize: three variants per image from one decode;
 * 4. train: snapshot, shard, train the detector, track and register it in MLflow;
 * 5. infer: auto-annotate the new images with the approved model, write Label Studio
 *    predictions and COCO results, and evaluate mAP against the held-out ground truth.
 *
 * Flags: `--fresh` wipes ./.sluice first (except the benchmark corpus); `--annotated N`,
 * `--held-out N`, `--epochs N`, `--max-minutes M` size the run.
 * @module
 */
import { parseArgs } from "node:util";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { z } from "zod";
import { loadConfig, type StageConfig } from "../../common/config/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { IngestSettingsSchema } from "../../stages/ingest/config.ts";
import { runIngestOnce } from "../../stages/ingest/run_once.ts";
import { NormalizeSettingsSchema } from "../../stages/normalize/config.ts";
import { runNormalizeOnce } from "../../stages/normalize/stage.ts";
import { seedRawBucket } from "./synthetic_source.ts";
import { runDemoTraining } from "./train_step.ts";
import { runDemoInference } from "./infer_step.ts";

const HELP = `sluice demo: the whole pipeline on bundled synthetic data, embedded defaults

usage: deno task demo [--fresh] [--annotated N] [--held-out N] [--epochs N] [--max-minutes M]

  --fresh          remove ./.sluice (objects, raw, manifest, mlruns, staging) first
  --annotated N    labelled images delivered with a Label Studio export (default 2000)
  --held-out N     new, unlabelled images that the trained model annotates (default 200)
  --epochs N       training epochs (default 30; training stops at --max-minutes anyway)
  --max-minutes M  training time budget in minutes (default 8)
`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    fresh: { type: "boolean", default: false },
    annotated: { type: "string", default: "2000" },
    "held-out": { type: "string", default: "200" },
    epochs: { type: "string", default: "30" },
    "max-minutes": { type: "string", default: "8" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const intArg = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name}: expected a positive integer, found ${JSON.stringify(v)}`);
    Deno.exit(2);
  }
  return n;
};
const annotated = intArg("annotated", values.annotated);
const heldOut = intArg("held-out", values["held-out"]);
const epochs = intArg("epochs", values.epochs);
const maxMinutes = Number(values["max-minutes"]);

const log = createLogger({ stage: "demo" });
const home = join(Deno.cwd(), ".sluice");
if (values.fresh) {
  for (
    const p of [
      "objects",
      "raw",
      "manifest.db",
      "manifest.db-wal",
      "manifest.db-shm",
      "mlruns",
      "staging",
      "demo",
    ]
  ) {
    await rm(join(home, p), { recursive: true, force: true });
  }
}

/** Loads a stage's configuration exactly as its binary would, plus demo overrides. */
function stageConfig<S extends z.ZodType>(
  stage: "ingest" | "normalize" | "train" | "infer",
  stageSchema: S,
  overrides: Record<string, string> = {},
): Promise<StageConfig<S>> {
  return loadConfig({
    stage,
    stageSchema,
    env: { ...Deno.env.toObject(), ...overrides },
    onWarning: (w) => log.warn(w),
  });
}

const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const section = (title: string) => console.log(`\n== ${title} (${elapsed()})`);

// 1. seed
const ingestConfig = await stageConfig("ingest", IngestSettingsSchema, {
  SLUICE_INGEST_ANNOTATIONS: JSON.stringify(["exports/labelstudio.json"]),
});
section("seeding the raw bucket");
const raw = await openObjectStore(ingestConfig.source.url);
const seeded = await seedRawBucket(raw, { annotated, heldOut, seed: 7 });
await raw.close();
const truthPath = join(home, "demo", "heldout_coco.json");
await Deno.mkdir(join(home, "demo"), { recursive: true });
await Deno.writeTextFile(truthPath, JSON.stringify(seeded.heldOutTruth));
console.log(`${seeded.uploaded} images and a Label Studio export in ${ingestConfig.source.url}`);
console.log(`manifest: ${ingestConfig.manifest.url}`);

// 2. ingest
section("ingest");
const ingest = await runIngestOnce(ingestConfig, { progress: false });
console.log(
  `discovered ${JSON.stringify(ingest.discovered)}\n` +
    `annotations ${JSON.stringify(ingest.annotations.map((a) => ({ ...a })))}\n` +
    `worker ${JSON.stringify(ingest.worker)}  images ${JSON.stringify(ingest.images)}`,
);

// 3. normalize
section("normalize");
const normalizeConfig = await stageConfig("normalize", NormalizeSettingsSchema);
const normalized = await runNormalizeOnce(normalizeConfig, {}, { progress: false });
console.log(
  `variants written ${normalized.variantsWritten} (${
    (normalized.bytesWritten / 1e6).toFixed(1)
  } MB), ` +
    `already present ${normalized.variantsPresent}, failed ${normalized.failed}; ` +
    `resizer: ${normalized.resizer.reason}`,
);

// 4. train
section("train");
const trained = await runDemoTraining({ epochs, maxMinutes, log, stageConfig });
console.log(trained.summary);

// 5. infer + evaluate
section("infer");
const inferred = await runDemoInference({ truthPath, log, stageConfig });
console.log(inferred.summary);

section("manifest");
const manifest = await openManifest(ingestConfig.manifest.url);
try {
  console.log(JSON.stringify(await manifest.stats(), null, 2));
} finally {
  await manifest.close();
}
console.log(`\ndemo finished in ${elapsed()}`);
if (inferred.map50 !== null) {
  console.log(
    `held-out mAP@0.5 = ${inferred.map50.toFixed(3)}  mAP@0.5:0.95 = ${
      inferred.map50_95?.toFixed(3)
    }`,
  );
}
for (const line of trained.mlflowHint) console.log(line);
for (
  const [what, uris] of [["training", trained.pictures], ["held-out", inferred.pictures]] as const
) {
  for (const uri of uris) console.log(`evaluation picture (${what}): ${uri}`);
}

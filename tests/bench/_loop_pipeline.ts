/**
 * One pipeline home of the review-loop benchmark: a directory whose `.sluice/` holds the raw
 * bucket, the dataset store, the SQLite manifest and the MLflow file store (the embedded
 * defaults, as `deno task demo` uses them), and the real stages run on it: ingest, normalize,
 * train (the PyTorch trainer, warm-started when asked), infer and the held-out evaluation.
 *
 * @example
 * ```ts
 * const home = loopPipeline("/tmp/loop/seed-1/shared", "loop", training);
 * await home.ingest();
 * await home.normalize();
 * const t = await home.train({ seed: 1 });
 * const m = await home.inferAndEvaluate(t.version, truth);
 * ```
 * @module
 */
import { cp, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import { loadConfig, type StageConfig } from "../../common/config/mod.ts";
import { SluiceError } from "../../common/errors/mod.ts";
import { openTracker } from "../../common/mlflow/mod.ts";
import { openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import type { LabelStudioTask } from "../../common/annotations/labelstudio.ts";
import { IngestSettingsSchema } from "../../stages/ingest/config.ts";
import { runIngestOnce } from "../../stages/ingest/run_once.ts";
import { NormalizeSettingsSchema } from "../../stages/normalize/config.ts";
import { runNormalizeOnce } from "../../stages/normalize/stage.ts";
import { runTraining, TrainSettingsSchema } from "../../stages/train/mod.ts";
import { evaluate, InferSettingsSchema, runInferOnce } from "../../stages/infer/mod.ts";
import { outputKeys } from "../../stages/infer/outputs.ts";
import type { CocoGroundTruth } from "../support/synthetic/coco.ts";

/** The training budget of one round: a fixed number of image-steps, so arms get equal compute. */
export interface LoopTraining {
  epochs: number;
  imagesPerEpoch: number;
  batchSize: number;
  /** Wall-time cap per training in minutes (a guard; the step budget normally ends first). */
  maxMinutes: number;
}

/** A trained and registered model version. */
export interface LoopModel {
  name: string;
  version: string;
  /** The trainer's `model.pt` (the run's `checkpoint/` artifact), for the next warm start. */
  checkpoint: string;
  /** Validation mAP@0.5 the trainer reported. */
  valMap50: number;
}

export type StageName = "ingest" | "normalize" | "train" | "infer";

/** The variant the detector trains on (the only one the benchmark renders). */
const VARIANTS = [{ name: "320", width: 320, height: 320, mode: "letterbox" }];

export interface LoopPipeline {
  dir: string;
  modelName: string;
  config<S extends z.ZodType>(
    stage: StageName,
    schema: S,
    overrides?: Record<string, string>,
  ): Promise<StageConfig<S>>;
  /** Discovers and ingests the raw bucket, importing `annotationsKey` when given. */
  ingest(annotationsKey?: string): Promise<void>;
  normalize(): Promise<void>;
  /** Trains on a new snapshot (`epochs` overrides the round budget's). */
  train(o: { seed: number; initFrom?: string; epochs?: number }): Promise<LoopModel>;
  /** Predicts every unannotated image with `version`, then scores the held-out images. */
  inferAndEvaluate(version: string, truth: CocoGroundTruth): Promise<number>;
  /** The Label Studio tasks infer wrote for a model version (`labelstudio.json`). */
  tasksOf(model: { name: string; version: string }): Promise<LabelStudioTask[]>;
}

/**
 * A pipeline home in `dir` whose trainings register as `modelName`.
 *
 * @example
 * ```ts
 * const p = loopPipeline("/tmp/x", "loop-random", { epochs: 4, imagesPerEpoch: 128, batchSize: 16, maxMinutes: 2 });
 * ```
 */
export function loopPipeline(dir: string, modelName: string, training: LoopTraining): LoopPipeline {
  const env = (stage: StageName): Record<string, string> => ({
    SLUICE_LOG_LEVEL: "error",
    SLUICE_STAGING_MIN_FREE_MB: "0",
    SLUICE_MLFLOW_MODEL_NAME: modelName,
    ...(stage === "normalize" ? { SLUICE_NORMALIZE_VARIANTS: JSON.stringify(VARIANTS) } : {}),
    // Reviews use POST /labelstudio/webhook; the S3 event webhook (POST /events) is not used.
    ...(stage === "ingest" ? { SLUICE_INGEST_WEBHOOK: "false" } : {}),
  });
  const p: LoopPipeline = {
    dir,
    modelName,
    config: (stage, schema, overrides = {}) =>
      loadConfig({ stage, stageSchema: schema, cwd: dir, env: { ...env(stage), ...overrides } }),
    async ingest(annotationsKey) {
      const config = await p.config("ingest", IngestSettingsSchema, {
        SLUICE_INGEST_ANNOTATIONS: JSON.stringify(annotationsKey ? [annotationsKey] : []),
      });
      const s = await runIngestOnce(config, { progress: false });
      if (s.worker.failed > 0) {
        throw new SluiceError(
          "loop_bench",
          `${dir}: ingest expected no failed images, found ${s.worker.failed}`,
        );
      }
    },
    async normalize() {
      const config = await p.config("normalize", NormalizeSettingsSchema);
      const s = await runNormalizeOnce(config, {}, { progress: false });
      if (s.failed > 0) {
        throw new SluiceError(
          "loop_bench",
          `${dir}: normalize expected no failures, found ${s.failed}`,
        );
      }
    },
    async train(o) {
      const args = ["--augment", "shapes", ...(o.initFrom ? ["--init-weights", o.initFrom] : [])];
      const config = await p.config("train", TrainSettingsSchema, {
        SLUICE_TRAIN_EPOCHS: String(o.epochs ?? training.epochs),
        SLUICE_TRAIN_IMAGES_PER_NODE: String(training.imagesPerEpoch),
        SLUICE_TRAIN_BATCH_SIZE: String(training.batchSize),
        SLUICE_TRAIN_MAX_MINUTES: String(training.maxMinutes),
        SLUICE_TRAIN_VAL_FRACTION: "0.1",
        SLUICE_TRAIN_SEED: String(o.seed),
        // Every round's model is served (the benchmark measures it on the held-out set).
        SLUICE_TRAIN_PROMOTION_THRESHOLD: "0",
        SLUICE_TRAIN_TRAINER_ARGS: JSON.stringify(args),
      });
      const r = await runTraining(config);
      if (!r.modelVersion || !r.runId) {
        throw new SluiceError(
          "loop_bench",
          `${dir}: training expected a registered version, found run ${r.runId} version ${r.modelVersion}`,
        );
      }
      return {
        name: modelName,
        version: r.modelVersion,
        checkpoint: await checkpointOf(config, r.runId),
        valMap50: r.map50,
      };
    },
    async inferAndEvaluate(version, truth) {
      const config = await p.config("infer", InferSettingsSchema, {
        SLUICE_INFER_MODEL_URI: `models:/${modelName}/${version}`,
        // mAP integrates over the whole precision/recall curve: keep low-score boxes (as the demo).
        SLUICE_INFER_SCORE_THRESHOLD: "0.05",
      });
      const s = await runInferOnce(config, {}, { progress: false });
      if (!s.model || s.failed > 0) {
        throw new SluiceError(
          "loop_bench",
          `${dir}: infer expected model ${modelName} v${version} and no failures, found ` +
            `${s.model ? `v${s.model.version}` : "no model"}, ${s.failed} failed`,
        );
      }
      const manifest = await openManifest(config.manifest.url);
      try {
        const r = await evaluate({ gt: truth, manifest, model: { name: modelName, version } });
        if (r.matchedImages !== r.gtImages) {
          throw new SluiceError(
            "loop_bench",
            `${dir}: expected predictions for all ${r.gtImages} held-out images, found ${r.matchedImages}`,
          );
        }
        return r.map50;
      } finally {
        await manifest.close();
      }
    },
    async tasksOf(model) {
      const config = await p.config("infer", InferSettingsSchema);
      const store = await openObjectStore(config.objectStore.url);
      try {
        const key = outputKeys(config.stage.prefix, model).labelStudio;
        return JSON.parse(new TextDecoder().decode(await store.getBytes(key)));
      } finally {
        await store.close();
      }
    },
  };
  return p;
}

/** The local path of a run's `checkpoint/model.pt` in the MLflow file store. */
async function checkpointOf(
  config: StageConfig<typeof TrainSettingsSchema>,
  runId: string,
): Promise<string> {
  const tracker = openTracker({ localDir: config.mlflow.localDir });
  try {
    const root = (await tracker.getRun(runId)).info.artifactUri;
    const path = join(fileURLToPath(root), "checkpoint", "model.pt");
    await stat(path);
    return path;
  } finally {
    await tracker.close();
  }
}

/**
 * Copies a home's raw bucket, dataset store and manifest (not its MLflow store) to `to`, so an
 * arm starts from the shared seed round. The manifest records store-relative keys, so the copy
 * reads its own objects.
 *
 * @example
 * ```ts
 * await copyHome("/tmp/loop/seed-1/shared", "/tmp/loop/seed-1/random");
 * ```
 */
export async function copyHome(from: string, to: string): Promise<void> {
  await mkdir(join(to, ".sluice"), { recursive: true });
  for (const name of ["raw", "objects", "manifest.db", "manifest.db-wal", "manifest.db-shm"]) {
    const src = join(from, ".sluice", name);
    const exists = await stat(src).then(() => true, () => false);
    if (exists) await cp(src, join(to, ".sluice", name), { recursive: true });
  }
}

/**
 * Demo step 4: train the detector on the 320 px letterbox variants with the local launcher,
 * tracked in the embedded MLflow file store, and register/promote the model.
 * @module
 */
import type { z } from "zod";
import type { StageConfig } from "../../common/config/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import { runTraining, TrainSettingsSchema } from "../../stages/train/mod.ts";
import { openTracker } from "../../common/mlflow/mod.ts";
import { joinArtifactUri } from "../../common/mlflow/model_uri.ts";
import { mlflowOpenHint } from "./mlflow_hint.ts";

export interface DemoStepDeps {
  log: Logger;
  stageConfig: <S extends z.ZodType>(
    stage: "ingest" | "normalize" | "train" | "infer",
    schema: S,
    overrides?: Record<string, string>,
  ) => Promise<StageConfig<S>>;
}

export interface DemoTraining {
  summary: string;
  /** How to open the runs in MLflow (printed at the end of the demo). */
  mlflowHint: string[];
  /** URIs of the run's evaluation pictures (`eval/*.png` artifacts). */
  pictures: string[];
  modelVersion: string | null;
  map50: number;
}

/** Runs one training with the demo's budget. */
export async function runDemoTraining(
  o: DemoStepDeps & { epochs: number; maxMinutes: number },
): Promise<DemoTraining> {
  const config = await o.stageConfig("train", TrainSettingsSchema, {
    SLUICE_TRAIN_EPOCHS: String(o.epochs),
    SLUICE_TRAIN_MAX_MINUTES: String(o.maxMinutes),
    // Synthetic shapes: every class is closed under the 8 flips/rotations and colour is no cue,
    // so the demo trains with the shapes preset (as measured); real photos keep the default.
    SLUICE_TRAIN_TRAINER_ARGS: JSON.stringify(["--augment", "shapes"]),
  });
  const r = await runTraining(config);
  const pictures: string[] = [];
  if (r.runId) {
    const tracker = openTracker({
      trackingUri: config.mlflow.trackingUri,
      localDir: config.mlflow.localDir,
      token: config.mlflow.token,
      username: config.mlflow.username,
      password: config.mlflow.password,
    });
    try {
      const root = (await tracker.getRun(r.runId)).info.artifactUri;
      for (const e of await tracker.listArtifacts(r.runId, "eval")) {
        if (e.path.endsWith(".png")) pictures.push(joinArtifactUri(root, e.path));
      }
    } finally {
      await tracker.close();
    }
  }
  const fmt = (x: number) => Number.isFinite(x) ? x.toFixed(3) : "n/a";
  return {
    modelVersion: r.modelVersion,
    map50: r.map50,
    mlflowHint: mlflowOpenHint(config.mlflow.localDir, config.mlflow.trackingUri),
    pictures,
    summary: [
      `snapshot ${r.snapshotId} (${r.excluded ?? 0} ingested images excluded: no annotations)`,
      `MLflow run ${r.runId} in ${config.mlflow.trackingUri ?? config.mlflow.localDir}`,
      `model ${config.mlflow.modelName} version ${r.modelVersion}: validation mAP@0.5 ${
        fmt(r.map50)
      }, ` +
      `mAP@0.5:0.95 ${fmt(r.map50_95)}`,
      `promotion: ${r.promoted ? "promoted to" : "not promoted to"} ${config.stage.approvedAlias}` +
      (r.promotion ? ` (${JSON.stringify(r.promotion)})` : ""),
    ].join("\n"),
  };
}

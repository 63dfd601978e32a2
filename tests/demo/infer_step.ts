/**
 * Demo step 5: auto-annotate the new (unlabelled) images with the approved model, publish the
 * Label Studio predictions and COCO results, and score them against the held-out ground truth.
 * @module
 */
import { openManifest } from "../../common/manifest/mod.ts";
import {
  evaluate,
  InferSettingsSchema,
  NoApprovedModelError,
  runInferOnce,
} from "../../stages/infer/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { publishEvalPictures } from "../../stages/infer/eval_pictures.ts";
import type { ScoredSet } from "../../stages/infer/evaluate.ts";
import { outputKeys } from "../../stages/infer/outputs.ts";
import type { DemoStepDeps } from "./train_step.ts";

export interface DemoInference {
  summary: string;
  map50: number | null;
  map50_95: number | null;
  /** URIs of the held-out evaluation pictures (PR curves, confusion matrix, contact sheet). */
  pictures: string[];
}

/** Runs inference once and evaluates it. */
export async function runDemoInference(
  o: DemoStepDeps & { truthPath: string },
): Promise<DemoInference> {
  // mAP integrates over the whole precision/recall curve, so keep low-score boxes too; reviewers
  // sort pre-annotations by score in Label Studio.
  const overrides = { SLUICE_INFER_SCORE_THRESHOLD: "0.05" };
  let config = await o.stageConfig("infer", InferSettingsSchema, overrides);
  let note = "";
  let s;
  try {
    s = await runInferOnce(config, {}, { progress: false });
  } catch (err) {
    if (!(err instanceof NoApprovedModelError)) throw err;
    // The run did not earn promotion (e.g. a short --max-minutes). Show the flow anyway with the
    // latest candidate, and say so: production infer refuses unapproved models.
    note = `no approved model (${err.message}); using the latest candidate instead\n`;
    o.log.warn("no approved model: demo falls back to the candidate alias");
    config = await o.stageConfig("infer", InferSettingsSchema, {
      ...overrides,
      SLUICE_INFER_MODEL_URI: `models:/${config.mlflow.modelName}@candidate`,
    });
    s = await runInferOnce(config, {}, { progress: false });
  }
  if (!s.model) {
    return { summary: "infer: no approved model", map50: null, map50_95: null, pictures: [] };
  }
  const manifest = await openManifest(config.manifest.url);
  try {
    let scored: ScoredSet | undefined;
    const r = await evaluate({
      gt: o.truthPath,
      manifest,
      model: s.model,
      onScored: (x) => (scored = x),
    });
    const pictures: string[] = [];
    if (scored) {
      const store = await openObjectStore(config.objectStore.url, { s3: config.s3 });
      try {
        const dir = outputKeys(config.stage.prefix, s.model).dir;
        pictures.push(...await publishEvalPictures(store, dir, scored));
      } finally {
        await store.close();
      }
    }
    const perClass = r.perClass.map((c) =>
      `${c.name ?? c.categoryId} ${c.ap50?.toFixed(3) ?? "n/a"}`
    )
      .join(", ");
    return {
      map50: r.map50,
      map50_95: r.map50_95,
      pictures,
      summary: note + [
        `model ${s.model.name} v${s.model.version} (via ${s.model.via}), provider ${s.provider}`,
        `predicted ${s.predictions} images (${s.boxes} boxes, ${s.failed} failed) at ` +
        `${s.imagesPerSecond.toFixed(1)} img/s`,
        `outputs: ${JSON.stringify(s.outputs)}`,
        `held-out evaluation (${r.apDefinition}): mAP@0.5 ${r.map50.toFixed(3)}, ` +
        `mAP@0.5:0.95 ${r.map50_95.toFixed(3)} over ${r.matchedImages}/${r.gtImages} images; ` +
        `per class AP@0.5: ${perClass}`,
      ].join("\n"),
    };
  } finally {
    await manifest.close();
  }
}

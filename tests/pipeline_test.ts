/**
 * The pipeline in one process: a small synthetic dataset goes through ingest → normalize → train
 * → infer with the embedded stores (file objects, SQLite manifest, MLflow file store), as the demo
 * runs it, and each step's result is checked: counts, variant transforms, a registered model
 * version, and predictions mapped back to original coordinates scoring a minimum mAP@0.5 on an
 * easy held-out set. Needs Debian's PyTorch for the trainer (a failure under CI=true when missing).
 * About 4 minutes on 2 shared cores, most of it training.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { z } from "zod";
import { loadConfig, type StageConfig } from "../common/config/mod.ts";
import { planVariant } from "../common/images/variant_transform.ts";
import { parseVariantSpecs } from "../common/images/variant_spec.ts";
import { createLogger } from "../common/log/mod.ts";
import { openManifest } from "../common/manifest/mod.ts";
import { openObjectStore } from "../common/objectstore/mod.ts";
import { IngestSettingsSchema } from "../stages/ingest/config.ts";
import { runIngestOnce } from "../stages/ingest/run_once.ts";
import { NormalizeSettingsSchema } from "../stages/normalize/config.ts";
import { runNormalizeOnce } from "../stages/normalize/stage.ts";
import { runDemoInference } from "./demo/infer_step.ts";
import { seedRawBucket } from "./demo/synthetic_source.ts";
import { runDemoTraining } from "./demo/train_step.ts";
import { skipUnless } from "./harness/requirement.ts";

const ANNOTATED = 240;
// 48 held-out images and 16 epochs (not 24 and 10): at mAP ~0.1 a 24-image held-out score swung
// under half the validation score in one CI run (0.032 vs 0.105); now ~0.2 (two runs: held-out
// 0.188 and 0.169 against floors 0.113 and 0.130).
const HELD_OUT = 48;
// The training budget is small and the machine shared, so the model is weak. What the test holds
// is that it learned something (validation mAP, measured on variant pixels by the trainer) and
// that its held-out predictions, mapped back to ORIGINAL pixels, score comparably: mis-mapped or
// random boxes score ~0 however good the model is.
const MIN_VALIDATION_MAP50 = 0.02;
const MIN_HELD_OUT_SHARE = 0.5;

let torchOk = false;
try {
  torchOk = (await new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import torch, onnx"],
    stdout: "null",
    stderr: "null",
  }).output()).success;
} catch {
  torchOk = false;
}
const noTorch = skipUnless(
  "tests/pipeline_test.ts",
  torchOk ? null : "/usr/bin/python3 cannot import torch + onnx (apt-get install python3-torch)",
);

Deno.test({
  name: "pipeline: ingest → normalize → train → infer in one process",
  ignore: noTorch,
  async fn(t) {
    const dir = await mkdtemp(join(tmpdir(), "sluice-pipeline-"));
    const log = createLogger({ stage: "demo", level: "error", json: true, sink: () => {} });
    const stageConfig = <S extends z.ZodType>(
      stage: "ingest" | "normalize" | "train" | "infer",
      stageSchema: S,
      overrides: Record<string, string> = {},
    ): Promise<StageConfig<S>> =>
      loadConfig({
        stage,
        stageSchema,
        cwd: dir,
        env: { SLUICE_LOG_LEVEL: "error", SLUICE_WORKER_CONCURRENCY: "2", ...overrides },
        onWarning: () => {},
      });
    try {
      const ingestConfig = await stageConfig("ingest", IngestSettingsSchema, {
        SLUICE_INGEST_ANNOTATIONS: JSON.stringify(["exports/labelstudio.json"]),
      });
      const raw = await openObjectStore(ingestConfig.source.url);
      const seeded = await seedRawBucket(raw, { annotated: ANNOTATED, heldOut: HELD_OUT, seed: 7 });
      await raw.close();
      const truthPath = join(dir, "heldout_coco.json");
      await writeFile(truthPath, JSON.stringify(seeded.heldOutTruth));
      const manifest = await openManifest(ingestConfig.manifest.url);
      try {
        await t.step("ingest: every image published, annotations imported", async () => {
          await runIngestOnce(ingestConfig, { progress: false });
          const stats = await manifest.stats();
          assert.equal(stats.images.ingested, ANNOTATED + HELD_OUT, JSON.stringify(stats.images));
          assert.ok(stats.annotations >= ANNOTATED, `annotations ${stats.annotations}`);
          assert.equal(stats.work.ingest?.failed ?? 0, 0);
        });

        await t.step("normalize: each image's variants with their exact transforms", async () => {
          const normalizeConfig = await stageConfig("normalize", NormalizeSettingsSchema);
          const specs = parseVariantSpecs(normalizeConfig.stage.variants);
          const r = await runNormalizeOnce(normalizeConfig, {}, { progress: false });
          assert.equal(r.failed, 0);
          assert.equal(
            r.variantsWritten + r.variantsPresent,
            (ANNOTATED + HELD_OUT) * specs.length,
          );
          const images = await manifest.listImages({ status: "ingested", limit: 20 });
          const variants = await manifest.listVariants({ imageIds: images.map((i) => i.id) });
          assert.equal(variants.length, images.length * specs.length);
          for (const v of variants) {
            const img = images.find((i) => i.id === v.imageId)!;
            const spec = specs.find((s) => s.name === v.name)!;
            const plan = planVariant(img.width!, img.height!, spec);
            assert.deepEqual(v.transform, plan, `${v.imageId} ${v.name}`);
            assert.deepEqual([v.width, v.height], [plan.width, plan.height]);
          }
        });

        let validationMap50 = Number.NaN;
        await t.step("train: a registered model version with a validation mAP", async () => {
          const trained = await runDemoTraining({ epochs: 16, maxMinutes: 2.5, log, stageConfig });
          assert.ok(trained.modelVersion, trained.summary);
          validationMap50 = trained.map50;
          assert.ok(validationMap50 >= MIN_VALIDATION_MAP50, trained.summary);
          assert.equal((await manifest.stats()).trainingRuns, 1);
        });

        await t.step(
          "infer: predictions in original coordinates score on the held-out set",
          async () => {
            const inferred = await runDemoInference({ truthPath, log, stageConfig });
            assert.ok(inferred.map50 !== null, inferred.summary);
            const floor = Math.max(MIN_VALIDATION_MAP50, validationMap50 * MIN_HELD_OUT_SHARE);
            console.log(
              `pipeline: validation mAP@0.5 ${validationMap50.toFixed(3)}, held-out ` +
                `${inferred.map50.toFixed(3)} (floor ${floor.toFixed(3)})`,
            );
            assert.ok(
              inferred.map50 >= floor,
              `held-out mAP@0.5 ${inferred.map50}, expected >= ${floor} (validation ` +
                `${validationMap50})\n${inferred.summary}`,
            );
            assert.ok((await manifest.stats()).predictions > 0);
          },
        );
      } finally {
        await manifest.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});

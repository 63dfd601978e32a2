/**
 * `sluice-train models` on both stores: the embedded file store and an MLflow server (the
 * stateful test server in tests/support, MLflow 2.17.2's shapes), then the command line itself.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MlflowFaultServer } from "../../tests/support/mlflow/fault_server.ts";
import { createLogger } from "../../common/log/mod.ts";
import { FileTracker, MlflowRestTracker } from "../../common/mlflow/mod.ts";
import type { Tracker } from "../../common/mlflow/tracker.ts";
import { runModelsAction } from "./models_command.ts";
import { promoteIfBetter } from "./promotion.ts";
import { type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { diffReview, type LabelledBox } from "../../common/review/review_diff.ts";
import type { ReviewQuality } from "../../common/review/review_metrics.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

const NAME = "det";
const TAG = { key: "approved", value: "true" };

/** Two trained versions: v1 (mAP 0.6) and v2 (mAP 0.8), each with a run and a model card. */
async function seed(tracker: Tracker, dir: string): Promise<void> {
  const exp = await tracker.getOrCreateExperiment("sluice");
  await tracker.getOrCreateRegisteredModel(NAME);
  for (const [map50, perClass] of [[0.6, [0.5, 0.7]], [0.8, [0.9, 0.7]]] as const) {
    const run = await tracker.createRun(exp, { runName: `train-${map50}` });
    await tracker.logMetrics(run.runId, [
      { key: "val_map50", value: map50, step: 10 },
      { key: "val_map50_95", value: map50 / 2, step: 10 },
    ]);
    const card = {
      metrics: {
        map50,
        per_class: [
          { category_id: 1, name: "car", ap50: perClass[0], ap: perClass[0] / 2 },
          { category_id: 2, name: "person", ap50: perClass[1], ap: perClass[1] / 2 },
        ],
      },
    };
    const path = join(dir, "model_card.json");
    await Deno.writeTextFile(path, JSON.stringify(card));
    await tracker.logArtifact(run.runId, path, "model");
    const v = await tracker.createModelVersion(NAME, `${run.artifactUri}/model`, run.runId, {
      tags: { map50: String(map50) },
    });
    await tracker.updateRun(run.runId, "FINISHED");
    // The automatic rule, as training applies it.
    await promoteIfBetter(tracker, {
      modelName: NAME,
      version: v,
      map50,
      threshold: 0.5,
      approvedAlias: "champion",
    });
  }
}

async function scenario(t: Deno.TestContext, tracker: Tracker, dir: string) {
  await seed(tracker, dir);
  const run = (action: Parameters<typeof runModelsAction>[1]["action"], ...args: string[]) =>
    runModelsAction(tracker, { modelName: NAME, action, args, alias: "champion", tag: TAG });

  await t.step("list: both versions, newest first, with aliases and scores", async () => {
    const { json, text } = await run("list");
    const rows = json as { version: string; aliases: string[]; map50: number }[];
    assert.deepEqual(rows.map((r) => [r.version, r.aliases, r.map50]), [
      ["2", ["champion"], 0.8],
      ["1", [], 0.6],
    ]);
    assert.match(text, /^version\s+aliases/);
  });

  await t.step("show @champion: the version, its run's metrics", async () => {
    const { text } = await run("show", "@champion");
    assert.match(text, /^model det version 2 \(READY\)/);
    assert.match(text, /metric val_map50 = 0\.8000/);
  });

  await t.step("compare 1 2: metrics side by side, AP per class", async () => {
    const { json } = await run("compare", "1", "v2");
    const rows = (json as { rows: { metric: string; a: number; b: number }[] }).rows;
    const by = new Map(rows.map((r) => [r.metric, [r.a, r.b]]));
    assert.deepEqual(by.get("val_map50"), [0.6, 0.8]);
    assert.deepEqual(by.get("ap50[car]"), [0.5, 0.9]);
    assert.deepEqual(by.get("ap50[person]"), [0.7, 0.7]);
    assert.deepEqual(by.get("ap[car]"), [0.25, 0.45]);
  });

  await t.step("rollback: champion goes back to the version it replaced", async () => {
    const { json } = await run("rollback");
    assert.deepEqual(json, { alias: "champion", from: "2", to: "1" });
    assert.equal((await tracker.getVersionByAlias(NAME, "champion"))?.version, "1");
    await assert.rejects(run("rollback"), /records no earlier holder/);
  });

  await t.step("promote 2 --alias champion, approve 1", async () => {
    assert.deepEqual((await run("promote", "2")).json, { alias: "champion", from: "1", to: "2" });
    assert.equal((await tracker.getVersionByAlias(NAME, "champion"))?.version, "2");
    assert.match((await run("promote", "2")).text, /already points at version 2/);
    await run("approve", "1");
    assert.equal((await tracker.getModelVersion(NAME, "1")).tags.approved, "true");
    assert.deepEqual((await run("rollback")).json, { alias: "champion", from: "2", to: "1" });
  });

  await t.step("unknown versions and aliases are named", async () => {
    await assert.rejects(run("show", "9"), /expected version 9, found none/);
    await assert.rejects(run("show", "@nope"), /expected alias @nope to be set/);
    await assert.rejects(run("show", "latest"), /expected a number/);
  });
}

Deno.test("models: the embedded file store", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-models-" });
  const tracker = new FileTracker({ root: join(dir, "mlruns") });
  try {
    await scenario(t, tracker, dir);
  } finally {
    await tracker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("models: an MLflow server", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-models-" });
  const server = await MlflowFaultServer.start();
  const tracker = new MlflowRestTracker({
    trackingUri: server.url,
    logger: createLogger({ stage: "test", json: true, sink: () => {} }),
  });
  try {
    await scenario(t, tracker, dir);
  } finally {
    await tracker.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sluice-train models list (the command line, embedded store)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-models-cli-" });
  try {
    const mlruns = join(dir, "mlruns");
    const tracker = new FileTracker({ root: mlruns });
    await seed(tracker, dir);
    await tracker.close();
    const main = new URL("./main.ts", import.meta.url).pathname;
    const env = {
      SLUICE_MLFLOW_LOCAL_DIR: mlruns,
      SLUICE_MLFLOW_MODEL_NAME: NAME,
      SLUICE_HOME: dir,
    };
    const list = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "models", "list", "--json"],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(list.code, 0, new TextDecoder().decode(list.stderr));
    const rows = JSON.parse(new TextDecoder().decode(list.stdout));
    assert.deepEqual(rows.map((r: { version: string }) => r.version), ["2", "1"]);
    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "models", "frobnicate"],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 2);
    assert.match(new TextDecoder().decode(bad.stderr), /expected one of list, show, promote/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Reviews of v2's pre-annotations: one accepted as is, one with a car deleted and a person added. */
async function recordReviews(manifest: ManifestStore): Promise<void> {
  const box = (label: string, x: number): LabelledBox => ({ label, bbox: [x, 0, 100, 100] });
  const reviews: [LabelledBox[], LabelledBox[]][] = [
    [[box("car", 0)], [box("car", 0)]],
    [[box("car", 0), box("car", 300)], [box("car", 0), box("person", 600)]],
  ];
  for (const [i, [predicted, kept]] of reviews.entries()) {
    const { image } = await manifest.upsertSourceObject({
      sourceUri: `s3://raw/r${i}.jpg`,
      sourceKey: `r${i}.jpg`,
    });
    const { counts, perClass } = diffReview(predicted, kept);
    await manifest.applyReview({
      annotationId: String(i + 1),
      taskId: String(i + 1),
      imageId: image.id,
      reviewer: "7",
      reviewedAt: 1000 + i,
      modelName: NAME,
      modelVersion: "2",
      counts,
      perClass,
      boxes: kept,
    });
  }
}

async function reviewScenario(t: Deno.TestContext, manifestUrl: string, dir: string) {
  const tracker = new FileTracker({ root: join(dir, "mlruns") });
  const manifest = await openManifest(manifestUrl);
  try {
    await seed(tracker, dir);
    await recordReviews(manifest);
    const show = (v: string) =>
      runModelsAction(tracker, {
        modelName: NAME,
        action: "show",
        args: [v],
        alias: "champion",
        tag: TAG,
        manifest,
      });
    await t.step("show 2: acceptance, boxes by edit, precision and recall per class", async () => {
      const { text, json } = await show("2");
      const review = (json as { review: ReviewQuality }).review;
      // 3 predicted boxes: 2 kept unchanged, 1 deleted; 1 added.
      assert.equal(review.images, 2);
      assert.equal(review.imagesUnchanged, 1);
      assert.deepEqual(review.boxes, {
        unchanged: 2,
        moved: 0,
        relabelled: 0,
        deleted: 1,
        added: 1,
      });
      assert.equal(review.acceptance, 2 / 3);
      assert.deepEqual(review.perClass, {
        _all: { precision: 2 / 3, recall: 2 / 3 },
        car: { precision: 2 / 3, recall: 1 },
        person: { precision: null, recall: 0 },
      });
      assert.match(text, /review: 2 images \(1 unchanged\), acceptance 0\.6667/);
      assert.match(text, /review boxes: unchanged 2, moved 0, relabelled 0, deleted 1, added 1/);
      assert.match(text, /review car\s+0\.6667\s+1\.0000/);
      assert.match(text, /review person\s+-\s+0\.0000/);
    });
    await t.step("show 1: a version nobody reviewed says so", async () => {
      const { text, json } = await show("1");
      assert.equal((json as { review: unknown }).review, null);
      assert.match(text, /review: no reviewed images/);
    });
  } finally {
    await manifest.close();
    await tracker.close();
  }
}

Deno.test("models show: live review quality from the manifest, SQLite and the command line", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-models-review-" });
  try {
    const manifestUrl = `sqlite://${join(dir, "manifest.db")}`;
    await reviewScenario(t, manifestUrl, dir);
    await t.step("sluice-train models show 2 reads the configured manifest", async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("./main.ts", import.meta.url).pathname, "models", "show", "2"],
        env: {
          SLUICE_MLFLOW_LOCAL_DIR: join(dir, "mlruns"),
          SLUICE_MLFLOW_MODEL_NAME: NAME,
          SLUICE_MANIFEST_URL: manifestUrl,
          SLUICE_HOME: dir,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const text = new TextDecoder().decode(out.stdout);
      assert.match(text, /^model det version 2/);
      assert.match(text, /review: 2 images \(1 unchanged\), acceptance 0\.6667/);
      assert.match(text, /review _all\s+0\.6667\s+0\.6667/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const pg = postgresAvailability();

Deno.test({
  name: "models show: live review quality from a PostgreSQL manifest",
  ignore: !pg.ok,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "sluice-models-review-pg-" });
    const server = await startPostgres();
    try {
      await reviewScenario(t, server.url, dir);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * The assembled stage: HTTP endpoints and metrics, failures and aborts recorded in the tracker and
 * the manifest, and the request queue. Trainers here are small shell scripts standing in for a
 * failing or hanging trainer process (the real trainer runs in run_training_test.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../common/config/mod.ts";
import { findPromtool, promtoolCheck } from "../../common/metrics/mod.ts";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { type TrainSettingsInput, TrainSettingsSchema } from "./config.ts";
import { createTrainStage } from "./stage.ts";
import { openTrainTestEnv, type TrainTestEnv } from "./testdata/env.ts";
import { seedTrainingData } from "./testdata/seed_manifest.ts";

async function configFor(env: TrainTestEnv, train: TrainSettingsInput) {
  const config = await loadConfig({
    stage: "train",
    stageSchema: TrainSettingsSchema,
    cwd: env.dir,
    env: {},
    argv: ["--http-port", "0", "--worker-idle-poll-ms", "50"],
  });
  return { ...config, stage: TrainSettingsSchema.parse({ variant: "96", ...train }) };
}

Deno.test("train stage", async (t) => {
  const env = await openTrainTestEnv({ quiet: true });
  try {
    await seedTrainingData(env.manifest, env.store, {
      count: 10,
      seed: 2,
      variant: { name: "96", width: 96, height: 96, mode: "letterbox" },
    });
    const deps = { manifest: env.manifest, store: env.store, staging: env.staging, log: env.log };

    await t.step(
      "a failing trainer: tracker run FAILED, manifest row failed with the reason",
      async () => {
        const config = await configFor(env, {
          trainerCommand: '["/bin/sh", "-c", "echo CUDA error: out of memory >&2; exit 3"]',
        });
        const stage = await createTrainStage(config, deps);
        try {
          await assert.rejects(stage.runOnce(), { code: "trainer_failed" });
          const [row] = await env.manifest.listTrainingRuns();
          assert.equal(row.status, "failed");
          assert.match(row.params.error, /^trainer_failed: .*out of memory/);
          const tracker = new FileTracker({ root: config.mlflow.localDir });
          try {
            assert.equal((await tracker.getRun(row.runId!)).info.status, "FAILED");
          } finally {
            await tracker.close();
          }
          const status = await (await stage.handler.fetch(new Request("http://x/status"))).json();
          assert.equal(status.state, "idle");
          assert.equal(status.last.ok, false);
          const text = await stage.metrics.stage.metrics();
          assert.match(text, /sluice_train_runs_total\{result="failed"\} 1/);
          assert.match(text, /sluice_train_errors_total\{reason="trainer_failed"\} 1/);
          assert.match(text, /sluice_train_running 0/);
        } finally {
          await stage.close();
        }
      },
    );

    await t.step(
      "training_runs.tracker never holds the tracking URI's credentials",
      async () => {
        const config = await configFor(env, { trainerCommand: '["/bin/sh", "-c", "exit 3"]' });
        const stage = await createTrainStage(config, {
          ...deps,
          trackerUri: "https://mluser:Tr4ck3r-Pa55@mlflow.example:5000/?token=T0k3n-S3cret",
        });
        try {
          await assert.rejects(stage.runOnce(), { code: "trainer_failed" });
          const rows = await env.manifest.listTrainingRuns();
          const row = rows.find((r) => r.tracker.includes("mlflow.example"));
          assert.ok(row, `a row naming the tracker: ${JSON.stringify(rows.map((r) => r.tracker))}`);
          assert.doesNotMatch(JSON.stringify(rows), /Tr4ck3r-Pa55|T0k3n-S3cret/);
        } finally {
          await stage.close();
        }
      },
    );

    await t.step("abort stops the trainer; the run is recorded as killed", async () => {
      // The trainer marks that it started; the abort comes only then, so that a slow snapshot on a
      // loaded machine is not what gets aborted.
      const marker = join(await Deno.makeTempDir(), "started");
      const config = await configFor(env, {
        trainerCommand: JSON.stringify(["/bin/sh", "-c", `touch '${marker}'; sleep 60`]),
      });
      const ac = new AbortController();
      const stage = await createTrainStage(config, { ...deps, signal: ac.signal });
      try {
        const started = Date.now();
        const abortWhenStarted = (async () => {
          while (!(await Deno.stat(marker).then(() => true, () => false))) {
            if (Date.now() - started > 60_000) throw new Error("the trainer never started");
            await new Promise((r) => setTimeout(r, 50));
          }
          ac.abort();
        })();
        await assert.rejects(stage.runOnce(), { code: "trainer_aborted" });
        await abortWhenStarted;
        assert.ok(Date.now() - started < 30_000);
        const killed = (await env.manifest.listTrainingRuns()).find((r) => r.status === "killed");
        assert.ok(killed, "a killed run row");
        const tracker = new FileTracker({ root: config.mlflow.localDir });
        try {
          assert.equal((await tracker.getRun(killed.runId!)).info.status, "KILLED");
        } finally {
          await tracker.close();
        }
      } finally {
        await stage.close();
      }
    });

    await t.step("a trainer that exits 0 without a summary registers nothing", async () => {
      const config = await configFor(env, { trainerCommand: '["/bin/sh", "-c", "exit 0"]' });
      const stage = await createTrainStage(config, deps);
      try {
        await assert.rejects(stage.runOnce(), { code: "trainer_no_summary" });
        const tracker = new FileTracker({ root: config.mlflow.localDir });
        try {
          assert.equal(await tracker.getRegisteredModel(config.mlflow.modelName), null);
        } finally {
          await tracker.close();
        }
      } finally {
        await stage.close();
      }
    });

    await t.step(
      "worker: a request that cannot succeed fails for good with its reason",
      async () => {
        const config = await configFor(env, { variant: "640" });
        const stage = await createTrainStage(config, deps);
        try {
          assert.equal(await stage.request("r-1"), true);
          assert.equal(await stage.request("r-1"), false);
          const summary = await stage.work({ once: true });
          assert.equal(summary.failed, 1);
          const [w] = await env.manifest.listWork("train", "failed");
          assert.equal(w.itemId, "r-1");
          assert.equal(w.attempts, 1, "empty_dataset is not retried");
          assert.match(w.lastError ?? "", /empty_dataset/);
        } finally {
          await stage.close();
        }
      },
    );

    await t.step("HTTP: health, readiness, status, and promtool-clean metrics", async () => {
      const config = await configFor(env, {});
      const stage = await createTrainStage(config, deps);
      try {
        const get = (path: string) => stage.handler.fetch(new Request(`http://x${path}`));
        assert.equal((await get("/healthz")).status, 200);
        const ready = await get("/readyz");
        assert.equal(ready.status, 200);
        await ready.body?.cancel();
        assert.deepEqual(await (await get("/status")).json(), { state: "idle" });
        const res = await get("/metrics");
        const text = await res.text();
        for (
          const name of [
            "sluice_train_images_per_second",
            "sluice_train_epoch",
            "sluice_train_loss",
            "sluice_train_val_map",
            "sluice_train_runs_total",
          ]
        ) {
          assert.ok(text.includes(`# TYPE ${name} `), name);
        }
        const promtool = await findPromtool();
        if (promtool) {
          const r = await promtoolCheck(text, promtool);
          assert.ok(r.ok, r.output);
        }
      } finally {
        await stage.close();
      }
    });
  } finally {
    await env.close();
  }
});

Deno.test("config: defaults and refusals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-train-config-" });
  try {
    const config = await loadConfig({
      stage: "train",
      stageSchema: TrainSettingsSchema,
      cwd: dir,
      env: {},
    });
    assert.deepEqual(
      {
        variant: config.stage.variant,
        launcher: config.stage.launcher,
        threshold: config.stage.promotionThreshold,
        alias: config.stage.approvedAlias,
        prefix: config.stage.trainingPrefix,
        command: config.stage.trainerCommand,
      },
      {
        variant: "320",
        launcher: "local",
        threshold: 0.5,
        alias: "champion",
        prefix: "training",
        command: ["/usr/bin/python3", "stages/train/trainer/train.py"],
      },
    );
    assert.equal(config.stage.trainingUrl, undefined, "unset: the objectStore is used");
    const parse = (v: TrainSettingsInput) => TrainSettingsSchema.safeParse(v).success;
    assert.equal(parse({ inputSize: 100 }), false, "not a multiple of 32");
    assert.equal(parse({ approvedAlias: "candidate" }), false);
    assert.equal(parse({ trainingPrefix: "../up" }), false);
    assert.equal(parse({ trainerCommand: "[1, 2]" }), false);
    assert.deepEqual(
      TrainSettingsSchema.parse({ trainerCommand: '["python3", "my train.py"]' }).trainerCommand,
      ["python3", "my train.py"],
    );
    assert.equal(
      TrainSettingsSchema.parse({ trainingPrefix: "data/training/" }).trainingPrefix,
      "data/training",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { fetchModel, loadModel, MODEL_MARKER, modelCacheDir } from "./model_loader.ts";
import { type ModelSource, resolveModelSource } from "./model_resolver.ts";
import { buildModel, NEEDS_TORCH, registerModel } from "./_test_fixtures.ts";

const s3 = await s3Availability();

function fileSource(uri: string): ModelSource {
  return { name: "det", version: null, alias: null, via: "uri", uri, movable: false };
}

Deno.test({
  name: "fetchModel caches each version on local disk; loadModel opens it with its card",
  ignore: NEEDS_TORCH,
  async fn(t) {
    const dir = await mkdtemp(join(tmpdir(), "infer-loader-"));
    const root = join(dir, "nvme");
    try {
      const built = await buildModel("boxfinder", join(dir, "built"), { size: 128 });

      await t.step("file:// directory: versioned by content, fetched once", async () => {
        const f = await fetchModel(fileSource(pathToFileURL(built).href), { root });
        assert.match(f.ref.version, /^sha-[0-9a-f]{12}$/);
        assert.equal(f.dir, modelCacheDir(root, "det", f.ref.version));
        assert.equal(f.dir, join(root, "models", "det", f.ref.version));
        assert.deepEqual((await readdir(f.dir)).sort(), [
          MODEL_MARKER,
          "labels.json",
          "model.onnx",
          "model_card.json",
        ]);
        assert.equal(f.cardPath, join(f.dir, "model_card.json"));
        assert.equal(f.cached, false);
        const again = await fetchModel(fileSource(pathToFileURL(built).href), { root });
        assert.equal(again.cached, true);
        assert.equal(again.ref.version, f.ref.version);
        // No temporary directories are left behind.
        assert.deepEqual(
          (await readdir(join(root, "models", "det"))).filter((n) => n.startsWith(".")),
          [],
        );

        const model = await loadModel(f, { provider: "cpu" });
        try {
          assert.equal(model.session.provider, "cpu");
          assert.deepEqual(model.spec.labels, ["red"]);
          assert.equal(model.spec.inputWidth, 128);
        } finally {
          await model.session.close();
        }
      });

      await t.step(
        "file:// .onnx file: its model_card.json and labels.json come along",
        async () => {
          const uri = pathToFileURL(join(built, "model.onnx")).href;
          const f = await fetchModel({ ...fileSource(uri), name: "single" }, { root });
          assert.equal(f.cached, false);
          assert.deepEqual((await readdir(f.dir)).sort(), [
            MODEL_MARKER,
            "labels.json",
            "model.onnx",
            "model_card.json",
          ]);
          // Same bytes under the first name: the content-derived version is already cached.
          assert.equal((await fetchModel(fileSource(uri), { root })).cached, true);
        },
      );

      await t.step("models:/ through the MLflow file store", async () => {
        const tracker = new FileTracker({ root: join(dir, "mlruns") });
        try {
          const version = await registerModel(tracker, "det", built);
          await tracker.setAlias("det", "champion", version);
          const source = await resolveModelSource(tracker, {
            name: "det",
            alias: "champion",
            approvedTag: { key: "approved", value: "true" },
            stage: "Production",
          });
          const f = await fetchModel(source, { root, tracker });
          assert.equal(f.dir, join(root, "models", "det", "1"));
          assert.equal(f.ref.alias, "champion");
          const model = await loadModel(f, { provider: "auto" });
          await model.session.close();

          // runs:/<run>/model: the run's artifacts, cached under run-<id>.
          const v = await tracker.getModelVersion("det", version);
          const byRun = await resolveModelSource(tracker, {
            name: "det",
            alias: "champion",
            approvedTag: { key: "approved", value: "true" },
            stage: "Production",
            modelUri: `runs:/${v.runId}/model`,
          });
          const r = await fetchModel(byRun, { root, tracker });
          assert.equal(r.dir, join(root, "models", "det", `run-${v.runId}`));
          assert.deepEqual(await Deno.readFile(r.onnxPath), await Deno.readFile(f.onnxPath));
          assert.equal(r.cached, false);
          assert.equal((await fetchModel(byRun, { root, tracker })).cached, true);
        } finally {
          await tracker.close();
        }
      });

      await t.step("unusable model files fail with a named reason", async () => {
        const junk = join(dir, "junk");
        await mkdir(junk);
        await writeFile(join(junk, "model.onnx"), "this is not a protobuf");
        await copyFile(join(built, "labels.json"), join(junk, "labels.json"));
        const f = await fetchModel(fileSource(pathToFileURL(junk).href), { root });
        const err = await loadModel(f, { provider: "cpu" }).catch((e) => e);
        assert.equal(err.code, "model_load_failed");
        assert.match(err.message, /expected an ONNX model onnxruntime can load/);

        const empty = join(dir, "empty");
        await mkdir(empty);
        await writeFile(join(empty, "README"), "no model here");
        const none = await fetchModel(fileSource(pathToFileURL(empty).href), { root }).catch((e) =>
          e
        );
        assert.equal(none.code, "model_fetch_failed");
        assert.match(none.message, /expected one \.onnx file/);

        const nolabels = join(dir, "nolabels");
        await mkdir(nolabels);
        await copyFile(join(built, "model.onnx"), join(nolabels, "model.onnx"));
        // Same bytes as `built`: use another name so the cache does not answer.
        const g = await fetchModel({ ...fileSource(pathToFileURL(nolabels).href), name: "bare" }, {
          root,
        });
        const bad = await loadModel(g, { provider: "cpu" }).catch((e) => e);
        assert.equal(bad.code, "invalid_model");
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name:
    "fetchModel reads s3:// models (a prefix, or one .onnx with its card) from a real S3 server",
  ignore: NEEDS_TORCH || !s3.ok,
  async fn(t) {
    const dir = await mkdtemp(join(tmpdir(), "infer-loader-s3-"));
    const server = await startS3Server();
    const opts = {
      endpoint: server.endpoint,
      region: server.region,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      forcePathStyle: true,
    };
    const root = join(dir, "nvme");
    try {
      const built = await buildModel("boxfinder", join(dir, "built"), { size: 96 });
      await server.createBucket("models");
      const bucket = await openObjectStore("s3://models/det/v7", { s3: opts });
      try {
        for (const name of ["model.onnx", "model_card.json", "labels.json"]) {
          await bucket.put(name, await Deno.readFile(join(built, name)));
        }
      } finally {
        await bucket.close();
      }

      await t.step("a prefix: every object under it, versioned by the ONNX content", async () => {
        const f = await fetchModel(fileSource("s3://models/det/v7/"), { root, s3: opts });
        assert.match(f.ref.version, /^sha-[0-9a-f]{12}$/);
        assert.deepEqual((await readdir(f.dir)).sort(), [
          MODEL_MARKER,
          "labels.json",
          "model.onnx",
          "model_card.json",
        ]);
        assert.deepEqual(
          await Deno.readFile(f.onnxPath),
          await Deno.readFile(join(built, "model.onnx")),
        );
        const model = await loadModel(f, { provider: "cpu" });
        try {
          assert.equal(model.spec.inputWidth, 96);
          assert.deepEqual(model.spec.labels, ["red"]);
        } finally {
          await model.session.close();
        }
      });

      await t.step("one .onnx object brings its model_card.json and labels.json", async () => {
        const f = await fetchModel(
          { ...fileSource("s3://models/det/v7/model.onnx"), name: "single" },
          { root, s3: opts },
        );
        assert.equal(f.cached, false);
        assert.deepEqual((await readdir(f.dir)).sort(), [
          MODEL_MARKER,
          "labels.json",
          "model.onnx",
          "model_card.json",
        ]);
      });

      await t.step("a prefix without a model is refused by name", async () => {
        const err = await fetchModel(fileSource("s3://models/empty/"), { root, s3: opts })
          .catch((e) => e);
        assert.equal(err.code, "model_fetch_failed");
        assert.match(err.message, /expected one \.onnx file/);
      });
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

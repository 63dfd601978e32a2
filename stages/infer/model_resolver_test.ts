import assert from "node:assert/strict";
import { registryKey } from "../../common/mlflow/registry_identity.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileTracker, MlflowRestTracker } from "../../common/mlflow/mod.ts";
import {
  derivedMlmodelDownload,
  type Exchange,
  loadRecording,
  recordedPayloads,
  ReplayServer,
} from "../../tests/support/mlflow/replay_server.ts";
import { fetchModel } from "./model_loader.ts";
import {
  describeModel,
  inferQueue,
  type ModelSelection,
  modelVersionLabel,
  NoApprovedModelError,
  resolveModelSource,
  servingReason,
} from "./model_resolver.ts";
import { registerModel } from "./_test_fixtures.ts";

const SEL: ModelSelection = {
  name: "det",
  alias: "champion",
  approvedTag: { key: "approved", value: "true" },
  stage: "Production",
};

async function modelFiles(dir: string): Promise<string> {
  await writeFile(join(dir, "model.onnx"), "not really onnx");
  await writeFile(join(dir, "labels.json"), '["a"]');
  return dir;
}

Deno.test("resolveModelSource on the file store: alias, then approved tag, then Production", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "infer-resolve-"));
  const tracker = new FileTracker({ root: join(dir, "mlruns") });
  try {
    const files = await modelFiles(await mkdtemp(join(dir, "m-")));
    const v1 = await registerModel(tracker, "det", files);
    const v2 = await registerModel(tracker, "det", files);
    const v3 = await registerModel(tracker, "det", files);
    assert.deepEqual([v1, v2, v3], ["1", "2", "3"]);

    await t.step("nothing approved: a named error listing what was tried", async () => {
      const err = await resolveModelSource(tracker, SEL).catch((e) => e);
      assert.ok(err instanceof NoApprovedModelError);
      assert.equal(err.code, "no_approved_model");
      assert.match(err.message, /alias "champion".*approved=true.*Production.*3 version/);
      assert.match(
        err.message,
        /the newest is v3: serve it with "sluice-train models promote 3 --alias champion"/,
      );
    });

    await t.step("the legacy Production stage is the last fallback", async () => {
      await tracker.transitionStage("det", "1", "Production");
      const s = await resolveModelSource(tracker, SEL);
      assert.equal(s.version, "1");
      assert.equal(s.via, "stage");
      assert.equal(
        servingReason(s, SEL),
        "neither the alias nor the approval tag is set; det v1 is the newest READY version in stage Production",
      );
      assert.equal(s.uri, "models:/det/1");
      assert.equal(s.movable, true);
    });

    await t.step(
      "a version tagged approved=true wins over the stage; the newest tagged",
      async () => {
        await tracker.setModelVersionTag("det", "2", "approved", "true");
        assert.equal((await resolveModelSource(tracker, SEL)).version, "2");
        await tracker.setModelVersionTag("det", "3", "approved", "true");
        const s = await resolveModelSource(tracker, SEL);
        assert.equal(s.version, "3");
        assert.equal(s.via, "tag");
        assert.equal(
          servingReason(s, SEL),
          "no alias champion is set; det v3 is the newest READY version tagged approved=true",
        );
        assert.equal(s.alias, null);
        // Another tag value is not approval.
        await tracker.setModelVersionTag("det", "3", "approved", "false");
        assert.equal((await resolveModelSource(tracker, SEL)).version, "2");
      },
    );

    await t.step("the alias wins over both, and moving it moves the choice", async () => {
      await tracker.setAlias("det", "champion", "1");
      let s = await resolveModelSource(tracker, SEL);
      assert.deepEqual([s.version, s.via, s.alias], ["1", "alias", "champion"]);
      assert.equal(describeModel(s), "det v1 (alias champion)");
      assert.equal(servingReason(s, SEL), "alias champion points at det v1");
      assert.equal(modelVersionLabel({ ...s, version: "1" }), "det:1@champion");
      assert.equal(inferQueue({ name: "det", version: "1" }), "infer:det@1");
      assert.equal(
        inferQueue({ name: "det", version: "1", registry: "http://127.0.0.1:5000" }),
        `infer:det@1#${registryKey("http://127.0.0.1:5000")}`,
      );
      await tracker.setAlias("det", "champion", "3");
      s = await resolveModelSource(tracker, SEL);
      assert.equal(s.version, "3");
      await tracker.deleteAlias("det", "champion");
      assert.equal((await resolveModelSource(tracker, SEL)).via, "tag");
    });

    await t.step(
      "explicit URIs: models:/name@alias, models:/name/N, runs:/, s3://, file://",
      async () => {
        await tracker.setAlias("det", "challenger", "2");
        const byAlias = await resolveModelSource(tracker, {
          ...SEL,
          modelUri: "models:/det@challenger",
        });
        assert.deepEqual(
          [byAlias.version, byAlias.via, byAlias.alias, byAlias.movable, byAlias.uri],
          ["2", "uri", "challenger", true, "models:/det/2"],
        );
        const pinned = await resolveModelSource(tracker, { ...SEL, modelUri: "models:/det/1" });
        assert.deepEqual([pinned.version, pinned.movable], ["1", false]);
        const latest = await resolveModelSource(tracker, {
          ...SEL,
          modelUri: "models:/det/latest",
        });
        assert.deepEqual([latest.version, latest.movable], ["3", true]);
        const v1 = await tracker.getModelVersion("det", "1");
        const run = await resolveModelSource(tracker, {
          ...SEL,
          modelUri: `runs:/${v1.runId}/model`,
        });
        assert.deepEqual([run.name, run.version, run.movable], ["det", `run-${v1.runId}`, false]);
        for (const uri of ["s3://models/det/", "file:///srv/models/det/model.onnx"]) {
          const s = await resolveModelSource(tracker, { ...SEL, modelUri: uri });
          assert.deepEqual([s.version, s.uri, s.via], [null, uri, "uri"]);
        }
        const unset = await resolveModelSource(tracker, { ...SEL, modelUri: "models:/det@nobody" })
          .catch((e) => e);
        assert.ok(unset instanceof NoApprovedModelError);
        const missing = await resolveModelSource(tracker, { ...SEL, modelUri: "models:/det/9" })
          .catch((e) => e);
        assert.equal(missing.code, "not_found");
      },
    );
  } finally {
    await tracker.close();
    await rm(dir, { recursive: true, force: true });
  }
});

const MODEL = "ts-client-contract-model";
const RUN = "cbc9d23a500e45bba5f0dff5b532b0ef";

/** A REST tracker against the recorded MLflow 2.17.2 exchanges (match mode). */
async function replay(indices: (number | Exchange)[]) {
  const rec = await loadRecording();
  const p = recordedPayloads(rec);
  const exchanges = indices.map((i) => (typeof i === "number" ? rec[i] : i));
  const server = new ReplayServer({ mode: "match", exchanges, downloads: p.downloads }).start();
  const client = new MlflowRestTracker({ trackingUri: server.url, baseDelayMs: 1, maxAttempts: 1 });
  return { server, client, p, rec };
}

Deno.test("resolveModelSource through the REST tracker, as the recording allows", async (t) => {
  const sel: ModelSelection = { ...SEL, name: MODEL };

  await t.step("the alias names version 1", async () => {
    const { server, client } = await replay([36]);
    try {
      const s = await resolveModelSource(client, sel);
      assert.deepEqual([s.version, s.via, s.alias, s.runId], ["1", "alias", "champion", RUN]);
      assert.deepEqual(server.problems, []);
    } finally {
      await client.close();
      await server.close();
    }
  });

  await t.step("a moved alias is seen on the next look-up", async () => {
    const { server, client } = await replay([36, 79]);
    try {
      assert.equal((await resolveModelSource(client, sel)).version, "1");
      assert.equal((await resolveModelSource(client, sel)).version, "2");
      assert.deepEqual(server.problems, []);
    } finally {
      await client.close();
      await server.close();
    }
  });

  await t.step(
    "a missing alias (400 on the server) falls back to the tag, then the stage",
    async () => {
      // The recording has alias "nope" unset (#37) and one version search (#48) where v1 is tagged
      // validated=true and in stage Staging; no version is in Production.
      const { server, client } = await replay([37, 48]);
      const noAlias = { ...sel, alias: "nope" };
      try {
        const byTag = await resolveModelSource(client, {
          ...noAlias,
          approvedTag: { key: "validated", value: "true" },
        });
        assert.deepEqual([byTag.version, byTag.via], ["1", "tag"]);
        const byStage = await resolveModelSource(client, { ...noAlias, stage: "Staging" });
        assert.deepEqual([byStage.version, byStage.via], ["1", "stage"]);
        const none = await resolveModelSource(client, noAlias).catch((e) => e);
        assert.ok(none instanceof NoApprovedModelError, String(none));
        assert.match(none.message, /2 version\(s\)/);
        assert.deepEqual(server.problems, []);
      } finally {
        await client.close();
        await server.close();
      }
    },
  );

  await t.step("an explicit models:/name/N is checked against the registry", async () => {
    const { server, client } = await replay([45]);
    try {
      const s = await resolveModelSource(client, { ...sel, modelUri: `models:/${MODEL}/1` });
      assert.deepEqual([s.version, s.via, s.movable], ["1", "uri", false]);
      assert.deepEqual(server.problems, []);
    } finally {
      await client.close();
      await server.close();
    }
  });

  await t.step(
    "the chosen version downloads into the NVMe cache through the artifact proxy",
    async () => {
      const rec = await loadRecording();
      const { server, client, p } = await replay([36, 43, 20, derivedMlmodelDownload(rec), 21]);
      const root = await mkdtemp(join(tmpdir(), "infer-rest-cache-"));
      try {
        const source = await resolveModelSource(client, sel);
        const f = await fetchModel(source, { root, tracker: client });
        assert.equal(f.dir, join(root, "models", MODEL, "1"));
        assert.equal(f.onnxPath, join(f.dir, "model.onnx"));
        assert.deepEqual(await Deno.readFile(f.onnxPath), p.modelOnnx);
        assert.equal(f.cached, false);
        // Cached now: no further request is needed (the server would refuse one).
        const again = await fetchModel(source, { root, tracker: client });
        assert.equal(again.cached, true);
        assert.deepEqual(server.problems, []);
      } finally {
        await client.close();
        await server.close();
        await rm(root, { recursive: true, force: true });
      }
    },
  );
});

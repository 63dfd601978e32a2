/**
 * Test support: the behaviour every {@link Tracker} must show, as one scenario run by
 * `contract_test.ts` against the FileTracker (for real) and against the MlflowRestTracker on the
 * replay server (in `match` mode). The scenario follows the recorded one (same names, values and
 * order of state changes), so the recording can answer it; it asserts only what must hold for both
 * (ids are opaque, artifact URIs differ in scheme).
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MlflowError } from "../../../common/mlflow/errors.ts";
import type { Tracker } from "../../../common/mlflow/tracker.ts";

/** What the scenario runs against. */
export interface ContractSubject {
  tracker: Tracker;
  /** A scratch directory (removed by the caller). */
  tmp: string;
  /** The recorded payloads: the model file and its MLmodel. */
  modelOnnx: Uint8Array;
  mlmodel: Uint8Array;
  /** Called after every step (e.g. to check that the replay server saw no mismatch). */
  afterStep?: () => void;
}

const MODEL = "ts-client-contract-model";

async function rejectsCode(p: Promise<unknown>, code: string, errorCode?: string): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof MlflowError, `expected an MlflowError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  if (errorCode) assert.equal(caught.errorCode, errorCode, caught.message);
}

/** Runs the contract scenario as steps of `t`. */
export async function trackerContract(t: Deno.TestContext, s: ContractSubject): Promise<void> {
  const tr = s.tracker;
  let exp = "";
  let runId = "";
  let artifactUri = "";
  let edge = "";
  const step = async (name: string, fn: () => Promise<void>) => {
    const ok = await t.step(name, async () => {
      await fn();
      s.afterStep?.();
    });
    if (!ok) throw new Error(`contract step "${name}" failed; later steps depend on it`);
  };
  const file = async (rel: string, bytes: Uint8Array) => {
    const path = join(s.tmp, ...rel.split("/"));
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeFile(path, bytes);
    return path;
  };

  await step("getOrCreateExperiment returns a string id, stable by name", async () => {
    exp = await tr.getOrCreateExperiment("ts-client-contract");
    assert.equal(typeof exp, "string");
    assert.ok(exp.length > 0);
    const found = await tr.getExperimentByName("ts-client-contract");
    assert.equal(found?.experimentId, exp);
    assert.equal(found?.lifecycleStage, "active");
  });

  await step("createRun", async () => {
    const run = await tr.createRun(exp, {
      runName: "contract-run",
      tags: { "mlflow.user": "ts-client", source: "contract-test" },
    });
    assert.equal(run.status, "RUNNING");
    assert.equal(run.runName, "contract-run");
    assert.equal(run.experimentId, exp);
    assert.ok(run.artifactUri.endsWith(`/${run.runId}/artifacts`), run.artifactUri);
    runId = run.runId;
    artifactUri = run.artifactUri;
  });

  await step("logBatch, logMetric, logParam, setTag", async () => {
    await tr.logBatch(runId, {
      params: { lr: 0.01, epochs: 10 },
      metrics: [
        { key: "loss", value: 0.5, step: 0 },
        { key: "loss", value: 0.25, step: 1 },
        { key: "acc", value: 0.9, step: 0 },
      ],
      tags: { stage: "train" },
    });
    await tr.logMetric(runId, "loss", 0.125, { step: 2 });
    await tr.logParam(runId, "opt", "adam");
    await tr.setTag(runId, "k", "v");
  });

  await step("changing a param is INVALID_PARAMETER_VALUE", async () => {
    await rejectsCode(
      tr.logParam(runId, "lr", 0.02),
      "invalid_argument",
      "INVALID_PARAMETER_VALUE",
    );
  });

  await step("metric history keeps every value in order", async () => {
    const h = await tr.getMetricHistory(runId, "loss");
    assert.deepEqual(h.map((m) => [m.value, m.step]), [[0.5, 0], [0.25, 1], [0.125, 2]]);
    assert.ok(h.every((m) => Number.isSafeInteger(m.timestamp) && m.timestamp > 0));
  });

  await step("artifacts: upload, list, download, missing", async () => {
    await tr.logArtifact(runId, await file("model/model.onnx", s.modelOnnx), "model");
    await tr.logArtifact(runId, await file("model/MLmodel", s.mlmodel), "model");
    assert.deepEqual(await tr.listArtifacts(runId), [{ path: "model", isDir: true }]);
    assert.deepEqual(await tr.listArtifacts(runId, "model"), [
      { path: "model/MLmodel", isDir: false, fileSize: s.mlmodel.length },
      { path: "model/model.onnx", isDir: false, fileSize: s.modelOnnx.length },
    ]);
    const dest = join(s.tmp, "dl", "model.onnx");
    await tr.downloadArtifact({ runId, path: "model/model.onnx" }, dest);
    assert.deepEqual(await Deno.readFile(dest), s.modelOnnx);
    await rejectsCode(
      tr.downloadArtifact({ runId, path: "model/nope.bin" }, join(s.tmp, "dl", "nope.bin")),
      "not_found",
      "RESOURCE_DOES_NOT_EXIST",
    );
  });

  await step("finish and read the run back", async () => {
    const info = await tr.updateRun(runId, "FINISHED");
    assert.equal(info.status, "FINISHED");
    assert.equal(typeof info.endTime, "number");
    const run = await tr.getRun(runId);
    assert.equal(run.info.status, "FINISHED");
    assert.equal(run.info.runName, "contract-run");
    assert.deepEqual(run.params, { lr: "0.01", epochs: "10", opt: "adam" });
    assert.equal(run.tags.stage, "train");
    assert.equal(run.tags.k, "v");
    assert.equal(run.tags.source, "contract-test");
    assert.equal(run.tags["mlflow.runName"], "contract-run");
    assert.deepEqual([run.metrics.loss.value, run.metrics.loss.step], [0.125, 2]);
    assert.equal(run.metrics.acc.value, 0.9);
  });

  await step("a missing run is RESOURCE_DOES_NOT_EXIST", async () => {
    await rejectsCode(
      tr.getRun("0123456789abcdef0123456789abcdef"),
      "not_found",
      "RESOURCE_DOES_NOT_EXIST",
    );
  });

  await step("registry: model, versions as strings", async () => {
    const m = await tr.getOrCreateRegisteredModel(MODEL);
    assert.equal(m.name, MODEL);
    const v1 = await tr.createModelVersion(MODEL, `${artifactUri}/model`, runId, {
      description: "v1",
      tags: { format: "onnx" },
    });
    assert.equal(v1, "1");
    assert.equal(await tr.createModelVersion(MODEL, `runs:/${runId}/model`, runId), "2");
    await rejectsCode(
      tr.createModelVersion("no-such-model", `${artifactUri}/model`, runId),
      "not_found",
      "RESOURCE_DOES_NOT_EXIST",
    );
  });

  await step("aliases: set, read, missing → null, missing version", async () => {
    await tr.setAlias(MODEL, "champion", "1");
    const mv = await tr.getVersionByAlias(MODEL, "champion");
    assert.equal(mv?.version, "1");
    assert.deepEqual(mv?.aliases, ["champion"]);
    assert.deepEqual(mv?.tags, { format: "onnx" });
    assert.equal(mv?.source, `${artifactUri}/model`);
    assert.equal(mv?.runId, runId);
    assert.equal(await tr.getVersionByAlias(MODEL, "nope"), null);
    await rejectsCode(tr.setAlias(MODEL, "challenger", "99"), "not_found");
  });

  await step("stage, download URI, version tag, get, search", async () => {
    assert.equal((await tr.transitionStage(MODEL, "1", "Staging", false)).currentStage, "Staging");
    assert.equal(await tr.getDownloadUri(MODEL, "1"), `${artifactUri}/model`);
    await tr.setModelVersionTag(MODEL, "1", "validated", "true");
    const mv = await tr.getModelVersion(MODEL, "1");
    assert.equal(mv.status, "READY");
    assert.equal(mv.currentStage, "Staging");
    assert.deepEqual(mv.tags, { format: "onnx", validated: "true" });
    assert.deepEqual(mv.aliases, ["champion"]);
    const all = await tr.searchModelVersions(MODEL);
    assert.deepEqual(all.map((v) => v.version), ["2", "1"]);
    assert.equal(all[1].tags.validated, "true");
    assert.equal(all[1].currentStage, "Staging");
  });

  await step("delete an alias, set it again, move it", async () => {
    await tr.deleteAlias(MODEL, "champion");
    assert.equal(await tr.getVersionByAlias(MODEL, "champion"), null);
    await tr.setAlias(MODEL, "champion", "1");
    assert.equal(await tr.getDownloadUri(MODEL, "2"), `runs:/${runId}/model`);
    assert.equal(
      (await tr.transitionStage(MODEL, "2", "Production", true)).currentStage,
      "Production",
    );
    await tr.setAlias(MODEL, "champion", "2");
    const mv = await tr.getVersionByAlias(MODEL, "champion");
    assert.equal(mv?.version, "2");
    assert.equal(mv?.currentStage, "Production");
  });

  await step("reserved aliases, missing model, missing version", async () => {
    await rejectsCode(tr.setAlias(MODEL, "v1", "1"), "invalid_argument");
    await rejectsCode(tr.setAlias(MODEL, "latest", "1"), "invalid_argument");
    assert.equal(await tr.getVersionByAlias("no-such-model", "champion"), null);
    await rejectsCode(tr.setModelVersionTag(MODEL, "42", "a", "b"), "not_found");
  });

  await step("NaN round-trips", async () => {
    await tr.logMetric(runId, "nanm", NaN);
    const run = await tr.getRun(runId);
    assert.ok(Number.isNaN(run.metrics.nanm.value));
  });

  await step("±Infinity and NaN in a batch; empty artifact; failed run", async () => {
    const run = await tr.createRun(exp, { runName: "edge-cases", userId: "ts-client" });
    edge = run.runId;
    assert.equal(run.userId, "ts-client");
    await tr.logMetrics(edge, [
      { key: "s_nan", value: NaN },
      { key: "s_inf", value: Infinity },
      { key: "s_ninf", value: -Infinity },
    ]);
    const back = await tr.getRun(edge);
    assert.ok(Number.isNaN(back.metrics.s_nan.value));
    // MLflow's SQL store clamps ±Infinity to ±DBL_MAX; the file store keeps it.
    assert.ok([Infinity, Number.MAX_VALUE].includes(back.metrics.s_inf.value));
    assert.ok([-Infinity, -Number.MAX_VALUE].includes(back.metrics.s_ninf.value));
    await tr.logArtifact(edge, await file("edge/model.onnx", s.modelOnnx), "chunked");
    await tr.logArtifact(edge, await file("edge/empty.txt", new Uint8Array()));
    assert.deepEqual(await tr.listArtifacts(edge), [
      { path: "chunked", isDir: true },
      { path: "empty.txt", isDir: false },
    ]);
    assert.equal((await tr.updateRun(edge, "FAILED")).status, "FAILED");
  });

  await step("resolveModelUri: alias, version, latest, runs:/", async () => {
    const want = `${artifactUri}/model`;
    assert.deepEqual(await tr.resolveModelUri(`models:/${MODEL}@champion`), {
      uri: `models:/${MODEL}@champion`,
      artifactUri: want,
      name: MODEL,
      version: "2",
      runId,
    });
    const v1 = await tr.resolveModelUri(`models:/${MODEL}/1`);
    assert.deepEqual([v1.artifactUri, v1.version], [want, "1"]);
    const latest = await tr.resolveModelUri(`models:/${MODEL}/latest`);
    assert.deepEqual([latest.artifactUri, latest.version], [want, "2"]);
    assert.deepEqual(await tr.resolveModelUri(`runs:/${runId}/model`), {
      uri: `runs:/${runId}/model`,
      artifactUri: want,
      runId,
    });
  });

  await step("downloadModel fetches the model directory", async () => {
    const dir = join(s.tmp, "champion");
    const dl = await tr.downloadModel(`models:/${MODEL}@champion`, dir);
    assert.deepEqual(dl.files, ["MLmodel", "model.onnx"]);
    assert.equal(dl.localDir, dir);
    assert.equal(dl.version, "2");
    assert.deepEqual(await Deno.readFile(join(dir, "model.onnx")), s.modelOnnx);
    assert.deepEqual(await Deno.readFile(join(dir, "MLmodel")), s.mlmodel);
  });
}

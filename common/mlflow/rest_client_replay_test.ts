/**
 * Replays the MLflow 2.17.2 recording (testdata/exchanges-2.17.2.jsonl, 128 exchanges) against
 * MlflowRestTracker: the client is driven through the recorded scenario, in the recorded order,
 * and the replay server checks every request it sends before answering the recorded response.
 * Exchanges the client can never produce (malformed bodies, wrong types, …) are listed in
 * NOT_SENT with the reason, and the test checks that every exchange is either replayed or listed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogger } from "../log/mod.ts";
import { ArtifactNotFoundError, MlflowError } from "./errors.ts";
import { MlflowRestTracker } from "./rest_client.ts";
import type { ModelStage } from "./tracker.ts";
import {
  derivedMlmodelDownload,
  type Exchange,
  type Injected,
  loadRecording,
  recordedPayloads,
  ReplayServer,
} from "../../tests/support/mlflow/replay_server.ts";

const R = "cbc9d23a500e45bba5f0dff5b532b0ef"; // the recorded main run
const MODEL = "ts-client-contract-model";
const TOKEN = "replay-t0k";

/** Recorded exchanges the client never sends, and why. */
const NOT_SENT: Record<number, string> = {
  7: "the client refuses an empty experiment name before sending (asserted in step 7)",
  11: "the client always sends a metric timestamp (default: now)",
  23: "the client downloads through the artifact proxy, not the legacy /get-artifact (its body " +
    "is reused as the MLmodel payload)",
  56: "the client always serialises bodies with JSON.stringify",
  58: "metric values are sent as numbers, or as the strings NaN/Infinity/-Infinity (89, 107)",
  59: "JSON bodies always carry Content-Type: application/json (checked on every request)",
  60: "the client uses /api/2.0, not the /ajax-api alias",
  80: "versions are always sent as strings (35, 53, 78)",
  84: "delete-alias arguments go in the JSON body (51); the query-string form answers 400",
  90: "bare NaN/Infinity literals cannot come out of JSON.stringify; the client sends strings " +
    "(92 shows what the server made of the literals)",
  99: "updateRun only accepts FINISHED, FAILED or KILLED (types and the file tracker)",
  105: 'NaN is sent as the string "NaN", never as null',
  106: 'NaN is sent as the string "NaN", never as null',
  108: "timestamps and steps are sent as JSON integers",
  109: "the client always sends a metric timestamp",
  110: 'params are converted to strings before sending (9 sends epochs=10 as "10")',
  116: 'the client refuses ".." in artifact paths before sending (asserted in step 116)',
  117: "the client never sends dot segments, encoded or not",
};

async function rejectsWith(
  p: Promise<unknown>,
  want: { code: string; errorCode?: string; status?: number; message?: RegExp },
): Promise<MlflowError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof MlflowError, `expected an MlflowError, got ${caught}`);
  assert.equal(caught.code, want.code, caught.message);
  if (want.errorCode !== undefined) assert.equal(caught.errorCode, want.errorCode, caught.message);
  if (want.status !== undefined) assert.equal(caught.status, want.status, caught.message);
  if (want.message) assert.match(caught.message, want.message);
  return caught;
}

const html503: Injected = {
  status: 503,
  body: "<html><body><h1>503 Service Unavailable</h1></body></html>",
};
const throttled: Injected = { status: 429, body: "slow down", headers: { "retry-after": "0" } };
const json500: Injected = {
  status: 500,
  contentType: "application/json",
  body: JSON.stringify({ error_code: "INTERNAL_ERROR", message: "database is locked" }),
};
const gateway502: Injected = { status: 502, body: "bad gateway" };

Deno.test("MlflowRestTracker replays the MLflow 2.17.2 recording", async (t) => {
  const rec = await loadRecording();
  assert.equal(rec.length, 128);
  const sequence = rec.filter((e) => !(e.index in NOT_SENT));
  const pos = (index: number) => sequence.findIndex((e) => e.index === index);
  const p = recordedPayloads(rec);
  const server = new ReplayServer({
    mode: "sequence",
    exchanges: sequence,
    payloads: p.payloads,
    substituted: p.substituted,
    downloads: p.downloads,
    authorization: `Bearer ${TOKEN}`,
    inject: new Map([
      [pos(9), [json500]],
      [pos(16), [gateway502]],
      [pos(25), [html503, throttled]],
    ]),
  }).start();
  const warnings: string[] = [];
  const client = new MlflowRestTracker({
    trackingUri: server.url,
    token: TOKEN,
    baseDelayMs: 1,
    maxDelayMs: 5,
    logger: createLogger({ stage: "test", json: true, sink: (l) => warnings.push(l) }),
  });
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-replay-" });
  const file = async (rel: string, bytes: Uint8Array) => {
    const path = join(tmp, ...rel.split("/"));
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeFile(path, bytes);
    return path;
  };
  let artifactUri = "";
  let edgeRun = "";
  let edgeArtifactUri = "";
  const replayed: number[] = [];

  const step = async (indices: number[], name: string, fn: () => Promise<void>) => {
    const ok = await t.step(`#${indices.join(",")} ${name}`, async () => {
      const before = server.served.length;
      await fn();
      assert.deepEqual(server.problems, []);
      assert.deepEqual(server.served.slice(before), indices, "exchanges served by this step");
    });
    replayed.push(...indices);
    if (!ok) throw new Error(`step #${indices.join(",")} failed; stopping the replay`);
  };

  try {
    await step([0], "health", async () => {
      assert.equal(await client.health(), true);
    });
    await step([1], "server version", async () => {
      assert.equal(await client.serverVersion(), "2.17.2");
    });
    await step([2], "getOrCreateExperiment creates with tags", async () => {
      assert.equal(await client.getOrCreateExperiment("ts-client-contract", { team: "ts" }), "1");
    });
    await step(
      [3, 4],
      "getOrCreateExperiment: RESOURCE_ALREADY_EXISTS, then get-by-name",
      async () => {
        assert.equal(await client.getOrCreateExperiment("ts-client-contract"), "1");
      },
    );
    await step([5], "missing experiment by name is null", async () => {
      assert.equal(await client.getExperimentByName("no-such-exp"), null);
    });
    await step([6], "get experiment", async () => {
      const exp = await client.getExperiment("1");
      assert.equal(exp.experimentId, "1");
      assert.equal(exp.name, "ts-client-contract");
      assert.equal(exp.artifactLocation, "mlflow-artifacts:/1");
      assert.deepEqual(exp.tags, { team: "ts" });
    });
    await step([], "an empty experiment name is refused before sending (#7)", async () => {
      await rejectsWith(client.createExperiment(""), { code: "invalid_argument" });
    });
    await step([8], "create run", async () => {
      const run = await client.createRun("1", {
        runName: "contract-run",
        tags: { "mlflow.user": "ts-client", source: "contract-test" },
      });
      assert.equal(run.runId, R);
      assert.equal(run.status, "RUNNING");
      assert.equal(run.artifactUri, `mlflow-artifacts:/1/${R}/artifacts`);
      artifactUri = run.artifactUri;
    });
    await step([9], "log-batch (params as strings), after a retried 500", async () => {
      await client.logBatch(R, {
        params: { lr: 0.01, epochs: 10 },
        metrics: [
          { key: "loss", value: 0.5, step: 0 },
          { key: "loss", value: 0.25, step: 1 },
          { key: "acc", value: 0.9, step: 0 },
        ],
        tags: { stage: "train" },
      });
    });
    await step([10], "log metric", async () => {
      await client.logMetric(R, "loss", 0.125, { step: 2 });
    });
    await step([12], "log param", async () => {
      await client.logParam(R, "opt", "adam");
    });
    await step([13], "changing a param keeps MLflow's error_code", async () => {
      await rejectsWith(client.logParam(R, "lr", 0.02), {
        code: "invalid_argument",
        errorCode: "INVALID_PARAMETER_VALUE",
        status: 400,
        message: /Changing param values is not allowed/,
      });
    });
    await step([14], "set tag", async () => {
      await client.setTag(R, "k", "v");
    });
    await step([15], "metric history", async () => {
      const h = await client.getMetricHistory(R, "loss");
      assert.deepEqual(h.map((m) => [m.value, m.step]), [[0.5, 0], [0.25, 1], [0.125, 2]]);
      assert.ok(h.every((m) => Number.isSafeInteger(m.timestamp) && m.timestamp > 0));
    });
    await step(
      [16, 17],
      "upload through the proxy (the first PUT retried after a 502)",
      async () => {
        await client.logArtifact(R, await file("model/model.onnx", p.modelOnnx), "model");
        await client.logArtifact(R, await file("model/MLmodel", p.mlmodel), "model");
      },
    );
    await step([18, 19], "list run artifacts (tracking API)", async () => {
      assert.deepEqual(await client.listArtifacts(R), [{ path: "model", isDir: true }]);
      assert.deepEqual(await client.listArtifacts(R, "model"), [
        { path: "model/MLmodel", isDir: false, fileSize: 100 },
        { path: "model/model.onnx", isDir: false, fileSize: 16384 },
      ]);
    });
    await step([20], "list through the proxy", async () => {
      assert.deepEqual(await client.listArtifactUri(`${artifactUri}/model`), [
        { path: "MLmodel", isDir: false, fileSize: 100 },
        { path: "model.onnx", isDir: false, fileSize: 16384 },
      ]);
    });
    await step([21], "download through the proxy", async () => {
      const dest = join(tmp, "dl", "model.onnx");
      assert.equal(
        await client.downloadArtifact({ runId: R, path: "model/model.onnx" }, dest),
        dest,
      );
      assert.deepEqual(await Deno.readFile(dest), p.modelOnnx);
    });
    await step([22], "a missing artifact (proxy 500) is not found, and not retried", async () => {
      const dest = join(tmp, "dl", "nope.bin");
      const err = await rejectsWith(
        client.downloadArtifact({ runId: R, path: "model/nope.bin" }, dest),
        { code: "not_found", errorCode: "RESOURCE_DOES_NOT_EXIST", status: 500 },
      );
      assert.ok(err instanceof ArtifactNotFoundError);
      await assert.rejects(Deno.stat(dest), Deno.errors.NotFound);
    });
    await step([24], "finish the run", async () => {
      const info = await client.updateRun(R, "FINISHED");
      assert.equal(info.status, "FINISHED");
      assert.equal(info.endTime, 1795468872220);
    });
    await step([25], "get run, after a 503 HTML page and a 429", async () => {
      const injectedBefore = server.injectedServed;
      const run = await client.getRun(R);
      assert.equal(server.injectedServed - injectedBefore, 2);
      assert.deepEqual(run.params, { lr: "0.01", epochs: "10", opt: "adam" });
      assert.equal(run.tags.stage, "train");
      assert.equal(run.tags.k, "v");
      assert.equal(run.metrics.loss.value, 0.125);
      assert.equal(run.metrics.acc.value, 0.9);
      assert.equal(run.info.status, "FINISHED");
    });
    await step([26], "a missing run is not_found (404, not retried)", async () => {
      await rejectsWith(client.getRun("0123456789abcdef0123456789abcdef"), {
        code: "not_found",
        errorCode: "RESOURCE_DOES_NOT_EXIST",
        status: 404,
      });
    });
    await step([27], "log metric on a finished run", async () => {
      await client.logMetric(R, "late", 1.0);
    });
    await step([28], "search runs", async () => {
      const runs = await client.searchRuns(["1"], {
        filter: "metrics.acc > 0.5 and params.lr = '0.01'",
        maxResults: 10,
      });
      assert.deepEqual(runs.map((r) => r.info.runId), [R]);
    });
    await step([29], "getOrCreateRegisteredModel creates", async () => {
      const m = await client.getOrCreateRegisteredModel(MODEL, {
        description: "contract test",
        tags: { owner: "ts" },
      });
      assert.equal(m.name, MODEL);
      assert.deepEqual(m.tags, { owner: "ts" });
      assert.deepEqual(m.aliases, {});
    });
    await step([30], "creating it again is already_exists", async () => {
      await rejectsWith(client.createRegisteredModel(MODEL), {
        code: "already_exists",
        errorCode: "RESOURCE_ALREADY_EXISTS",
        status: 400,
      });
    });
    await step([31, 32], "create versions: string version numbers", async () => {
      const v1 = await client.createModelVersion(MODEL, `${artifactUri}/model`, R, {
        description: "v1",
        tags: { format: "onnx" },
      });
      assert.equal(v1, "1");
      assert.equal(await client.createModelVersion(MODEL, `runs:/${R}/model`, R), "2");
    });
    await step([33, 34], "version creation errors", async () => {
      await rejectsWith(client.createModelVersion(MODEL, "/data/somewhere/else", R), {
        code: "invalid_argument",
        status: 400,
      });
      await rejectsWith(client.createModelVersion("no-such-model", `${artifactUri}/model`, R), {
        code: "not_found",
        status: 404,
      });
    });
    await step([35, 36], "set and read an alias", async () => {
      await client.setAlias(MODEL, "champion", "1");
      const mv = await client.getVersionByAlias(MODEL, "champion");
      assert.equal(mv?.version, "1");
      assert.deepEqual(mv?.aliases, ["champion"]);
      assert.deepEqual(mv?.tags, { format: "onnx" });
      assert.equal(mv?.source, `${artifactUri}/model`);
    });
    await step([37], "a missing alias (400 INVALID_PARAMETER_VALUE) is null", async () => {
      assert.equal(await client.getVersionByAlias(MODEL, "nope"), null);
    });
    await step([38], "alias to a missing version", async () => {
      await rejectsWith(client.setAlias(MODEL, "challenger", "99"), {
        code: "not_found",
        status: 404,
      });
    });
    await step([39], "latest versions", async () => {
      assert.deepEqual((await client.getLatestVersions(MODEL)).map((v) => v.version), ["2"]);
    });
    await step([40], "raw call: GET form with a query", async () => {
      const r = await client.call("GET", "registered-models/get-latest-versions", {
        query: { name: MODEL, stages: "None" },
      }) as { model_versions: unknown[] };
      assert.equal(r.model_versions.length, 1);
    });
    await step([41, 42], "stage transition and latest per stage", async () => {
      const mv = await client.transitionStage(MODEL, "1", "Staging", false);
      assert.equal(mv.currentStage, "Staging");
      const latest = await client.getLatestVersions(MODEL, ["Staging"]);
      assert.deepEqual(latest.map((v) => [v.version, v.currentStage]), [["1", "Staging"]]);
    });
    await step([43], "download URI", async () => {
      assert.equal(await client.getDownloadUri(MODEL, "1"), `${artifactUri}/model`);
    });
    await step([44, 45], "version tag, then waitUntilReady", async () => {
      await client.setModelVersionTag(MODEL, "1", "validated", "true");
      const mv = await client.waitUntilReady(MODEL, "1", { intervalMs: 1 });
      assert.equal(mv.status, "READY");
      assert.deepEqual(mv.tags, { format: "onnx", validated: "true" });
      assert.equal(mv.currentStage, "Staging");
      assert.equal(mv.runId, R);
    });
    await step([46, 47], "registered model, and a missing one is null", async () => {
      const m = await client.getRegisteredModel(MODEL);
      assert.equal(m?.description, "contract test");
      assert.deepEqual(m?.aliases, { champion: "1" });
      assert.equal(await client.getRegisteredModel("no-such-model"), null);
    });
    await step([48], "search versions (tags and stage for the approval fallbacks)", async () => {
      const vs = await client.searchModelVersions(MODEL);
      assert.deepEqual(vs.map((v) => v.version), ["2", "1"]);
      assert.equal(vs[1].tags.validated, "true");
      assert.equal(vs[1].currentStage, "Staging");
      assert.deepEqual(vs[0].tags, {});
      assert.deepEqual(vs[0].aliases, []);
    });
    await step([49, 50], "search registered models; model tag", async () => {
      const ms = await client.searchRegisteredModels("name LIKE 'ts-%'");
      assert.deepEqual(ms.map((m) => m.name), [MODEL]);
      await client.setRegisteredModelTag(MODEL, "k", "v");
    });
    await step(
      [51, 52, 53],
      "delete alias (JSON body), then it reads null, set again",
      async () => {
        await client.deleteAlias(MODEL, "champion");
        assert.equal(await client.getVersionByAlias(MODEL, "champion"), null);
        await client.setAlias(MODEL, "champion", "1");
      },
    );
    await step([54, 55], "HTML error pages keep the status (not retried)", async () => {
      await rejectsWith(client.call("GET", "runs/create"), {
        code: "mlflow_error",
        errorCode: "HTTP_405",
        status: 405,
        message: /Method Not Allowed/,
      });
      await rejectsWith(client.call("GET", "no/such/endpoint"), {
        code: "not_found",
        errorCode: "HTTP_404",
        status: 404,
      });
    });
    await step([57], "raw call with an extra field", async () => {
      const r = await client.call("POST", "experiments/create", {
        json: { name: "ts-client-contract-x", bogus_field: 1 },
      });
      assert.deepEqual(r, { experiment_id: "2" });
    });
    await step([61, 62, 63], "search experiments, by name, search runs", async () => {
      const exps = await client.searchExperiments("name = 'ts-client-contract'", 5);
      assert.deepEqual(exps.map((e) => e.experimentId), ["1"]);
      assert.equal((await client.getExperimentByName("ts-client-contract"))?.experimentId, "1");
      assert.equal((await client.searchRuns(["1"], { maxResults: 1 })).length, 1);
    });
    await step([64, 65, 66], "logArtifacts: sorted order, spaces percent-encoded", async () => {
      const dir = join(tmp, "variants");
      await file("variants/form.bin", p.blob);
      await file("variants/noct.bin", p.blob);
      await file("variants/sub dir/file name.txt", p.blob);
      await client.logArtifacts(R, dir, "variants");
    });
    await step([67, 68], "list variants (proxy, tracking API)", async () => {
      assert.deepEqual(await client.listArtifactUri(`${artifactUri}/variants`), [
        { path: "form.bin", isDir: false, fileSize: 5007 },
        { path: "noct.bin", isDir: false, fileSize: 5007 },
        { path: "sub dir", isDir: true },
      ]);
      assert.deepEqual((await client.listArtifacts(R, "variants")).map((e) => e.path), [
        "variants/form.bin",
        "variants/noct.bin",
        "variants/sub dir",
      ]);
    });
    await step([69, 70], "listing a missing directory: omitted files default to []", async () => {
      assert.deepEqual(await client.listArtifactUri(`${artifactUri}/does-not-exist`), []);
      assert.deepEqual(await client.listArtifacts(R, "does-not-exist"), []);
    });
    await step([71], "models:/name/2 → runs:/ source → resolved against the run", async () => {
      const r = await client.resolveModelUri(`models:/${MODEL}/2`);
      assert.deepEqual(r, {
        uri: `models:/${MODEL}/2`,
        artifactUri: `${artifactUri}/model`,
        name: MODEL,
        version: "2",
        runId: R,
      });
    });
    await step([72], "download URI of a missing version", async () => {
      await rejectsWith(client.getDownloadUri(MODEL, "42"), { code: "not_found", status: 404 });
    });
    await step(
      [73, 74],
      "transition to Production (archive flag defaulted, then true)",
      async () => {
        assert.equal(
          (await client.transitionStage(MODEL, "2", "Production")).currentStage,
          "Production",
        );
        assert.equal(
          (await client.transitionStage(MODEL, "2", "Production", true)).currentStage,
          "Production",
        );
      },
    );
    await step([75], "an unknown stage is refused by the server", async () => {
      await rejectsWith(client.transitionStage(MODEL, "1", "Prod" as ModelStage), {
        code: "invalid_argument",
        message: /Invalid Model Version stage/,
      });
    });
    await step([76, 77], "repeated query keys; latest of all stages", async () => {
      const r = await client.call("GET", "registered-models/get-latest-versions", {
        query: { name: MODEL, stages: ["Staging", "Production"] },
      }) as { model_versions: unknown[] };
      assert.equal(r.model_versions.length, 2);
      const latest = await client.getLatestVersions(MODEL);
      assert.deepEqual(latest.map((v) => [v.version, v.currentStage]).sort(), [
        ["1", "Staging"],
        ["2", "Production"],
      ]);
    });
    await step([78, 79], "move the alias", async () => {
      await client.setAlias(MODEL, "champion", "2");
      const mv = await client.getVersionByAlias(MODEL, "champion");
      assert.equal(mv?.version, "2");
      assert.equal(mv?.currentStage, "Production");
    });
    await step([81, 82], "reserved alias names", async () => {
      await rejectsWith(client.setAlias(MODEL, "v1", "1"), {
        code: "invalid_argument",
        message: /reserved/,
      });
      await rejectsWith(client.setAlias(MODEL, "latest", "1"), {
        code: "invalid_argument",
        message: /reserved/,
      });
    });
    await step([83], "alias of a missing model is null", async () => {
      assert.equal(await client.getVersionByAlias("no-such-model", "champion"), null);
    });
    await step([85], "registered model aliases after the move", async () => {
      const m = await client.getRegisteredModel(MODEL);
      assert.deepEqual(m?.aliases, { champion: "2" });
      assert.deepEqual(m?.tags, { owner: "ts", k: "v" });
    });
    await step([86, 87, 88], "version without run; tag on a missing version; PATCH", async () => {
      assert.equal(await client.createModelVersion(MODEL, `${artifactUri}/model`), "3");
      await rejectsWith(client.setModelVersionTag(MODEL, "42", "a", "b"), { code: "not_found" });
      assert.equal((await client.updateModelVersion(MODEL, "1", "updated")).description, "updated");
    });
    await step([89], 'NaN is sent as the string "NaN"', async () => {
      await client.logMetric(R, "nanm", NaN);
    });
    await step([91], "an integer value with the default step", async () => {
      await client.logMetric(R, "intm", 3);
    });
    await step([92, 93], "history of what bare literals did; empty history", async () => {
      const nan2 = await client.getMetricHistory(R, "nan2");
      assert.deepEqual(nan2.map((m) => [m.value, m.timestamp]), [[0, 0]]);
      assert.deepEqual(await client.getMetricHistory(R, "inf"), []);
    });
    await step([94], "NaN comes back as NaN", async () => {
      const run = await client.getRun(R);
      assert.ok(Number.isNaN(run.metrics.nanm.value));
      assert.equal(run.metrics.intm.value, 3);
    });
    await step([95, 96, 97, 98], "deleted runs", async () => {
      const run = await client.createRun("1");
      assert.equal(run.runName, "burly-dog-870");
      await client.deleteRun(run.runId);
      assert.equal((await client.getRun(run.runId)).info.lifecycleStage, "deleted");
      await rejectsWith(client.logMetric(run.runId, "x", 1), {
        code: "invalid_argument",
        message: /must be in the 'active' state/,
      });
    });
    await step([100, 101, 102], "missing experiments", async () => {
      await rejectsWith(client.createRun("999"), { code: "not_found", status: 404 });
      await rejectsWith(client.getExperiment("999"), { code: "not_found" });
      await rejectsWith(client.getExperiment("abc"), { code: "not_found" });
    });
    await step([103, 104], "edge-case run", async () => {
      assert.equal((await client.getExperimentByName("ts-client-contract"))?.experimentId, "1");
      const run = await client.createRun("1", { runName: "edge-cases", userId: "ts-client" });
      edgeRun = run.runId;
      edgeArtifactUri = run.artifactUri;
      assert.equal(run.userId, "ts-client");
    });
    await step([107], "NaN/±Infinity in a batch as strings", async () => {
      await client.logMetrics(edgeRun, [
        { key: "s_nan", value: NaN },
        { key: "s_inf", value: Infinity },
        { key: "s_ninf", value: -Infinity },
      ]);
    });
    await step(
      [111],
      "the server clamps ±Infinity to ±DBL_MAX; a numeric param was lost",
      async () => {
        const run = await client.getRun(edgeRun);
        assert.ok(Number.isNaN(run.metrics.s_nan.value));
        assert.equal(run.metrics.s_inf.value, Number.MAX_VALUE);
        assert.equal(run.metrics.s_ninf.value, -Number.MAX_VALUE);
        assert.deepEqual([run.metrics.ts_str.value, run.metrics.ts_str.step], [1.5, 3]);
        assert.deepEqual(run.params, { num: "" });
      },
    );
    await step([112, 113, 114, 115], "streamed upload; empty file; listing", async () => {
      await client.logArtifact(edgeRun, await file("edge/model.onnx", p.modelOnnx), "chunked");
      assert.deepEqual(await client.listArtifactUri(`${edgeArtifactUri}/chunked`), [
        { path: "model.onnx", isDir: false, fileSize: 16384 },
      ]);
      await client.logArtifact(edgeRun, await file("edge/empty.txt", new Uint8Array()));
      assert.deepEqual(await client.listArtifacts(edgeRun), [
        { path: "chunked", isDir: true },
        { path: "empty.txt", isDir: false },
      ]);
    });
    await step([], "dot segments are refused before sending (#116, #117)", async () => {
      await rejectsWith(client.logArtifact(edgeRun, join(tmp, "edge/model.onnx"), "../../.."), {
        code: "invalid_argument",
      });
      await rejectsWith(
        client.downloadArtifact({ runId: edgeRun, path: "a/../../b" }, join(tmp, "x")),
        {
          code: "invalid_argument",
        },
      );
    });
    await step([118, 119], "fail and rename the run", async () => {
      const info = await client.updateRun(edgeRun, "FAILED");
      assert.equal(info.status, "FAILED");
      assert.equal((await client.setRunName(edgeRun, "renamed")).runName, "renamed");
    });
    await step([120, 121], "find the run by name", async () => {
      assert.equal((await client.getExperimentByName("ts-client-contract"))?.experimentId, "1");
      const runs = await client.searchRuns(["1"], {
        filter: "attributes.run_name = 'contract-run'",
      });
      assert.deepEqual(runs.map((r) => r.info.runId), [R]);
    });
    await step([122, 123, 124], "overwrite an artifact and read the new content", async () => {
      await client.logArtifact(R, await file("v1/overwrite.txt", p.v1));
      await client.logArtifact(R, await file("v2/overwrite.txt", p.v2));
      const dest = join(tmp, "dl", "overwrite.txt");
      await client.downloadArtifact(`${artifactUri}/overwrite.txt`, dest);
      assert.equal(await Deno.readTextFile(dest), "second, longer version\n");
    });
    await step([125, 126], "PATCH the model; POST is 405", async () => {
      assert.equal((await client.updateRegisteredModel(MODEL, "patched")).description, "patched");
      await rejectsWith(
        client.call("POST", "registered-models/update", {
          json: { name: MODEL, description: "x" },
        }),
        { code: "mlflow_error", status: 405 },
      );
    });
    await step([127], "final alias state", async () => {
      const mv = await client.getVersionByAlias(MODEL, "champion");
      assert.equal(mv?.version, "2");
      assert.equal(mv?.source, `runs:/${R}/model`);
    });

    await t.step("every exchange was replayed or is listed as never sent", () => {
      assert.equal(server.remaining, 0);
      const accounted = [...replayed, ...Object.keys(NOT_SENT).map(Number)].sort((a, b) => a - b);
      assert.deepEqual(accounted, rec.map((e) => e.index));
      assert.equal(server.injectedServed, 4);
      const retried = warnings.map((l) => JSON.parse(l)).map((w) => [w.request, w.status]);
      assert.deepEqual(retried, [
        ["POST /api/2.0/mlflow/runs/log-batch", 500],
        [`PUT /api/2.0/mlflow-artifacts/artifacts/1/${R}/artifacts/model/model.onnx`, 502],
        ["GET /api/2.0/mlflow/runs/get", 503],
        ["GET /api/2.0/mlflow/runs/get", 429],
      ]);
    });
  } finally {
    await client.close();
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("MlflowRestTracker resolves models:/ aliases and downloads a model directory", async () => {
  const rec = await loadRecording();
  const p = recordedPayloads(rec);
  const mlmodel = derivedMlmodelDownload(rec);
  // alias → v2 (runs:/ source) → download URI → run lookup (a fresh client has no cache), then
  // downloadModel: alias, download URI, proxy listing, both files.
  const exchanges: Exchange[] = [127, 71, 25, 127, 71, 20].map((i) => rec[i]);
  exchanges.push(mlmodel, rec[21]);
  const server = new ReplayServer({ mode: "sequence", exchanges, downloads: p.downloads }).start();
  const client = new MlflowRestTracker({ trackingUri: server.url, maxAttempts: 1 });
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-resolve-" });
  try {
    const resolved = await client.resolveModelUri(`models:/${MODEL}@champion`);
    assert.deepEqual(resolved, {
      uri: `models:/${MODEL}@champion`,
      artifactUri: `mlflow-artifacts:/1/${R}/artifacts/model`,
      name: MODEL,
      version: "2",
      runId: R,
    });
    const dl = await client.downloadModel(`models:/${MODEL}@champion`, join(tmp, "model"));
    assert.deepEqual(dl.files, ["MLmodel", "model.onnx"]);
    assert.equal(dl.version, "2");
    assert.deepEqual(await Deno.readFile(join(tmp, "model", "MLmodel")), p.mlmodel);
    assert.deepEqual(await Deno.readFile(join(tmp, "model", "model.onnx")), p.modelOnnx);
    assert.deepEqual(server.problems, []);
    assert.equal(server.remaining, 0);
  } finally {
    await client.close();
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("MlflowRestTracker retries a bounded number of times, with Basic auth", async () => {
  const rec = await loadRecording();
  const server = new ReplayServer({
    mode: "sequence",
    exchanges: [rec[26], rec[1]],
    authorization: `Basic ${btoa("ann:s3cr3t:x")}`,
    inject: new Map([[0, [html503, html503, html503]]]),
  }).start();
  const warnings: string[] = [];
  const client = new MlflowRestTracker({
    trackingUri: server.url,
    username: "ann",
    password: "s3cr3t:x",
    maxAttempts: 3,
    baseDelayMs: 1,
    logger: createLogger({ stage: "test", json: true, sink: (l) => warnings.push(l) }),
  });
  try {
    await rejectsWith(client.getRun("0123456789abcdef0123456789abcdef"), {
      code: "unavailable",
      errorCode: "HTTP_503",
      status: 503,
      message: /after 3 attempt/,
    });
    assert.equal(server.injectedServed, 3);
    assert.equal(warnings.length, 2, "two retries, then the third failure is final");
    assert.deepEqual(server.served, []);
    // The fourth request meets no more failures: the recorded 404.
    await rejectsWith(client.getRun("0123456789abcdef0123456789abcdef"), {
      code: "not_found",
      status: 404,
    });
    assert.equal(await client.serverVersion(), "2.17.2");
    assert.deepEqual(server.problems, []);
  } finally {
    await client.close();
    await server.close();
  }
});

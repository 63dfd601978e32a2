import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { MlflowError } from "./errors.ts";
import { FileTracker } from "./file_tracker.ts";
import { parseYamlMapping as parseYaml } from "../yaml/mod.ts";

async function rejectsCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof MlflowError, `expected an MlflowError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
}

async function meta(path: string): Promise<Record<string, unknown>> {
  return parseYaml(await Deno.readTextFile(join(path, "meta.yaml")));
}

async function allFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, rel))) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(`${child}/`, ...(await allFiles(dir, child)));
    else out.push(child);
  }
  return out.sort();
}

/** PyYAML's view of a file (Debian's python3-yaml), or undefined when it is not installed. */
async function pyyaml(paths: string[]): Promise<Record<string, unknown>[] | undefined> {
  const script = "import json,sys,yaml\n" +
    "print(json.dumps([yaml.safe_load(open(p, encoding='utf-8')) for p in sys.argv[1:]]))";
  try {
    const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", script, ...paths] })
      .output();
    if (!out.success) return undefined;
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } catch {
    return undefined;
  }
}

const HAS_PYYAML = await pyyaml([]) !== undefined;

Deno.test("FileTracker writes MLflow's file-store layout", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-file-" });
  const root = join(tmp, "mlruns");
  const tr = new FileTracker({ root: pathToFileURL(root).href });
  try {
    assert.equal(tr.root, root);
    const expId = await tr.getOrCreateExperiment("layout", { team: "ts" });
    const run = await tr.createRun(expId, {
      runName: "r1",
      tags: { "a/b": "nested" },
      userId: "ann",
    });
    const runDir = join(root, expId, run.runId);
    await tr.logParams(run.runId, { lr: 0.01, epochs: 10, aug: true });
    await tr.logMetrics(run.runId, [
      { key: "loss", value: 0.5, step: 0, timestamp: 1700000000000 },
      { key: "loss", value: 0.25, step: 1, timestamp: 1700000000001 },
      { key: "odd", value: NaN, step: 2, timestamp: 1700000000002 },
      { key: "odd", value: Infinity, step: 3, timestamp: 1700000000003 },
      { key: "odd", value: -Infinity, step: 4, timestamp: 1700000000004 },
    ]);
    const model = join(tmp, "out", "model");
    await Deno.mkdir(join(model, "sub"), { recursive: true });
    await Deno.writeTextFile(join(model, "model.onnx"), "onnx bytes");
    await Deno.writeTextFile(join(model, "sub", "labels.txt"), "cat\ndog\n");
    await tr.logArtifacts(run.runId, model, "model");
    await tr.logArtifact(run.runId, join(model, "model.onnx"));
    await tr.updateRun(run.runId, "FINISHED", 1700000009999);
    await tr.getOrCreateRegisteredModel("det", { description: 'it\'s "quoted"\nand two lines' });
    const v1 = await tr.createModelVersion("det", `runs:/${run.runId}/model`, run.runId, {
      tags: { approved: "true" },
    });
    const v2 = await tr.createModelVersion("det", `${run.artifactUri}/model`, run.runId);
    await tr.setAlias("det", "champion", v1);
    await tr.setAlias("det", "champion", v2);
    await tr.transitionStage("det", v1, "Production");

    await t.step("directories and files", async () => {
      const files = await allFiles(root);
      const rel = (p: string) =>
        p.replace(`${expId}/${run.runId}`, "<exp>/<run>").replace(expId, "<exp>");
      assert.deepEqual(files.map(rel), [
        ".trash/",
        "0/",
        "0/meta.yaml",
        "<exp>/",
        "<exp>/<run>/",
        "<exp>/<run>/artifacts/",
        "<exp>/<run>/artifacts/model.onnx",
        "<exp>/<run>/artifacts/model/",
        "<exp>/<run>/artifacts/model/model.onnx",
        "<exp>/<run>/artifacts/model/sub/",
        "<exp>/<run>/artifacts/model/sub/labels.txt",
        "<exp>/<run>/meta.yaml",
        "<exp>/<run>/metrics/",
        "<exp>/<run>/metrics/loss",
        "<exp>/<run>/metrics/odd",
        "<exp>/<run>/params/",
        "<exp>/<run>/params/aug",
        "<exp>/<run>/params/epochs",
        "<exp>/<run>/params/lr",
        "<exp>/<run>/tags/",
        "<exp>/<run>/tags/a/",
        "<exp>/<run>/tags/a/b",
        "<exp>/<run>/tags/mlflow.runName",
        "<exp>/meta.yaml",
        "<exp>/tags/",
        "<exp>/tags/team",
        "models/",
        "models/det/",
        "models/det/aliases/",
        "models/det/aliases/champion",
        "models/det/meta.yaml",
        "models/det/version-1/",
        "models/det/version-1/meta.yaml",
        "models/det/version-1/tags/",
        "models/det/version-1/tags/approved",
        "models/det/version-2/",
        "models/det/version-2/meta.yaml",
      ]);
    });

    await t.step("experiment and run meta.yaml", async () => {
      const { creation_time, last_update_time, ...zero } = await meta(join(root, "0"));
      assert.ok(Number.isSafeInteger(creation_time) && creation_time === last_update_time);
      assert.deepEqual(zero, {
        artifact_location: pathToFileURL(join(root, "0")).href,
        experiment_id: "0",
        lifecycle_stage: "active",
        name: "Default",
      });
      const e = await meta(join(root, expId));
      assert.equal(e.experiment_id, expId);
      assert.equal(e.name, "layout");
      assert.equal(e.artifact_location, pathToFileURL(join(root, expId)).href);
      assert.match(
        await Deno.readTextFile(join(root, expId, "meta.yaml")),
        /^experiment_id: '\d+'$/m,
      );
      assert.equal(await Deno.readTextFile(join(root, expId, "tags", "team")), "ts");
      const r = await meta(runDir);
      assert.equal(r.run_id, run.runId);
      assert.equal(r.run_uuid, run.runId);
      assert.equal(r.experiment_id, expId);
      assert.equal(r.run_name, "r1");
      assert.equal(r.user_id, "ann");
      assert.equal(r.status, 3, "FINISHED is 3 in MLflow's RunStatus enum");
      assert.equal(r.end_time, 1700000009999);
      assert.equal(r.source_type, 4);
      assert.equal(r.lifecycle_stage, "active");
      assert.deepEqual(r.tags, []);
      assert.equal(r.artifact_uri, pathToFileURL(join(runDir, "artifacts")).href);
    });

    await t.step("params, metrics and tags files", async () => {
      const read = (p: string) => Deno.readTextFile(join(runDir, p));
      assert.equal(await read("params/lr"), "0.01");
      assert.equal(await read("params/epochs"), "10");
      assert.equal(await read("params/aug"), "true");
      assert.equal(await read("metrics/loss"), "1700000000000 0.5 0\n1700000000001 0.25 1\n");
      assert.equal(
        await read("metrics/odd"),
        "1700000000002 nan 2\n1700000000003 inf 3\n1700000000004 -inf 4\n",
      );
      assert.equal(await read("tags/mlflow.runName"), "r1");
      assert.equal(await read("tags/a/b"), "nested");
      assert.equal(await read("artifacts/model/sub/labels.txt"), "cat\ndog\n");
    });

    await t.step("registry files", async () => {
      const m = await meta(join(root, "models", "det"));
      assert.equal(m.name, "det");
      assert.equal(m.description, 'it\'s "quoted"\nand two lines');
      const mv1 = await meta(join(root, "models", "det", "version-1"));
      assert.equal(mv1.version, 1);
      assert.equal(mv1.source, `runs:/${run.runId}/model`);
      assert.equal(mv1.storage_location, `runs:/${run.runId}/model`);
      assert.equal(mv1.run_id, run.runId);
      assert.equal(mv1.current_stage, "Production");
      assert.equal(mv1.status, "READY");
      const mv2 = await meta(join(root, "models", "det", "version-2"));
      assert.equal(mv2.current_stage, "None");
      assert.equal(
        await Deno.readTextFile(join(root, "models", "det", "version-1", "tags", "approved")),
        "true",
      );
      assert.equal(
        await Deno.readTextFile(join(root, "models", "det", "aliases", "champion")),
        "2",
      );
    });

    await t.step({
      name: "PyYAML (what MLflow uses) reads every meta.yaml with MLflow's types",
      ignore: !HAS_PYYAML,
      fn: async () => {
        const paths = [
          join(root, expId, "meta.yaml"),
          join(runDir, "meta.yaml"),
          join(root, "models", "det", "meta.yaml"),
          join(root, "models", "det", "version-1", "meta.yaml"),
        ];
        const [e, r, m, v] = (await pyyaml(paths))!;
        assert.equal(e.experiment_id, expId);
        assert.equal(e.name, "layout");
        assert.equal(r.run_id, run.runId);
        assert.equal(r.experiment_id, expId);
        assert.equal(r.status, 3);
        assert.equal(r.deleted_time, null);
        assert.deepEqual(r.tags, []);
        assert.equal(m.description, 'it\'s "quoted"\nand two lines');
        assert.deepEqual(m.aliases, {});
        assert.equal(v.version, 1);
        assert.equal(v.current_stage, "Production");
        assert.equal(v.run_id, run.runId);
        assert.equal(v.description, null);
      },
    });

    await t.step("reading back", async () => {
      const back = await tr.getRun(run.runId);
      assert.deepEqual(back.params, { lr: "0.01", epochs: "10", aug: "true" });
      assert.deepEqual(back.tags, { "a/b": "nested", "mlflow.runName": "r1" });
      assert.equal(back.metrics.odd.value, -Infinity, "the value at the highest step");
      assert.equal(back.info.endTime, 1700000009999);
      const odd = await tr.getMetricHistory(run.runId, "odd");
      assert.ok(Number.isNaN(odd[0].value));
      assert.deepEqual(odd.slice(1).map((m) => m.value), [Infinity, -Infinity]);
      assert.deepEqual(await tr.getMetricHistory(run.runId, "never"), []);
      assert.deepEqual(await tr.listArtifacts(run.runId, "model"), [
        { path: "model/model.onnx", isDir: false, fileSize: 10 },
        { path: "model/sub", isDir: true },
      ]);
      const m = await tr.getRegisteredModel("det");
      assert.deepEqual(m?.aliases, { champion: "2" });
      assert.equal(m?.description, 'it\'s "quoted"\nand two lines');
      assert.equal(await tr.getRegisteredModel("nope"), null);
    });

    await t.step("no temporary files are left behind", async () => {
      assert.deepEqual((await allFiles(root)).filter((f) => f.includes(".sluice-tmp-")), []);
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("FileTracker resolves every model URI form", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-file-uri-" });
  const tr = new FileTracker({ root: join(tmp, "mlruns") });
  try {
    const exp = await tr.getOrCreateExperiment("uris");
    const run = await tr.createRun(exp);
    const src = join(tmp, "model.onnx");
    await Deno.writeTextFile(src, "weights-v1");
    await tr.logArtifact(run.runId, src, "model");
    await tr.getOrCreateRegisteredModel("det");
    const v1 = await tr.createModelVersion("det", `runs:/${run.runId}/model`, run.runId);
    const v2 = await tr.createModelVersion("det", `${run.artifactUri}/model`);
    const v3 = await tr.createModelVersion("det", "models:/det/1");
    await tr.setAlias("det", "champion", v1);
    await tr.transitionStage("det", v2, "Production");
    const modelDir = `${run.artifactUri}/model`;

    await t.step("models:/name@alias, and moving the alias", async () => {
      assert.deepEqual(await tr.resolveModelUri("models:/det@champion"), {
        uri: "models:/det@champion",
        artifactUri: modelDir,
        name: "det",
        version: "1",
        runId: run.runId,
      });
      await tr.setAlias("det", "champion", v2);
      assert.equal((await tr.resolveModelUri("models:/det@champion")).version, "2");
      assert.equal((await tr.getVersionByAlias("det", "champion"))?.version, "2");
      assert.deepEqual((await tr.getModelVersion("det", v1)).aliases, []);
    });
    await t.step("models:/name/N, /latest, /<Stage>", async () => {
      assert.deepEqual(await tr.resolveModelUri("models:/det/2"), {
        uri: "models:/det/2",
        artifactUri: modelDir,
        name: "det",
        version: "2",
      });
      assert.equal((await tr.resolveModelUri("models:/det/latest")).version, "3");
      assert.equal((await tr.resolveModelUri("models:/det/Production")).version, "2");
      assert.equal((await tr.resolveModelUri("models:/det/production")).version, "2");
      await rejectsCode(
        tr.resolveModelUri("models:/det/Staging"),
        "not_found",
        /no version in stage/,
      );
    });
    await t.step("a version registered from models:/ stores the resolved location", async () => {
      assert.equal(v3, "3");
      const mv = await tr.getModelVersion("det", v3);
      assert.equal(mv.source, "models:/det/1");
      assert.equal(await tr.getDownloadUri("det", v3), modelDir);
    });
    await t.step("runs:/ and concrete locations", async () => {
      assert.deepEqual(await tr.resolveModelUri(`runs:/${run.runId}/model`), {
        uri: `runs:/${run.runId}/model`,
        artifactUri: modelDir,
        runId: run.runId,
      });
      assert.deepEqual(await tr.resolveModelUri(modelDir), {
        uri: modelDir,
        artifactUri: modelDir,
      });
    });
    await t.step("bad and missing URIs", async () => {
      await rejectsCode(tr.resolveModelUri("models:/det"), "invalid_argument");
      await rejectsCode(tr.resolveModelUri("models:/det/Prod"), "invalid_argument");
      await rejectsCode(tr.resolveModelUri("models:/det@nope"), "not_found", /alias "nope"/);
      await rejectsCode(tr.resolveModelUri("models:/det/9"), "not_found");
      await rejectsCode(
        tr.resolveModelUri("runs:/0123456789abcdef0123456789abcdef/m"),
        "not_found",
      );
    });
    await t.step("downloadModel: a directory, or a single file", async () => {
      const dir = await tr.downloadModel("models:/det@champion", join(tmp, "dl1"));
      assert.deepEqual(dir.files, ["model.onnx"]);
      assert.equal(await Deno.readTextFile(join(tmp, "dl1", "model.onnx")), "weights-v1");
      const one = await tr.downloadModel(`runs:/${run.runId}/model/model.onnx`, join(tmp, "dl2"));
      assert.deepEqual(one.files, ["model.onnx"]);
      await rejectsCode(
        tr.downloadModel(`runs:/${run.runId}/nothing`, join(tmp, "dl3")),
        "not_found",
      );
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("FileTracker refuses what MLflow refuses", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-file-err-" });
  const tr = new FileTracker({ root: join(tmp, "mlruns") });
  try {
    await rejectsCode(tr.getOrCreateExperiment(""), "invalid_argument");
    await rejectsCode(tr.createRun("999"), "not_found", /No Experiment with id=999/);
    const exp = await tr.getOrCreateExperiment("errs");
    const run = await tr.createRun(exp);
    await rejectsCode(tr.logParam(run.runId, "../escape", "x"), "invalid_argument");
    await rejectsCode(tr.logMetric(run.runId, "a//b", 1), "invalid_argument");
    await rejectsCode(tr.setTag(run.runId, "/abs", "x"), "invalid_argument");
    await rejectsCode(
      tr.createRun(exp, { runName: "a", tags: { "mlflow.runName": "b" } }),
      "invalid_argument",
    );
    await tr.logParam(run.runId, "same", "1");
    await tr.logParam(run.runId, "same", 1); // the same value again is fine
    await rejectsCode(
      tr.logParam(run.runId, "same", 2),
      "invalid_argument",
      /Changing param values/,
    );
    await rejectsCode(tr.logArtifact(run.runId, join(tmp, "x"), "../up"), "invalid_argument");
    await tr.deleteRun(run.runId);
    await rejectsCode(tr.logMetric(run.runId, "m", 1), "invalid_argument", /'active' state/);
    assert.equal((await tr.getRun(run.runId)).info.lifecycleStage, "deleted");
    await rejectsCode(tr.getOrCreateRegisteredModel("a/b"), "invalid_argument");
    await rejectsCode(tr.getOrCreateRegisteredModel("50%"), "invalid_argument");
    await tr.getOrCreateRegisteredModel("m");
    await rejectsCode(tr.createModelVersion("m", ""), "invalid_argument");
    await rejectsCode(
      tr.createModelVersion("missing", "runs:/x/y"),
      "not_found",
      /Registered Model/,
    );
    const v = await tr.createModelVersion("m", "file:///nowhere");
    await rejectsCode(tr.setAlias("m", "Latest", v), "invalid_argument", /reserved/);
    await rejectsCode(tr.setAlias("m", "v3", v), "invalid_argument", /reserved/);
    await rejectsCode(tr.setAlias("m", "x", "7"), "not_found");
    await rejectsCode(tr.transitionStage("m", v, "Prod" as "Production"), "invalid_argument");
    await rejectsCode(tr.transitionStage("m", v, "Archived", true), "invalid_argument");
    await tr.deleteAlias("m", "never-set");
    assert.equal(await tr.getVersionByAlias("missing-model", "x"), null);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("FileTracker reads stores written by MLflow itself", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-file-py-" });
  const root = join(tmp, "mlruns");
  const run = "5f0c3d2e1b4a49c8a7e6d5c4b3a29180";
  const write = async (rel: string, text: string) => {
    await Deno.mkdir(join(root, rel, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, rel), text);
  };
  // What PyYAML's safe_dump writes: legacy integer ids, long strings folded over lines, block
  // lists, and metric lines with two fields (step 0).
  await write(
    "7/meta.yaml",
    "artifact_location: file:///srv/mlruns/7\ncreation_time: 1700000000000\nexperiment_id: 7\n" +
      "last_update_time: 1700000000000\nlifecycle_stage: active\nname: legacy\n",
  );
  await write(
    `7/${run}/meta.yaml`,
    `artifact_uri: file://${root}/7/${run}/artifacts\nend_time: null\nentry_point_name: ''\n` +
      `experiment_id: '7'\nlifecycle_stage: active\nrun_id: ${run}\nrun_name: old-run\n` +
      `run_uuid: ${run}\nsource_name: ''\nsource_type: 4\nsource_version: ''\n` +
      `start_time: 1700000000000\nstatus: 1\ntags: []\nuser_id: py\n`,
  );
  await write(
    `7/${run}/metrics/acc`,
    "1700000000001 0.5\n1700000000002 nan 1\n1700000000003 0.75 1\n",
  );
  await write(`7/${run}/params/lr`, "0.1");
  await write(
    "models/old/meta.yaml",
    "aliases:\n  prod: '1'\ncreation_timestamp: 1700000000000\ndescription: 'a description that\n" +
      "  PyYAML folded onto a second line'\nlast_updated_timestamp: 1700000000000\nname: old\n",
  );
  await write(
    "models/old/version-1/meta.yaml",
    "aliases:\n- prod\ncreation_timestamp: 1700000000000\ncurrent_stage: Production\n" +
      "description: ''\nlast_updated_timestamp: 1700000000000\nname: old\nrun_id: " + run + "\n" +
      "run_link: null\nsource: runs:/" + run + "/model\nstatus: READY\nstatus_message: null\n" +
      "storage_location: runs:/" + run + "/model\nuser_id: null\nversion: 1\n",
  );
  await write("models/old/aliases/prod", "1");
  const tr = new FileTracker({ root });
  try {
    assert.equal((await tr.getExperimentByName("legacy"))?.experimentId, "7");
    const r = await tr.getRun(run);
    assert.equal(r.info.experimentId, "7");
    assert.equal(r.info.status, "RUNNING");
    assert.equal(r.info.runName, "old-run");
    assert.deepEqual(r.params, { lr: "0.1" });
    assert.equal(r.metrics.acc.value, 0.75);
    const h = await tr.getMetricHistory(run, "acc");
    assert.deepEqual(h.map((m) => m.step), [0, 1, 1]);
    assert.ok(Number.isNaN(h[1].value));
    assert.equal(
      (await tr.getRegisteredModel("old"))?.description,
      "a description that PyYAML folded onto a second line",
    );
    const mv = await tr.getVersionByAlias("old", "prod");
    assert.equal(mv?.version, "1");
    assert.equal(mv?.currentStage, "Production");
    assert.deepEqual(mv?.aliases, ["prod"]);
    assert.equal(
      (await tr.resolveModelUri("models:/old@prod")).artifactUri,
      `file://${root}/7/${run}/artifacts/model`,
    );
    // New versions continue the numbering, and new runs go next to the old ones.
    await tr.logMetric(run, "acc", 0.8, { step: 2 });
    assert.equal(await tr.createModelVersion("old", `runs:/${run}/model`, run), "2");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("FileTracker is safe for concurrent writers", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-file-conc-" });
  const root = join(tmp, "mlruns");
  try {
    const trackers = [0, 1, 2].map(() => new FileTracker({ root }));
    await t.step("racing getOrCreateExperiment converge on one experiment", async () => {
      const ids = await Promise.all(
        [0, 1, 2, 3, 4, 5].map((i) => trackers[i % 3].getOrCreateExperiment("race")),
      );
      assert.equal(new Set(ids).size, 1);
      const dirs = [];
      for await (const e of Deno.readDir(root)) if (e.isDirectory) dirs.push(e.name);
      assert.deepEqual(dirs.sort(), [".trash", "0", ids[0], "models"].sort());
    });
    await t.step("racing createModelVersion get distinct numbers", async () => {
      await trackers[0].getOrCreateRegisteredModel("race");
      const versions = await Promise.all(
        Array.from(
          { length: 12 },
          (_, i) => trackers[i % 3].createModelVersion("race", `file:///m/${i}`),
        ),
      );
      assert.deepEqual(
        versions.map(Number).sort((a, b) => a - b),
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      const all = await trackers[1].searchModelVersions("race");
      assert.equal(all.length, 12);
      // Each number went to exactly one source.
      assert.equal(new Set(all.map((v) => v.source)).size, 12);
    });
    await t.step("racing params: same value is fine, different values: one wins", async () => {
      const exp = await trackers[0].getOrCreateExperiment("race");
      const run = await trackers[0].createRun(exp);
      await Promise.all(trackers.map((tr) => tr.logParam(run.runId, "p", "same")));
      const results = await Promise.allSettled(
        ["a", "b", "c", "d"].map((v, i) => trackers[i % 3].logParam(run.runId, "q", v)),
      );
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
      const won = (await trackers[2].getRun(run.runId)).params.q;
      assert.ok(["a", "b", "c", "d"].includes(won));
    });
    await t.step("racing metric appends keep whole lines", async () => {
      const exp = await trackers[0].getOrCreateExperiment("race");
      const run = await trackers[0].createRun(exp);
      await Promise.all(
        trackers.map((tr, w) =>
          Promise.all(
            Array.from({ length: 40 }, (_, i) =>
              tr.logMetric(run.runId, "m", w * 1000 + i, { step: i })),
          )
        ),
      );
      const h = await trackers[0].getMetricHistory(run.runId, "m");
      assert.equal(h.length, 120);
      assert.equal(new Set(h.map((m) => m.value)).size, 120);
    });
    await t.step("separate processes allocate distinct versions", async () => {
      const module = new URL("./file_tracker.ts", import.meta.url).href;
      const script = join(tmp, "worker.ts");
      await Deno.writeTextFile(
        script,
        `import { FileTracker } from ${JSON.stringify(module)};\n` +
          `const tr = new FileTracker({ root: Deno.args[0] });\n` +
          `const out = [];\n` +
          `for (let i = 0; i < 4; i++) out.push(await tr.createModelVersion("multi", "file:///m/" + Deno.args[1] + "/" + i));\n` +
          `console.log(JSON.stringify(out));\n`,
      );
      await trackers[0].getOrCreateRegisteredModel("multi");
      const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
      const outs = await Promise.all(
        ["w1", "w2", "w3"].map((w) =>
          new Deno.Command(Deno.execPath(), {
            args: ["run", "--quiet", "-A", "--config", config, script, root, w],
            stdout: "piped",
            stderr: "piped",
          }).output()
        ),
      );
      const versions: string[] = [];
      for (const o of outs) {
        assert.ok(o.success, new TextDecoder().decode(o.stderr));
        versions.push(...JSON.parse(new TextDecoder().decode(o.stdout)));
      }
      assert.deepEqual(
        versions.map(Number).sort((a, b) => a - b),
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      assert.equal((await trackers[0].searchModelVersions("multi")).length, 12);
    });
    await t.step("no temporary files are left behind", async () => {
      const left: string[] = [];
      const walk = async (d: string) => {
        for await (const e of Deno.readDir(d)) {
          if (e.name.startsWith(".sluice-tmp-")) left.push(join(d, e.name));
          if (e.isDirectory) await walk(join(d, e.name));
        }
      };
      await walk(root);
      assert.deepEqual(left, []);
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

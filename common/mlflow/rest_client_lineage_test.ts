/**
 * Model lineage over REST (issue 14, items 1 and 3) against the stateful MLflow test server: a
 * version registered from the resolved artifact location, and a dataset input logged with
 * `runs/log-inputs` and read back from `runs/get`. The file store's side is in
 * `file_tracker_test.ts`; the shapes sent are those of MLflow's REST reference (log-inputs) and of
 * the recorded exchange #32 (model-versions/create with an `mlflow-artifacts:` source).
 */
import assert from "node:assert/strict";
import { MlflowFaultServer } from "../../tests/support/mlflow/fault_server.ts";
import { createLogger } from "../log/mod.ts";
import { MlflowRestTracker } from "./rest_client.ts";
import { DATASET_CONTEXT_TAG, type DatasetInput } from "./tracker.ts";

const input: DatasetInput = {
  tags: { [DATASET_CONTEXT_TAG]: "training" },
  dataset: {
    name: "sluice-640",
    digest: "4f1c0a9e2b7d6c3e8f01",
    sourceType: "s3",
    source: JSON.stringify({ uri: "s3://train/snap-4f1c/snapshot.json" }),
    schema: JSON.stringify({ mlflow_colspec: [{ type: "string", name: "file_name" }] }),
    profile: JSON.stringify({ images: { train: 9, val: 1 } }),
  },
};

Deno.test("REST: dataset input and resolved model source", async () => {
  const server = await MlflowFaultServer.start();
  const tracker = new MlflowRestTracker({
    trackingUri: server.url,
    logger: createLogger({ stage: "test", json: true, sink: () => {} }),
  });
  try {
    const run = await tracker.createRun("1", { runName: "train" });
    await tracker.logInputs(run.runId, [input]);
    await tracker.logInputs(run.runId, [input]); // the same dataset again: still one input
    const got = await tracker.getRun(run.runId);
    assert.deepEqual(got.inputs, [input]);
    const wire = server.runs.get(run.runId)!.inputs[0] as Record<string, unknown>;
    assert.deepEqual(Object.keys(wire).sort(), ["dataset", "tags"]);
    assert.deepEqual(
      Object.keys(wire.dataset as object).sort(),
      ["digest", "name", "profile", "schema", "source", "source_type"],
    );

    const source = `${run.artifactUri}/model`;
    assert.equal(source, `mlflow-artifacts:/1/${run.runId}/artifacts/model`);
    const v = await tracker.createModelVersion("det", source, run.runId);
    assert.equal(await tracker.getDownloadUri("det", v), source, "a location, not runs:/");
  } finally {
    await tracker.close();
    await server.close();
  }
});

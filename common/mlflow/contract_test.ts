/**
 * The shared Tracker contract (`tests/support/mlflow/tracker_contract.ts`), run against the embedded FileTracker (real files
 * in a temporary directory) and against MlflowRestTracker talking to the replay server, which
 * answers from the MLflow 2.17.2 recording.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogger } from "../log/mod.ts";
import { trackerContract } from "../../tests/support/mlflow/tracker_contract.ts";
import {
  derivedMlmodelDownload,
  loadRecording,
  recordedPayloads,
  ReplayServer,
} from "../../tests/support/mlflow/replay_server.ts";
import { FileTracker } from "./file_tracker.ts";
import { MlflowRestTracker } from "./rest_client.ts";

Deno.test("Tracker contract: FileTracker", async (t) => {
  const rec = await loadRecording();
  const p = recordedPayloads(rec);
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-contract-file-" });
  const tracker = new FileTracker({ root: join(tmp, "mlruns") });
  try {
    await trackerContract(t, {
      tracker,
      tmp: join(tmp, "work"),
      modelOnnx: p.modelOnnx,
      mlmodel: p.mlmodel,
    });
  } finally {
    await tracker.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("Tracker contract: MlflowRestTracker on the recorded MLflow 2.17.2", async (t) => {
  const rec = await loadRecording();
  const p = recordedPayloads(rec);
  const server = new ReplayServer({
    mode: "match",
    exchanges: [...rec, derivedMlmodelDownload(rec)],
    payloads: p.payloads,
    substituted: p.substituted,
    downloads: p.downloads,
  }).start();
  const logs: string[] = [];
  const tracker = new MlflowRestTracker({
    trackingUri: server.url,
    baseDelayMs: 1,
    logger: createLogger({ stage: "test", json: true, sink: (l) => logs.push(l) }),
  });
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-contract-rest-" });
  try {
    await trackerContract(t, {
      tracker,
      tmp,
      modelOnnx: p.modelOnnx,
      mlmodel: p.mlmodel,
      afterStep: () => assert.deepEqual(server.problems, []),
    });
    assert.deepEqual(logs, [], "no request needed a retry");
  } finally {
    await tracker.close();
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

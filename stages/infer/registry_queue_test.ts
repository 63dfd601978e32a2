import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../common/log/mod.ts";
import { type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { FileTracker, MlflowRestTracker, type Tracker } from "../../common/mlflow/mod.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import { MlflowFaultServer } from "../../tests/support/mlflow/fault_server.ts";
import { runInferOnce } from "./stage.ts";
import {
  buildModel,
  drawRedBox,
  encode,
  NEEDS_TORCH,
  registerModel,
  seedIngested,
  testConfig,
} from "./_test_fixtures.ts";

const log = createLogger({ stage: "infer", level: "error", json: true, sink: () => {} });

/** One registry, with the configuration that points infer at it. */
interface Registry {
  tracker: Tracker;
  env: Record<string, string>;
  /** Its identity as predictions record it. */
  identity: string;
}

/**
 * One manifest with three ingested images; `det` version 1 registered in `first`, then in
 * `second`: each predicts all three images, on its own queue, and both sets of rows are kept.
 */
async function scenario(dir: string, first: Registry, second: Registry): Promise<void> {
  let manifest: ManifestStore | undefined;
  let store: ObjectStore | undefined;
  try {
    const model = await buildModel("boxfinder", join(dir, "model"), { size: 96 });
    const configA = await testConfig(dir, first.env);
    const configB = await testConfig(dir, second.env);
    manifest = await openManifest(configA.manifest.url);
    store = await openObjectStore(configA.objectStore.url);
    const ids: string[] = [];
    for (const [i, w] of [64, 80, 96].entries()) {
      const bytes = await encode(drawRedBox(w, 64, [8, 8, 20, 16]), w, 64, "png");
      const s = await seedIngested(manifest, store, {
        name: `img-${i}.png`,
        bytes,
        format: "png",
        width: w,
        height: 64,
      });
      ids.push(s.id);
    }
    ids.sort();

    assert.equal(await registerModel(first.tracker, "det", model), "1");
    await first.tracker.setAlias("det", "champion", "1");
    const a = await runInferOnce(configA, { manifest, store, tracker: first.tracker, log });
    assert.equal(a.model?.version, "1");
    assert.deepEqual([a.enqueued, a.done, a.failed], [ids.length, ids.length, 0]);

    // Same name, same version number, another registry: a different model version.
    assert.equal(await registerModel(second.tracker, "det", model), "1");
    await second.tracker.setAlias("det", "champion", "1");
    const b = await runInferOnce(configB, { manifest, store, tracker: second.tracker, log });
    assert.equal(b.model?.version, "1");
    assert.deepEqual([b.enqueued, b.done, b.failed], [ids.length, ids.length, 0]);
    assert.notDeepEqual(b.queues, a.queues, "each registry's version 1 has its own queue");
    for (const q of [...a.queues, ...b.queues]) assert.match(q, /^infer:det@1#[0-9a-f]{8}$/);

    // Both registries' predictions are kept, each under its own registry identity.
    const rows = await manifest.listPredictions({ modelName: "det", modelVersion: "1" });
    assert.equal(rows.length, 2 * ids.length);
    const byRegistry = Map.groupBy(rows, (r) => r.registry ?? "");
    assert.deepEqual([...byRegistry.keys()].sort(), [first.identity, second.identity].sort());
    for (const rs of byRegistry.values()) {
      assert.deepEqual(rs.map((r) => r.imageId).sort(), ids);
    }

    // Another pass on the first registry finds nothing left to do.
    const again = await runInferOnce(configA, { manifest, store, tracker: first.tracker, log });
    assert.deepEqual([again.enqueued, again.done], [0, 0]);
  } finally {
    await manifest?.close();
    await store?.close();
  }
}

function fileRegistry(root: string): Registry {
  const tracker = new FileTracker({ root });
  return { tracker, env: { SLUICE_MLFLOW_LOCAL_DIR: root }, identity: `file://${root}` };
}

Deno.test({
  name: "infer: version 1 of a second file store predicts the images version 1 of the first did",
  ignore: NEEDS_TORCH,
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "infer-registry-"));
    try {
      await scenario(dir, fileRegistry(join(dir, "mlruns-a")), fileRegistry(join(dir, "mlruns-b")));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "infer: the embedded store's version 1 after an MLflow server's version 1 predicts again",
  ignore: NEEDS_TORCH,
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "infer-registry-"));
    const server = await MlflowFaultServer.start();
    const rest = new MlflowRestTracker({ trackingUri: `${server.url}/`, logger: log });
    try {
      await scenario(dir, {
        tracker: rest,
        env: { SLUICE_MLFLOW_TRACKING_URI: server.url },
        identity: server.url,
      }, fileRegistry(join(dir, "mlruns")));
    } finally {
      await rest.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

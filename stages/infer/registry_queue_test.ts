import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../common/log/mod.ts";
import { type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
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

Deno.test({
  name: "infer: version 1 of a second registry predicts the images version 1 of the first did",
  ignore: NEEDS_TORCH,
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "infer-registry-"));
    let manifest: ManifestStore | undefined;
    let store: ObjectStore | undefined;
    try {
      const model = await buildModel("boxfinder", join(dir, "model"), { size: 96 });
      const first = new FileTracker({ root: join(dir, "mlruns-a") });
      const second = new FileTracker({ root: join(dir, "mlruns-b") });
      const configA = await testConfig(dir, { SLUICE_MLFLOW_LOCAL_DIR: first.root });
      const configB = await testConfig(dir, { SLUICE_MLFLOW_LOCAL_DIR: second.root });
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

      assert.equal(await registerModel(first, "det", model), "1");
      await first.setAlias("det", "champion", "1");
      const a = await runInferOnce(configA, { manifest, store, tracker: first, log });
      assert.equal(a.model?.version, "1");
      assert.deepEqual([a.enqueued, a.done, a.failed], [ids.length, ids.length, 0]);

      // Same name, same version number, another registry: a different model version.
      assert.equal(await registerModel(second, "det", model), "1");
      await second.setAlias("det", "champion", "1");
      const b = await runInferOnce(configB, { manifest, store, tracker: second, log });
      assert.equal(b.model?.version, "1");
      assert.deepEqual([b.enqueued, b.done, b.failed], [ids.length, ids.length, 0]);
      assert.notDeepEqual(b.queues, a.queues, "each registry's version 1 has its own queue");
      assert.match(b.queues[0], /^infer:det@1#[0-9a-f]{8}$/);

      // Both registries' predictions are kept, each under its own registry identity.
      const rows = await manifest.listPredictions({ modelName: "det", modelVersion: "1" });
      assert.equal(rows.length, 2 * ids.length);
      const byRegistry = Map.groupBy(rows, (r) => r.registry ?? "");
      assert.deepEqual([...byRegistry.keys()].sort(), [first.uri, second.uri].sort());
      for (const rs of byRegistry.values()) {
        assert.deepEqual(rs.map((r) => r.imageId).sort(), ids);
      }

      // A third pass on the first registry finds nothing left to do.
      const again = await runInferOnce(configA, { manifest, store, tracker: first, log });
      assert.deepEqual([again.enqueued, again.done], [0, 0]);
    } finally {
      await manifest?.close();
      await store?.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

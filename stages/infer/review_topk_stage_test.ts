/**
 * `infer.labelStudioTopK` through the real infer stage: a real ONNX detector (the box finder from
 * `testdata/make_models.py`) from the MLflow file store, real PNG/JPEG images recorded as ingest
 * records them, batches of 4, and a loopback Label Studio (`tests/support/fake_labelstudio.ts`).
 * Only the K tasks of highest review priority of each batch are imported; each carries its
 * priority and its Sluice image id; `labelstudio.json` still holds every image.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LabelStudioTask } from "../../common/annotations/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { type BBox, type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import { fakeLabelStudio } from "../../tests/support/fake_labelstudio.ts";
import { outputKeys } from "./outputs.ts";
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
const K = 2;
const BATCH = 4;

/**
 * Red boxes whose centres sit at different offsets from the model's 4 px cells, so the box
 * finder's peak score (exp(-d²/32)) and with it the review priority differ; one image has none.
 */
const IMAGES: { name: string; size: number; box: BBox | null }[] = [
  { name: "a.png", size: 160, box: [40, 40, 32, 32] },
  { name: "b.png", size: 160, box: [41, 43, 31, 29] },
  { name: "c.jpg", size: 160, box: [60, 20, 23, 41] },
  { name: "d.png", size: 160, box: [10, 90, 45, 27] },
  { name: "e.png", size: 160, box: [90, 90, 33, 35] },
  { name: "f.jpg", size: 160, box: [20, 30, 50, 50] },
  { name: "g.png", size: 160, box: [100, 10, 37, 21] },
  { name: "h.png", size: 160, box: null },
];

const priorityOf = (t: LabelStudioTask) => Number(t.data.sluice_review_priority);

Deno.test({
  name: "infer stage: labelStudioTopK imports only each batch's K highest-priority tasks",
  ignore: NEEDS_TORCH,
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "infer-topk-"));
    const ls = fakeLabelStudio({
      legacyToken: "t0ken",
      projects: { 7: { fromNames: ["label"], toNames: ["image"] } },
    });
    const tracker = new FileTracker({ root: join(dir, "mlruns") });
    let manifest: ManifestStore | undefined;
    let store: ObjectStore | undefined;
    try {
      const model = await buildModel("boxfinder", join(dir, "model"), { size: 160 });
      assert.equal(await registerModel(tracker, "det", model), "1");
      await tracker.setAlias("det", "champion", "1");
      const config = await testConfig(dir, {
        SLUICE_INFER_BATCH_SIZE: String(BATCH),
        SLUICE_INFER_LINGER_MS: "500",
        SLUICE_INFER_SCORE_THRESHOLD: "0.3",
        SLUICE_INFER_LABEL_STUDIO_URL: ls.url,
        SLUICE_INFER_LABEL_STUDIO_TOKEN: "t0ken",
        SLUICE_INFER_LABEL_STUDIO_PROJECT_ID: "7",
        SLUICE_INFER_LABEL_STUDIO_TOP_K: String(K),
      });
      assert.equal(config.stage.labelStudioTopK, K);
      manifest = await openManifest(config.manifest.url);
      store = await openObjectStore(config.objectStore.url);
      const ids = new Set<string>();
      for (const img of IMAGES) {
        const format = img.name.endsWith(".png") ? "png" : "jpeg";
        const bytes = await encode(
          drawRedBox(img.size, img.size, img.box),
          img.size,
          img.size,
          format,
        );
        const s = await seedIngested(manifest, store, {
          name: img.name,
          bytes,
          format,
          width: img.size,
          height: img.size,
        });
        ids.add(s.id);
      }

      const s = await runInferOnce(config, { manifest, store, tracker, log });
      assert.equal(s.done, IMAGES.length);
      assert.equal(s.failed, 0);

      // Each batch's tasks, as infer wrote them (its part file), priority included.
      const keys = outputKeys(config.stage.prefix, { name: "det", version: "1" });
      const parts: LabelStudioTask[][] = [];
      for await (const o of store.list({ prefix: `${keys.dir}/parts/` })) {
        parts.push(JSON.parse(new TextDecoder().decode(await store.getBytes(o.key))));
      }
      assert.equal(parts.flat().length, IMAGES.length, "every image in one batch's part");
      assert.ok(parts.length >= 2, `expected at least two batches, found ${parts.length}`);
      const allPriorities = new Set(parts.flat().map(priorityOf));
      assert.ok(allPriorities.size >= 3, `expected varied priorities, found ${[...allPriorities]}`);

      const imported = ls.imports as LabelStudioTask[][];
      assert.equal(imported.length, parts.length, "one import per batch");
      let pushed = 0;
      for (const tasks of imported) {
        const taskIds = tasks.map((t) => t.data.sluice_image_id);
        const part = parts.find((p) =>
          taskIds.every((id) => p.some((t) => t.data.sluice_image_id === id))
        );
        assert.ok(part, `imported tasks ${taskIds} come from one batch`);
        assert.equal(tasks.length, Math.min(K, part.length));
        const left = part.filter((t) => !taskIds.includes(t.data.sluice_image_id));
        const lowestPushed = Math.min(...tasks.map(priorityOf));
        for (const t of left) {
          assert.ok(
            priorityOf(t) <= lowestPushed,
            `${t.data.sluice_image_id} (priority ${priorityOf(t)}) left out while one of ` +
              `${lowestPushed} was imported`,
          );
        }
        for (const t of tasks) {
          assert.match(t.data.sluice_review_priority, /^[01]\.\d{4}$/);
          assert.ok(ids.has(t.data.sluice_image_id), `${t.data.sluice_image_id}: a seeded image`);
          assert.equal(t.data.sluice_model, "det");
          assert.equal(t.data.sluice_model_version, "1");
        }
        pushed += tasks.length;
      }
      assert.equal(s.labelStudio.pushed, pushed);
      assert.ok(pushed < IMAGES.length, `top-K left tasks out: ${pushed} of ${IMAGES.length}`);

      // labelstudio.json keeps every image, each with its priority and image id.
      const all = JSON.parse(
        new TextDecoder().decode(await store.getBytes(keys.labelStudio)),
      ) as LabelStudioTask[];
      assert.deepEqual(new Set(all.map((t) => t.data.sluice_image_id)), ids);
      for (const t of all) assert.match(t.data.sluice_review_priority, /^[01]\.\d{4}$/);
    } finally {
      await manifest?.close();
      await store?.close();
      await tracker.close();
      await ls.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

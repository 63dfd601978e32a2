import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LabelStudioTask } from "../../common/annotations/mod.ts";
import { serveStage } from "../../common/http/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { type BBox, type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { findPromtool, promtoolCheck } from "../../common/metrics/mod.ts";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import { INCOMING_PREFIX, seedRawBucket } from "../../tests/demo/synthetic_source.ts";
import sharp from "sharp";
import { createInferStage, runInferOnce } from "./stage.ts";
import { inferQueue } from "./model_resolver.ts";
import {
  buildModel,
  corruptJpeg,
  drawRedBox,
  encode,
  NEEDS_TORCH,
  registerModel,
  type SeededImage,
  seedIngested,
  testConfig,
} from "./_test_fixtures.ts";

const log = createLogger({ stage: "infer", level: "error", json: true, sink: () => {} });
const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

const GOOD: { name: string; w: number; h: number; box: BBox; format: "png" | "jpeg" }[] = [
  { name: "wide.png", w: 640, h: 480, box: [101, 57, 203, 150], format: "png" },
  { name: "tall.jpg", w: 300, h: 500, box: [20, 300, 77, 41], format: "jpeg" },
  { name: "small.png", w: 120, h: 80, box: [10, 20, 50, 30], format: "png" },
  { name: "panorama.jpg", w: 1000, h: 300, box: [700, 20, 250, 200], format: "jpeg" },
  { name: "corner.png", w: 90, h: 150, box: [0, 0, 45, 60], format: "png" },
  { name: "square.jpg", w: 256, h: 256, box: [128, 128, 100, 64], format: "jpeg" },
];

function boxError(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

function near(actual: number, expected: number, eps = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= eps, `expected ${expected}, found ${actual}`);
}

/** A Label Studio stand-in on 127.0.0.1 recording import requests. */
function fakeLabelStudio() {
  const imports: { auth: string | null; tasks: LabelStudioTask[] }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (req.method !== "POST" || new URL(req.url).pathname !== "/api/projects/7/import") {
      return new Response("not found", { status: 404 });
    }
    const tasks = await req.json() as LabelStudioTask[];
    imports.push({ auth: req.headers.get("authorization"), tasks });
    return Response.json({ task_count: tasks.length }, { status: 201 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, imports, close: () => server.shutdown() };
}

async function readJson<T>(store: ObjectStore, key: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await store.getBytes(key))) as T;
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "infer stage end to end: registry model, manifest queue, outputs, alias moves",
  ignore: NEEDS_TORCH,
  async fn(t) {
    const dir = await mkdtemp(join(tmpdir(), "infer-stage-"));
    const ls = fakeLabelStudio();
    let manifest: ManifestStore | undefined;
    let store: ObjectStore | undefined;
    const tracker = new FileTracker({ root: join(dir, "mlruns") });
    const q = (version: string) => inferQueue({ name: "det", version, registry: tracker.uri });
    try {
      const modelV1 = await buildModel("boxfinder", join(dir, "model-v1"), { size: 160 });
      const env = {
        SLUICE_INFER_BATCH_SIZE: "3",
        SLUICE_INFER_LINGER_MS: "10",
        SLUICE_INFER_SCORE_THRESHOLD: "0.3",
        SLUICE_INFER_LABEL_STUDIO_URL: ls.url,
        SLUICE_INFER_LABEL_STUDIO_TOKEN: "t0ken",
        SLUICE_INFER_LABEL_STUDIO_PROJECT_ID: "7",
      };
      const config = await testConfig(dir, env);
      manifest = await openManifest(config.manifest.url);
      store = await openObjectStore(config.objectStore.url);
      const deps = { manifest, store, tracker, log };
      assert.equal(await registerModel(tracker, "det", modelV1), "1");
      await tracker.setAlias("det", "champion", "1");

      const seeded = new Map<string, SeededImage & (typeof GOOD)[number]>();
      for (const g of GOOD) {
        const bytes = await encode(drawRedBox(g.w, g.h, g.box), g.w, g.h, g.format);
        const s = await seedIngested(manifest, store, {
          name: g.name,
          bytes,
          format: g.format,
          width: g.w,
          height: g.h,
        });
        seeded.set(s.id, { ...s, ...g });
      }
      const broken = await seedIngested(manifest, store, {
        name: "broken.jpg",
        bytes: await corruptJpeg(64, 48),
        format: "jpeg",
        width: 64,
        height: 48,
      });
      // Recorded as ingested, but its dataset object has since disappeared.
      const gone = await seedIngested(manifest, store, {
        name: "gone.png",
        bytes: await encode(drawRedBox(50, 40, [5, 5, 10, 10]), 50, 40, "png"),
        format: "png",
        width: 50,
        height: 40,
      });
      await store.delete(gone.key);
      const labelled = await seedIngested(manifest, store, {
        name: "labelled.png",
        bytes: await encode(drawRedBox(100, 100, [10, 10, 20, 20]), 100, 100, "png"),
        format: "png",
        width: 100,
        height: 100,
      });
      await manifest.replaceAnnotations(labelled.id, "labelstudio", [{
        label: "red",
        bbox: [10, 10, 20, 20],
      }]);

      await t.step(
        "runInferOnce predicts the queue; corrupt and missing images fail by name, the rest go on",
        async () => {
          const s = await runInferOnce(config, deps);
          assert.deepEqual([s.model?.name, s.model?.version, s.model?.alias, s.model?.via], [
            "det",
            "1",
            "champion",
            "alias",
          ]);
          assert.equal(s.provider, "cpu");
          assert.deepEqual(s.queues, [q("1")]);
          assert.equal(s.enqueued, GOOD.length + 2, "annotated images are not enqueued");
          assert.deepEqual([s.done, s.failed, s.retried, s.leaseLost, s.released], [
            GOOD.length,
            2,
            0,
            0,
            0,
          ]);
          assert.equal(s.predictions, GOOD.length);
          assert.equal(s.boxes, GOOD.length);
          const failures = [...s.failures].sort((a, b) => a.reason.localeCompare(b.reason));
          assert.deepEqual(failures.map((f) => [f.item, f.outcome, f.reason]), [
            [broken.id, "failed", "decode_failed"],
            [gone.id, "failed", "source_missing"],
          ]);
          assert.match(failures[0].message, new RegExp(`image ${broken.id} \\(broken\\.jpg\\)`));
          assert.match(failures[1].message, new RegExp(`image ${gone.id} \\(gone\\.png\\)`));
          // Both are dead letters with their reason, after one attempt (neither is retryable).
          const dead = new Map(
            (await manifest!.listWork(q("1"), "failed")).map((w) => [w.itemId, w]),
          );
          assert.deepEqual([...dead.keys()].sort(), [broken.id, gone.id].sort());
          assert.match(
            dead.get(broken.id)!.lastError ?? "",
            /^decode_failed: image img_\w+ \(broken\.jpg\)/,
          );
          assert.match(
            dead.get(gone.id)!.lastError ?? "",
            /^source_missing: image img_\w+ \(gone\.png\)/,
          );
          assert.ok([...dead.values()].every((w) => w.attempts === 1));

          const rows = await manifest!.listPredictions({ modelName: "det", modelVersion: "1" });
          assert.equal(rows.length, GOOD.length);
          for (const r of rows) {
            const img = seeded.get(r.imageId)!;
            assert.equal(r.boxes.length, 1);
            assert.equal(r.boxes[0].label, "red");
            const err = boxError(r.boxes[0].bbox, img.box);
            assert.ok(err <= 1, `${img.name}: ${r.boxes[0].bbox} vs ${img.box} (off by ${err})`);
            assert.equal(r.score, r.boxes[0].score);
            assert.match(
              r.uri ?? "",
              /^predictions\/det\/1\/parts\/[0-9a-f]{20}\.labelstudio\.json$/,
            );
          }
          assert.equal(s.labelStudio.pushed, GOOD.length);
        },
      );

      await t.step("Label Studio tasks and COCO results have the documented shapes", async () => {
        const tasks = await readJson<LabelStudioTask[]>(
          store!,
          "predictions/det/1/labelstudio.json",
        );
        assert.deepEqual(tasks.map((x) => x.data.sluice_image_id), [...seeded.keys()].sort());
        for (const task of tasks) {
          const img = seeded.get(task.data.sluice_image_id)!;
          assert.deepEqual(Object.keys(task).sort(), ["data", "predictions"]);
          assert.equal(task.data.image, img.datasetUri);
          const [p] = task.predictions!;
          assert.equal(p.model_version, "det:1@champion");
          assert.equal(typeof p.score, "number");
          assert.equal(p.result.length, 1);
          const r = p.result[0];
          assert.deepEqual(
            [r.type, r.from_name, r.to_name, r.original_width, r.original_height, r.image_rotation],
            ["rectanglelabels", "label", "image", img.w, img.h, 0],
          );
          assert.deepEqual(r.value.rectanglelabels, ["red"]);
          assert.ok(typeof r.score === "number" && r.score > 0.5);
          near(r.value.x!, (img.box[0] / img.w) * 100, (1 / img.w) * 100);
          near(r.value.width!, (img.box[2] / img.w) * 100, (1 / img.w) * 100);
          near(r.value.y!, (img.box[1] / img.h) * 100, (1 / img.h) * 100);
        }
        const coco = await readJson<
          { image_id: number; category_id: number; bbox: number[]; score: number }[]
        >(
          store!,
          "predictions/det/1/coco_results.json",
        );
        const index = await readJson<
          { images: { id: number; sluice_image_id: string; file_name: string }[] }
        >(
          store!,
          "predictions/det/1/coco_images.json",
        );
        assert.equal(coco.length, GOOD.length);
        for (const res of coco) {
          assert.deepEqual(Object.keys(res).sort(), ["bbox", "category_id", "image_id", "score"]);
          assert.equal(res.category_id, 1);
          const img = seeded.get(index.images.find((i) => i.id === res.image_id)!.sluice_image_id)!;
          assert.ok(boxError(res.bbox, img.box) <= 1);
        }
        // One part per inference batch; together they hold every predicted image once.
        const parts: string[] = [];
        for await (const o of store!.list({ prefix: "predictions/det/1/parts/" })) {
          parts.push(o.key);
        }
        assert.ok(parts.length >= 2, `parts: ${parts}`);
        const inParts: string[] = [];
        for (const key of parts) {
          for (const task of await readJson<LabelStudioTask[]>(store!, key)) {
            inParts.push(task.data.sluice_image_id);
          }
        }
        assert.deepEqual(inParts.sort(), [...seeded.keys()].sort());
        // The same tasks went to the Label Studio import, with the token.
        assert.ok(ls.imports.every((i) => i.auth === "Token t0ken"));
        assert.deepEqual(
          ls.imports.flatMap((i) => i.tasks.map((x) => x.data.sluice_image_id)).sort(),
          [...seeded.keys()].sort(),
        );
      });

      await t.step("a second run finds nothing to do and rewrites identical outputs", async () => {
        const before = await store!.getBytes("predictions/det/1/labelstudio.json");
        const s = await runInferOnce(config, deps);
        assert.deepEqual([s.enqueued, s.done, s.failed], [0, 0, 0]);
        assert.deepEqual(await store!.getBytes("predictions/det/1/labelstudio.json"), before);
      });

      await t.step(
        "an image queued again for a version that already predicted it is not predicted twice",
        async () => {
          // As when another worker drains an old queue with this version around a model swap.
          const [id] = seeded.keys();
          const before = await manifest!.listPredictions({ modelVersion: "1", imageIds: [id] });
          const imports = ls.imports.length;
          assert.equal(await manifest!.enqueue(q("1"), [id], { reset: true }), 1);
          const s = await runInferOnce(config, deps);
          assert.deepEqual([s.done, s.failed, s.predictions], [1, 0, 0]);
          assert.equal(ls.imports.length, imports, "no second Label Studio task");
          assert.deepEqual(
            await manifest!.listPredictions({ modelVersion: "1", imageIds: [id] }),
            before,
          );
        },
      );

      await t.step(
        "evaluate scores the predictions against held-out COCO ground truth",
        async () => {
          const gt = {
            images: GOOD.map((g, i) => ({ id: i + 1, file_name: g.name, width: g.w, height: g.h })),
            annotations: GOOD.map((g, i) => ({
              id: i + 1,
              image_id: i + 1,
              category_id: 1,
              bbox: g.box,
              iscrowd: 0,
            })),
            categories: [{ id: 1, name: "red" }],
          };
          const gtPath = join(dir, "gt.json");
          await writeFile(gtPath, JSON.stringify(gt));
          const stage = await createInferStage(config, deps);
          try {
            const r = await stage.evaluate(gtPath);
            assert.equal(r.matchedImages, GOOD.length);
            near(r.map50, 1);
            assert.ok(r.map50_95 > 0.8, `mAP@0.5:0.95 ${r.map50_95}`);
            // The pictures, in the version's output directory.
            assert.deepEqual(
              (r.pictures ?? []).map((u) => u.split("/").slice(-2).join("/")),
              ["eval/pr_curves.png", "eval/confusion_matrix.png", "eval/contact_sheet.png"],
            );
            for (const uri of r.pictures!) {
              const bytes = await Deno.readFile(new URL(uri));
              assert.deepEqual([...bytes.slice(1, 4)], [0x50, 0x4e, 0x47], `${uri} is a PNG`);
              const keep = Deno.env.get("SLUICE_EVAL_PICTURES_DIR");
              if (keep) {
                await Deno.copyFile(new URL(uri), join(keep, `infer_${uri.split("/").pop()}`));
              }
            }
          } finally {
            await stage.close();
          }

          // The command line does the same: drain, then print the summary with the evaluation.
          const cmd = new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", MAIN, "once", "--eval", gtPath],
            cwd: dir,
            env: {
              SLUICE_MANIFEST_URL: config.manifest.url,
              SLUICE_OBJECT_STORE_URL: config.objectStore.url,
              SLUICE_STAGING_ROOT: join(dir, "nvme"),
              SLUICE_STAGING_MIN_FREE_MB: "0",
              SLUICE_MLFLOW_LOCAL_DIR: join(dir, "mlruns"),
              SLUICE_MLFLOW_MODEL_NAME: "det",
              SLUICE_HTTP_PORT: "0",
              SLUICE_LOG_LEVEL: "warn",
            },
            stdout: "piped",
            stderr: "piped",
          });
          const out = await cmd.output();
          const stderr = new TextDecoder().decode(out.stderr);
          assert.equal(out.code, 0, stderr);
          const printed = JSON.parse(new TextDecoder().decode(out.stdout));
          assert.equal(printed.model.version, "1");
          near(printed.eval.map50, 1);
          assert.equal(printed.eval.pictures.length, 3, "the command line draws them too");
        },
      );

      await t.step(
        "--input predicts a prefix of the object store instead of the queue",
        async () => {
          const holdout = [
            { key: "holdout/a.png", w: 200, h: 120, box: [30, 40, 60, 50] as BBox },
            { key: "holdout/b.png", w: 150, h: 300, box: [70, 10, 40, 100] as BBox },
          ];
          for (const h of holdout) {
            await store!.put(h.key, await encode(drawRedBox(h.w, h.h, h.box), h.w, h.h, "png"));
          }
          await store!.put("holdout/c.jpg", await corruptJpeg(40, 40));
          await store!.put("holdout/notes.txt", new TextEncoder().encode("not an image"));
          const s = await runInferOnce(config, deps, { inputs: ["holdout/"] });
          assert.deepEqual([s.done, s.failed, s.predictions], [2, 1, 2]);
          assert.equal(s.failures[0].reason, "decode_failed");
          assert.match(s.failures[0].message, /\(c\.jpg\)/);
          assert.equal(s.outputs?.images, 2);
          const tasks = await readJson<LabelStudioTask[]>(store!, s.outputs!.labelStudio);
          assert.deepEqual(
            tasks.map((x) => x.data.image).sort(),
            holdout.map((h) => store!.uriFor(h.key)).sort(),
          );
          for (const task of tasks) {
            const h = holdout.find((x) => store!.uriFor(x.key) === task.data.image)!;
            const v = task.predictions![0].result[0].value;
            near(v.x!, (h.box[0] / h.w) * 100, (1 / h.w) * 100);
          }
          const bad = await runInferOnce(config, deps, { inputs: ["nothing-here/"] }).catch((e) =>
            e
          );
          assert.equal(bad.code, "invalid_input");
        },
      );

      await t.step(
        "a moved alias is picked up between batches; /metrics passes promtool",
        async () => {
          const fast = await testConfig(dir, { ...env, SLUICE_INFER_ALIAS_CHECK_SECONDS: "0.1" });
          const stage = await createInferStage(fast, deps);
          const ac = new AbortController();
          const server = serveStage(stage.handler, {
            hostname: "127.0.0.1",
            port: 0,
            signal: ac.signal,
            log,
          });
          const base = `http://127.0.0.1:${server.addr.port}`;
          const stop = new AbortController();
          const running = stage.run({ signal: stop.signal, graceMs: 5000 });
          try {
            await waitFor(
              "model v1 in use",
              () => Promise.resolve(stage.model?.ref.version === "1"),
            );
            const ready = await fetch(`${base}/readyz`);
            assert.equal(ready.status, 200, await ready.text());

            const modelV2 = await buildModel("boxfinder", join(dir, "model-v2"), { size: 128 });
            assert.equal(await registerModel(tracker, "det", modelV2), "2");
            await tracker.setAlias("det", "champion", "2");
            await waitFor(
              "v2 predictions for every good image",
              async () =>
                (await manifest!.listPredictions({ modelName: "det", modelVersion: "2" }))
                  .length ===
                  GOOD.length,
            );
            assert.equal(stage.model?.ref.version, "2");

            const status = await (await fetch(`${base}/status`)).json();
            assert.equal(status.model.version, "2");
            assert.equal(status.queue, q("2"));
            const metricsText = await (await fetch(`${base}/metrics`)).text();
            assert.match(
              metricsText,
              /sluice_infer_model_info\{model="det",version="2",alias="champion"\} 1/,
            );
            assert.doesNotMatch(metricsText, /sluice_infer_model_info\{[^}]*version="1"/);
            assert.match(metricsText, /sluice_infer_batch_size_bucket/);
            assert.match(metricsText, /sluice_infer_inference_seconds_count [1-9]/);
            assert.match(metricsText, /sluice_infer_queue_depth\{state="/);
            assert.match(metricsText, /sluice_infer_model_swaps_total 1/);
            // The common stage metrics: items by result, durations, staging use and free space.
            assert.match(metricsText, /sluice_infer_items_total\{result="done"\} [1-9]/);
            assert.match(metricsText, /sluice_infer_items_total\{result="failed"\} [1-9]/);
            assert.match(
              metricsText,
              /sluice_infer_item_duration_seconds_bucket\{le="\+Inf"\} [1-9]/,
            );
            assert.match(metricsText, /sluice_infer_errors_total\{reason="decode_failed"\} [1-9]/);
            assert.match(metricsText, /sluice_infer_staging_bytes \d+/);
            assert.match(metricsText, /sluice_infer_staging_free_bytes [1-9]/);
            assert.match(metricsText, /sluice_infer_detections_total [1-9]/);
            const promtool = await findPromtool();
            if (promtool) {
              const lint = await promtoolCheck(metricsText, promtool);
              assert.ok(lint.ok, lint.output);
            } else if (Deno.env.get("CI") === "true") {
              assert.fail("promtool not installed (apt-get install prometheus)");
            }
          } finally {
            stop.abort();
            const s = await running;
            ac.abort();
            await server.finished;
            await stage.close();
            assert.equal(s.swaps, 1);
            assert.deepEqual(s.queues, [q("1"), q("2")]);
            assert.equal(s.leaseLost, 0);
            assert.ok(
              s.failures.every((f) => f.item === broken.id || f.item === gone.id),
              JSON.stringify(s.failures),
            );
          }
          for (
            const r of await manifest!.listPredictions({ modelName: "det", modelVersion: "2" })
          ) {
            const img = seeded.get(r.imageId)!;
            assert.ok(
              boxError(r.boxes[0].bbox, img.box) <= 1.5,
              `${img.name}: ${r.boxes[0].bbox} vs ${img.box}`,
            );
          }
          const tasks = await readJson<LabelStudioTask[]>(
            store!,
            "predictions/det/2/labelstudio.json",
          );
          assert.equal(tasks.length, GOOD.length);
          assert.ok(tasks.every((x) => x.predictions![0].model_version === "det:2@champion"));
        },
      );
    } finally {
      await manifest?.close();
      await store?.close();
      await tracker.close();
      await ls.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

/** A Label Studio stand-in whose first import waits until `release()` is called. */
function gatedLabelStudio() {
  const imports: LabelStudioTask[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let arrived!: () => void;
  const first = new Promise<void>((r) => (arrived = r));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const tasks = await req.json() as LabelStudioTask[];
    imports.push(tasks);
    if (imports.length === 1) {
      arrived();
      await gate;
    }
    return Response.json({ task_count: tasks.length }, { status: 201 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    imports,
    first,
    release,
    close: () => server.shutdown(),
  };
}

Deno.test({
  name: "infer stage: a model swap while a batch is in flight drops none of the claimed work",
  ignore: NEEDS_TORCH,
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "infer-swap-"));
    const ls = gatedLabelStudio();
    const tracker = new FileTracker({ root: join(dir, "mlruns") });
    const q = (version: string) => inferQueue({ name: "det", version, registry: tracker.uri });
    let manifest: ManifestStore | undefined;
    let store: ObjectStore | undefined;
    try {
      const config = await testConfig(dir, {
        SLUICE_INFER_BATCH_SIZE: "2",
        SLUICE_INFER_IN_FLIGHT: "4",
        SLUICE_INFER_LINGER_MS: "10",
        SLUICE_INFER_SCORE_THRESHOLD: "0.3",
        SLUICE_INFER_ALIAS_CHECK_SECONDS: "0.1",
        SLUICE_INFER_LABEL_STUDIO_URL: ls.url,
        SLUICE_INFER_LABEL_STUDIO_TOKEN: "t",
        SLUICE_INFER_LABEL_STUDIO_PROJECT_ID: "7",
      });
      manifest = await openManifest(config.manifest.url);
      store = await openObjectStore(config.objectStore.url);
      assert.equal(
        await registerModel(tracker, "det", await buildModel("boxfinder", join(dir, "v1"))),
        "1",
      );
      await tracker.setAlias("det", "champion", "1");
      const v2Dir = await buildModel("boxfinder", join(dir, "v2"), { size: 128 });
      const boxes = new Map<string, BBox>();
      for (const g of GOOD) {
        const bytes = await encode(drawRedBox(g.w, g.h, g.box), g.w, g.h, g.format);
        const s = await seedIngested(manifest, store, {
          name: g.name,
          bytes,
          format: g.format,
          width: g.w,
          height: g.h,
        });
        boxes.set(s.id, g.box);
      }

      const stage = await createInferStage(config, { manifest, store, tracker, log });
      const stop = new AbortController();
      const running = stage.run({ signal: stop.signal });
      let summary;
      try {
        // The first batch has run on v1 and now waits on its Label Studio import; the next
        // images are claimed and prepared behind it.
        await ls.first;
        const heldIds = ls.imports[0].map((x) => x.data.sluice_image_id as string);
        assert.ok(heldIds.length >= 1 && heldIds.length <= 2, String(heldIds));
        assert.equal(await registerModel(tracker, "det", v2Dir), "2");
        await tracker.setAlias("det", "champion", "2");
        await waitFor("the swap to v2", () => Promise.resolve(stage.model?.ref.version === "2"));
        ls.release();
        await waitFor(
          "v2 predictions for every image",
          async () =>
            (await manifest!.listPredictions({ modelName: "det", modelVersion: "2" })).length ===
              GOOD.length,
        );
        // The batch that was in flight during the swap finished and was recorded on v1.
        const v1 = await manifest.listPredictions({ modelName: "det", modelVersion: "1" });
        assert.deepEqual(v1.map((r) => r.imageId).sort(), [...heldIds].sort());
        // Nothing claimed from v1's queue failed or is still held: what was claimed completed
        // (and none was released, see the summary); the rest was never claimed from it.
        const counts = (await manifest.workCounts(q("1")))[q("1")];
        assert.deepEqual([counts.leased, counts.failed], [0, 0], JSON.stringify(counts));
        assert.equal(counts.done + counts.pending, GOOD.length, JSON.stringify(counts));
        assert.ok(counts.done > heldIds.length, JSON.stringify(counts));
        for (const r of [...v1, ...await manifest.listPredictions({ modelVersion: "2" })]) {
          const err = boxError(r.boxes[0].bbox, boxes.get(r.imageId)!);
          assert.ok(err <= 1.5, `${r.modelVersion} ${r.imageId}: off by ${err}`);
        }
      } finally {
        ls.release();
        stop.abort();
        summary = await running;
        await stage.close();
      }
      assert.equal(summary.swaps, 1);
      assert.deepEqual(summary.queues, [q("1"), q("2")]);
      assert.deepEqual(
        [summary.failed, summary.retried, summary.leaseLost, summary.released],
        [0, 0, 0, 0],
        JSON.stringify(summary),
      );
      assert.equal(summary.predictions, summary.done);
      const work = await manifest.workCounts();
      assert.equal(summary.done, work[q("1")].done + work[q("2")].done);
      // The old version's files hold what it finished during the swap.
      const v1Tasks = await readJson<LabelStudioTask[]>(
        store,
        "predictions/det/1/labelstudio.json",
      );
      const v1Ids = (await manifest.listPredictions({ modelVersion: "1" })).map((r) => r.imageId);
      assert.deepEqual(v1Tasks.map((x) => x.data.sluice_image_id), [...v1Ids].sort());
      const v1Coco = await readJson<unknown[]>(store, "predictions/det/1/coco_results.json");
      assert.equal(v1Coco.length, v1Ids.length);
      const v2Tasks = await readJson<LabelStudioTask[]>(
        store,
        "predictions/det/2/labelstudio.json",
      );
      assert.equal(v2Tasks.length, GOOD.length);
      // Every batch was imported into Label Studio once, naming the model that ran it.
      const versions = ls.imports.flat().map((x) => x.predictions![0].model_version);
      assert.equal(
        versions.filter((v) => v === "det:1@champion").length,
        (await manifest.listPredictions({ modelVersion: "1" })).length,
      );
      assert.equal(versions.filter((v) => v === "det:2@champion").length, GOOD.length);
    } finally {
      await manifest?.close();
      await store?.close();
      await tracker.close();
      await ls.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

/**
 * A demo image with its texture kept as grey (R = G = B) and one of its objects painted pure red:
 * the box finder then has exactly one known box to find.
 */
async function greyWithRedBox(bytes: Uint8Array, box: BBox): Promise<Uint8Array> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  const rgb = new Uint8Array(info.width * info.height * 3);
  for (let i = 0; i < info.width * info.height; i++) {
    const [r, g, b] = [data[i * 3], data[i * 3 + 1], data[i * 3 + 2]];
    rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  }
  const [bx, by, bw, bh] = box;
  for (let y = by; y < by + bh; y++) {
    for (let x = bx; x < bx + bw; x++) rgb.set([255, 0, 0], (y * info.width + x) * 3);
  }
  return rgb;
}

Deno.test({
  name: "infer stage on the demo's held-out images: a known box survives letterbox and back (1 px)",
  ignore: NEEDS_TORCH,
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "infer-demo-heldout-"));
    const tracker = new FileTracker({ root: join(dir, "mlruns") });
    const raw = await openObjectStore(join(dir, "raw"));
    let manifest: ManifestStore | undefined;
    let store: ObjectStore | undefined;
    try {
      // The demo's raw bucket, as `deno task demo` seeds it (seed 7), with 8 held-out images.
      const seeded = await seedRawBucket(raw, { annotated: 1, heldOut: 8, seed: 7 });
      const config = await testConfig(dir, { SLUICE_INFER_SCORE_THRESHOLD: "0.3" });
      manifest = await openManifest(config.manifest.url);
      store = await openObjectStore(config.objectStore.url);
      // The trainer's input size.
      const model = await buildModel("boxfinder", join(dir, "model"), { size: 320 });
      await tracker.setAlias("det", "champion", await registerModel(tracker, "det", model));

      const truth = {
        images: seeded.heldOutTruth.images,
        annotations: [] as { id: number; image_id: number; category_id: number; bbox: BBox }[],
        categories: [{ id: 1, name: "red" }],
      };
      const painted = new Map<string, { box: BBox; w: number; h: number }>();
      const sizes = new Set<string>();
      for (const img of seeded.heldOutTruth.images) {
        const first = seeded.heldOutTruth.annotations.find((a) => a.image_id === img.id)!;
        const box = first.bbox as BBox;
        const format = img.file_name.endsWith(".png") ? "png" : "jpeg";
        const original = await raw.getBytes(`${INCOMING_PREFIX}/${img.file_name}`);
        const rgb = await greyWithRedBox(original, box);
        const s = await seedIngested(manifest, store, {
          name: `${INCOMING_PREFIX}/${img.file_name}`,
          bytes: await encode(rgb, img.width, img.height, format),
          format,
          width: img.width,
          height: img.height,
        });
        painted.set(s.id, { box, w: img.width, h: img.height });
        sizes.add(`${img.width}x${img.height}`);
        truth.annotations.push({ id: img.id, image_id: img.id, category_id: 1, bbox: box });
      }
      assert.ok(sizes.size >= 3, `expected several aspect ratios, found ${[...sizes]}`);

      const s = await runInferOnce(config, { manifest, store, tracker, log });
      assert.deepEqual([s.done, s.failed], [painted.size, 0], JSON.stringify(s.failures));
      const rows = await manifest.listPredictions({ modelName: "det", modelVersion: "1" });
      assert.equal(rows.length, painted.size);
      for (const r of rows) {
        const p = painted.get(r.imageId)!;
        assert.equal(r.boxes.length, 1, JSON.stringify(r.boxes));
        const err = boxError(r.boxes[0].bbox, p.box);
        assert.ok(err <= 1, `${p.w}x${p.h}: ${r.boxes[0].bbox} vs ${p.box} (off by ${err})`);
      }
      // Scored against the held-out truth by file name, as `sluice-infer --eval` does.
      const gtPath = join(dir, "heldout_red.json");
      await writeFile(gtPath, JSON.stringify(truth));
      const stage = await createInferStage(config, { manifest, store, tracker, log });
      try {
        const report = await stage.evaluate(gtPath);
        assert.equal(report.matchedImages, painted.size);
        near(report.map50, 1);
      } finally {
        await stage.close();
      }
    } finally {
      await manifest?.close();
      await store?.close();
      await raw.close();
      await tracker.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

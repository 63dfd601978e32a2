import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../common/log/mod.ts";
import type { BBox } from "../../common/manifest/mod.ts";
import { DetectorSession } from "./detector_session.ts";
import { type BatchInfo, InferenceEngine, type LoadedModel } from "./inference_engine.ts";
import { detectorSpec } from "./model_card.ts";
import type { ModelRef } from "./model_resolver.ts";
import { buildModel, corruptJpeg, drawRedBox, encode, NEEDS_TORCH } from "./_test_fixtures.ts";

const log = createLogger({ stage: "infer", level: "error", json: true, sink: () => {} });

async function load(dir: string, version: string): Promise<LoadedModel> {
  const session = await DetectorSession.open(join(dir, "model.onnx"), {
    provider: "cpu",
    intraOpThreads: 1,
  });
  const card = JSON.parse(await readFile(join(dir, "model_card.json"), "utf8"));
  const ref: ModelRef = {
    name: "boxfinder",
    version,
    alias: null,
    via: "uri",
    uri: `file://${dir}`,
    movable: false,
  };
  return { ref, spec: detectorSpec(card, null, session.graph), session, dir };
}

function boxError(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

/** Images with one red box each: sizes that letterbox up, down, wide and tall. */
const CASES: { w: number; h: number; box: BBox; format: "png" | "jpeg" }[] = [
  { w: 640, h: 480, box: [101, 57, 203, 150], format: "png" },
  { w: 300, h: 500, box: [20, 300, 77, 41], format: "jpeg" },
  { w: 120, h: 80, box: [10, 20, 50, 30], format: "png" },
  { w: 1000, h: 300, box: [700, 20, 250, 200], format: "jpeg" },
  { w: 90, h: 150, box: [0, 0, 45, 60], format: "png" },
];

Deno.test({
  name: "InferenceEngine with a real ONNX detector",
  ignore: NEEDS_TORCH,
  async fn(t) {
    const dir = await mkdtemp(join(tmpdir(), "infer-engine-"));
    const models: LoadedModel[] = [];
    try {
      const a = await buildModel("boxfinder", join(dir, "a"), { size: 160 });
      const b = await buildModel("boxfinder", join(dir, "b"), { size: 128 });
      const images = await Promise.all(
        CASES.map(async (c) => ({
          ...c,
          bytes: await encode(drawRedBox(c.w, c.h, c.box), c.w, c.h, c.format),
        })),
      );

      await t.step(
        "a known box survives letterbox, inference and the way back within 1 px",
        async () => {
          const model = await load(a, "1");
          models.push(model);
          const engine = new InferenceEngine<number>(model, {
            batchSize: 4,
            lingerMs: 20,
            scoreThreshold: 0.3,
            log,
          });
          try {
            const preds = await Promise.all(images.map((img, i) => engine.predict(img.bytes, i)));
            preds.forEach((p, i) => {
              const c = CASES[i];
              assert.deepEqual([p.width, p.height], [c.w, c.h]);
              assert.equal(p.boxes.length, 1, `case ${i}: ${JSON.stringify(p.boxes)}`);
              assert.equal(p.boxes[0].label, "red");
              assert.ok(p.boxes[0].score > 0.5);
              const err = boxError(p.boxes[0].bbox, c.box);
              assert.ok(
                err <= 1,
                `case ${i} (${c.w}x${c.h} ${c.format}): ${
                  p.boxes[0].bbox
                } vs ${c.box}, off by ${err}`,
              );
              assert.equal(p.model.version, "1");
            });
            // An image without the red box gets no box.
            const empty = await engine.predict(
              await encode(drawRedBox(200, 100, null), 200, 100, "png"),
              9,
            );
            assert.deepEqual(empty.boxes, []);
            assert.equal(empty.score, 0);
          } finally {
            await engine.close();
          }
        },
      );

      await t.step(
        "images are batched up to batchSize; a partial batch runs after lingerMs",
        async () => {
          const model = await load(a, "1");
          const batches: BatchInfo[] = [];
          const engine = new InferenceEngine<number>(model, {
            batchSize: 3,
            lingerMs: 30,
            scoreThreshold: 0.3,
            log,
            onBatch: (b) => batches.push(b),
          });
          try {
            const seven = Array.from({ length: 7 }, (_, i) => images[i % images.length]);
            await Promise.all(seven.map((img, i) => engine.predict(img.bytes, i)));
            const sizes = batches.map((b) => b.size);
            assert.equal(sizes.reduce((s, n) => s + n, 0), 7);
            assert.ok(sizes.every((n) => n >= 1 && n <= 3), `batch sizes ${sizes}`);
            assert.ok(sizes.includes(3), `batch sizes ${sizes}`);
            assert.ok(batches.every((b) => b.inferenceSeconds > 0));
          } finally {
            await engine.close();
          }
        },
      );

      await t.step(
        "the next batch is decoded and letterboxed while the batch in flight is unfinished",
        async () => {
          const model = await load(a, "1");
          let release!: () => void;
          const gate = new Promise<void>((r) => (release = r));
          let started!: () => void;
          const firstBatch = new Promise<void>((r) => (started = r));
          const batches: number[] = [];
          const engine = new InferenceEngine<number>(model, {
            batchSize: 2,
            // Only full batches run: the batch sizes below do not depend on timing.
            lingerMs: 60_000,
            scoreThreshold: 0.3,
            log,
            onBatch: (b) => batches.push(b.size),
            afterBatch: async () => {
              if (batches.length === 1) {
                started();
                await gate;
              }
            },
          });
          try {
            const first = [engine.predict(images[0].bytes, 0), engine.predict(images[1].bytes, 1)];
            await firstBatch;
            let firstDone = false;
            const firstAll = Promise.all(first).then((r) => (firstDone = true, r));
            const next = [engine.predict(images[2].bytes, 2), engine.predict(images[3].bytes, 3)];
            // Both images of the next batch get prepared although the first has not finished.
            while (engine.waiting < 2) await new Promise((r) => setTimeout(r, 5));
            assert.equal(firstDone, false);
            assert.deepEqual(batches, [2]);
            release();
            await firstAll;
            const after = await Promise.all(next);
            assert.deepEqual(batches, [2, 2]);
            assert.ok(after.every((p) => p.boxes.length === 1));
          } finally {
            release();
            await engine.close();
          }
        },
      );

      await t.step("a corrupt image fails by itself; the rest of its batch goes on", async () => {
        const model = await load(a, "1");
        const engine = new InferenceEngine<number>(model, {
          batchSize: 4,
          lingerMs: 20,
          scoreThreshold: 0.3,
          log,
        });
        try {
          const bad = await corruptJpeg(64, 48);
          const results = await Promise.allSettled([
            engine.predict(images[0].bytes, 0),
            engine.predict(bad, 1),
            engine.predict(images[2].bytes, 2),
          ]);
          assert.equal(results[0].status, "fulfilled");
          assert.equal(results[2].status, "fulfilled");
          assert.equal(results[1].status, "rejected");
          const reason = (results[1] as PromiseRejectedResult).reason;
          assert.equal(reason.code, "decode_failed");
        } finally {
          await engine.close();
        }
      });

      await t.step(
        "swap: the batch in flight finishes on the old model, later batches use the new",
        async () => {
          const oldModel = await load(a, "1");
          const newModel = await load(b, "2");
          let release!: () => void;
          const gate = new Promise<void>((r) => (release = r));
          let started!: () => void;
          const firstBatch = new Promise<void>((r) => (started = r));
          let batchesDone = 0;
          const engine = new InferenceEngine<number>(oldModel, {
            batchSize: 2,
            // Both batches are full, so they run at once; a short linger let a slow decode on a
            // loaded machine split the first pair and send its second image to the new model.
            lingerMs: 60_000,
            scoreThreshold: 0.3,
            log,
            afterBatch: async () => {
              if (batchesDone++ === 0) {
                started();
                await gate;
              }
            },
          });
          try {
            const first = [engine.predict(images[0].bytes, 0), engine.predict(images[2].bytes, 1)];
            await firstBatch;
            let oldClosed = false;
            const swapped = engine.swap(newModel).then(() => (oldClosed = true));
            // Prepared while the old model's batch is still in flight.
            const later = [engine.predict(images[1].bytes, 2), engine.predict(images[3].bytes, 3)];
            await new Promise((r) => setTimeout(r, 50));
            assert.equal(oldClosed, false, "the old session must stay open while its batch runs");
            release();
            const done = await Promise.all(first);
            assert.deepEqual(done.map((p) => p.model.version), ["1", "1"]);
            await swapped;
            assert.equal(oldClosed, true);
            const after = await Promise.all(later);
            assert.deepEqual(after.map((p) => p.model.version), ["2", "2"]);
            // The new model has another input size: the images were letterboxed again for it.
            assert.deepEqual(after.map((p) => p.transform.width), [128, 128]);
            after.forEach((p, i) => {
              const c = CASES[[1, 3][i]];
              assert.ok(boxError(p.boxes[0].bbox, c.box) <= 1.5, `${p.boxes[0].bbox} vs ${c.box}`);
            });
            await assert.rejects(
              oldModel.session.run("images", new Float32Array(3 * 160 * 160), [1, 3, 160, 160]),
              /closed/,
            );
          } finally {
            release();
            await engine.close();
          }
        },
      );

      await t.step("close fails the images still waiting for a batch", async () => {
        const model = await load(a, "1");
        const engine = new InferenceEngine<number>(model, {
          batchSize: 8,
          lingerMs: 60_000,
          scoreThreshold: 0.3,
          log,
        });
        const waiting = engine.predict(images[0].bytes, 0).catch((e) => e);
        while (engine.waiting === 0) await new Promise((r) => setTimeout(r, 5));
        await engine.close();
        const err = await waiting;
        assert.equal(err.code, "worker_stopping");
        await assert.rejects(engine.predict(images[0].bytes, 1), /engine closed/);
      });
    } finally {
      for (const m of models) await m.session.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

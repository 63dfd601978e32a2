import assert from "node:assert/strict";
import { basename } from "node:path";
import { safeFileName } from "../../common/staging/mod.ts";
import { recordSnapshot, selectSnapshot } from "./snapshot.ts";
import { stageInputs } from "./stage_inputs.ts";
import { openTrainTestEnv } from "./testdata/env.ts";
import { seedTrainingData } from "./testdata/seed_manifest.ts";
import { readLaunchPlan, readSnapshotFile, writeTrainingInputs } from "./training_inputs.ts";

const settings = {
  nodes: 2,
  imagesPerNode: 5,
  epochs: 3,
  batchSize: 4,
  learningRate: 0.003,
  seed: 11,
  maxMinutes: undefined,
  device: "cpu" as const,
  trainerArgs: ["--width", "0.5"],
};

interface Coco {
  images: {
    id: number;
    file_name: string;
    width: number;
    height: number;
    sluice_image_id: string;
  }[];
  annotations: { image_id: number; category_id: number; bbox: number[] }[];
  categories: { id: number; name: string }[];
}

Deno.test("training inputs", async (t) => {
  const env = await openTrainTestEnv({ quiet: true });
  try {
    await seedTrainingData(env.manifest, env.store, {
      count: 16,
      seed: 9,
      variant: { name: "96", width: 96, height: 96, mode: "letterbox" },
    });
    const snap = await selectSnapshot(env.manifest, env.store, {
      variant: "96",
      valFraction: 0.25,
    });
    const row = await recordSnapshot(env.manifest, snap);
    const opts = {
      prefix: "training",
      datasetStoreUrl: env.store.url,
      createdAt: row.createdAt,
      settings,
    };
    const { plan, snapshotFile } = await writeTrainingInputs(env.store, snap, opts);
    const text = async (key: string) => new TextDecoder().decode(await env.store.getBytes(key));

    await t.step("keys live under <prefix>/<snapshot>/ and the run's layout", () => {
      assert.equal(plan.keys.trainCoco, `training/${snap.id}/train.json`);
      assert.equal(plan.keys.launch, `training/${snap.id}/${plan.layout}/launch.json`);
      assert.deepEqual(
        plan.keys.shards,
        [0, 1].map((r) => `training/${snap.id}/${plan.layout}/shards/node-${r}.txt`),
      );
      assert.match(plan.layout, /^run-[0-9a-f]{12}$/);
    });

    await t.step(
      "COCO files: variant-space boxes, one id space, identical categories",
      async () => {
        const train: Coco = JSON.parse(await text(plan.keys.trainCoco));
        const val: Coco = JSON.parse(await text(plan.keys.valCoco));
        assert.deepEqual(train.categories, val.categories);
        assert.deepEqual(train.categories.map((c) => c.id), [...snap.labels.values()].sort());
        assert.equal(train.images.length + val.images.length, snap.images.length);
        const ids = [...train.images, ...val.images].map((i) => i.id);
        assert.equal(new Set(ids).size, ids.length);
        for (const coco of [train, val]) {
          for (const im of coco.images) {
            const s = snap.images.find((i) => i.imageId === im.sluice_image_id)!;
            assert.equal(im.file_name, safeFileName(s.key));
            assert.deepEqual([im.width, im.height], [96, 96]);
            const boxes = coco.annotations.filter((a) => a.image_id === im.id).map((a) => a.bbox);
            assert.deepEqual(boxes, s.annotations.map((a) => a.bbox));
          }
        }
        assert.equal(val.images.length, plan.counts.val);
      },
    );

    await t.step("shards: exactly imagesPerNode train file names each, disjoint", async () => {
      const shards = await Promise.all(
        plan.keys.shards.map(async (k) =>
          (await text(k)).split("\n").filter((l) => l && !l.startsWith("#"))
        ),
      );
      const trainNames = new Set(
        snapshotFile.images.filter((i) => i.split === "train").map((i) => i.fileName),
      );
      for (const s of shards) {
        assert.equal(s.length, 5);
        for (const n of s) assert.ok(trainNames.has(n), n);
      }
      assert.equal(new Set(shards.flat()).size, 10);
    });

    await t.step("launch.json and snapshot.json read back as written", async () => {
      assert.deepEqual(await readLaunchPlan(env.store, plan.keys.launch), plan);
      assert.deepEqual(await readSnapshotFile(env.store, plan.keys.snapshot), snapshotFile);
      await env.store.put("bad.json", new TextEncoder().encode('{"format":"x"}'));
      await assert.rejects(readLaunchPlan(env.store, "bad.json"), { code: "invalid_plan" });
    });

    await t.step("re-running writes the same bytes to the same keys", async () => {
      const before = new Map<string, string>();
      for await (const o of env.store.list({ prefix: "training/" })) {
        before.set(o.key, await text(o.key));
      }
      const again = await writeTrainingInputs(env.store, snap, opts);
      assert.deepEqual(again.plan, plan);
      const after = new Map<string, string>();
      for await (const o of env.store.list({ prefix: "training/" })) {
        after.set(o.key, await text(o.key));
      }
      assert.deepEqual(after, before);
      const other = await writeTrainingInputs(env.store, snap, {
        ...opts,
        settings: { ...settings, nodes: 3 },
      });
      assert.notEqual(other.plan.layout, plan.layout);
      assert.equal(other.plan.keys.trainCoco, plan.keys.trainCoco);
    });

    await t.step(
      "a rank stages its shard's images; rank 0 also the validation images",
      async () => {
        for (const rank of [0, 1]) {
          await using lease = await env.staging.lease(`test-${rank}`);
          const staged = await stageInputs(lease, {
            plan,
            snapshot: snapshotFile,
            trainingStore: env.store,
            datasetStore: env.store,
            ranks: [rank],
            log: env.log,
          });
          const shard = (await Deno.readTextFile(staged.shards.get(rank)!)).split("\n")
            .filter((l) => l && !l.startsWith("#"));
          const files = new Set<string>();
          for await (const e of Deno.readDir(staged.imagesRoot)) files.add(e.name);
          for (const name of shard) assert.ok(files.has(name), `${name} staged for rank ${rank}`);
          const vals = snapshotFile.images.filter((i) => i.split === "val").map((i) => i.fileName);
          for (const v of vals) assert.equal(files.has(v), rank === 0, `val ${v} on rank ${rank}`);
          assert.equal(staged.images, new Set(shard).size + (rank === 0 ? vals.length : 0));
          const one = snapshotFile.images.find((i) => i.fileName === shard[0])!;
          assert.deepEqual(
            await Deno.readFile(`${staged.imagesRoot}/${shard[0]}`),
            await env.store.getBytes(one.key),
          );
          assert.equal(basename(staged.trainCoco).endsWith(".json"), true);
        }
        await using lease = await env.staging.lease("bad-rank");
        await assert.rejects(
          stageInputs(lease, {
            plan,
            snapshot: snapshotFile,
            trainingStore: env.store,
            datasetStore: env.store,
            ranks: [2],
            log: env.log,
          }),
          { code: "invalid_plan" },
        );
      },
    );
  } finally {
    await env.close();
  }
});

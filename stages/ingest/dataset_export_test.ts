import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { parseDataYaml } from "../../common/annotations/_data_yaml.ts";
import { readVocDataset } from "../../common/annotations/voc_dataset.ts";
import { readYoloDataset } from "../../common/annotations/yolo_dataset.ts";
import { SluiceError } from "../../common/errors/mod.ts";
import { recordSnapshot, selectSnapshot } from "../train/snapshot.ts";
import { openTrainTestEnv } from "../train/testdata/env.ts";
import { seedTrainingData } from "../train/testdata/seed_manifest.ts";
import { snapshotExportSet } from "./annotation_sets.ts";
import { exportDocument } from "./annotations_export.ts";
import { exportDataset } from "./dataset_export.ts";

const VARIANT = { name: "96", width: 96, height: 96, mode: "letterbox" } as const;

Deno.test("export from a recorded training snapshot: its variants, split and boxes", async (t) => {
  const env = await openTrainTestEnv({ quiet: true });
  try {
    await seedTrainingData(env.manifest, env.store, { count: 10, seed: 3, variant: VARIANT });
    const snap = await selectSnapshot(env.manifest, env.store, { variant: "96", valFraction: 0.3 });
    await recordSnapshot(env.manifest, snap);
    const set = await snapshotExportSet(env.manifest, env.store, snap.id);
    const readImage = (img: { uri: string }) =>
      env.store.getBytes(img.uri.slice(env.store.url.replace(/\/+$/, "").length + 1));

    await t.step(
      "YOLO: data.yaml with the snapshot's train/val, variant images, its boxes",
      async () => {
        const dir = join(env.dir, "yolo");
        const s = await exportDataset(set, { format: "yolo", dir, readImage });
        assert.equal(s.snapshotId, snap.id);
        const yaml = parseDataYaml(await readFile(join(dir, "data.yaml"), "utf8"));
        assert.deepEqual([yaml.train, yaml.val, yaml.path], [
          ["images/train"],
          ["images/val"],
          dir,
        ]);
        // Names in the snapshot's label-id order.
        assert.deepEqual(yaml.names, [...snap.labels].sort((a, b) => a[1] - b[1]).map(([n]) => n));
        const want = { train: snap.spec.counts.train, val: snap.spec.counts.val };
        assert.deepEqual(s.splits, want);
        for (const split of ["train", "val"] as const) {
          const files = await readdir(join(dir, "images", split));
          assert.equal(files.length, want[split], split);
          const meta = await sharp(join(dir, "images", split, files[0])).metadata();
          assert.deepEqual([meta.width, meta.height], [96, 96], "the variant trained on");
        }
        const back = await readYoloDataset(dir);
        for (const img of snap.images) {
          const r = back.images.find((x) => x.imageRef.sluiceImageId === img.imageId)!;
          assert.equal(r.split, img.split);
          assert.equal(r.annotations.length, img.annotations.length);
          r.annotations.forEach((a, i) => {
            assert.equal(a.label, img.annotations[i].label);
            a.bbox.forEach((v, k) =>
              assert.ok(Math.abs(v - img.annotations[i].bbox[k]) < 1e-6 * 96)
            );
          });
        }
        assert.equal(s.objects, snap.spec.counts.annotations);
      },
    );

    await t.step("VOC and COCO from the same snapshot", async () => {
      const dir = join(env.dir, "voc");
      await exportDataset(set, { format: "voc", dir });
      const voc = await readVocDataset(dir);
      assert.equal(voc.records.length, snap.images.length);
      assert.equal(
        voc.records.filter((r) => r.split === "val").length,
        snap.spec.counts.val,
      );
      const { document } = await exportDocument(set, { format: "coco" });
      assert.ok("images" in document);
      assert.equal(document.images.length, snap.images.length);
      assert.match(String(document.info.description), new RegExp(snap.id));
    });

    await t.step("an unknown id, or data that changed since, is a named error", async () => {
      await assert.rejects(
        () => snapshotExportSet(env.manifest, env.store, "snap-nope"),
        (e: unknown) => e instanceof SluiceError && e.code === "unknown_snapshot",
      );
      const first = snap.images[0];
      await env.manifest.replaceAnnotations(first.imageId, "labelstudio", [{
        label: "moved",
        bbox: [1, 1, 5, 5],
      }]);
      await assert.rejects(
        () => snapshotExportSet(env.manifest, env.store, snap.id),
        (e: unknown) =>
          e instanceof SluiceError && e.code === "snapshot_changed" &&
          /the manifest now gives snap-/.test(e.message),
      );
    });
  } finally {
    await env.close();
  }
});

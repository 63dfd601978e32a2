import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { SluiceError } from "../../../common/errors/mod.ts";
import { toCocoGroundTruth } from "./coco.ts";
import { generateDataset, SYNTHETIC_LABELS } from "./dataset.ts";
import { toLabelStudioTasks } from "./label_studio.ts";
import { writeTrainingSet } from "./training_set.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-synth-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("generateDataset", async (t) => {
  const ds = await generateDataset({ count: 40, seed: 42 });

  await t.step("the same seed writes byte-identical files; another seed does not", async () => {
    await withTempDir(async (dir) => {
      await generateDataset({ count: 12, seed: 7, outDir: join(dir, "a") });
      await generateDataset({ count: 12, seed: 7, outDir: join(dir, "b") });
      await generateDataset({ count: 12, seed: 8, outDir: join(dir, "c") });
      const names = (await readdir(join(dir, "a"))).sort();
      assert.deepEqual((await readdir(join(dir, "b"))).sort(), names);
      assert.equal(names.length, 12 + 2); // images + coco.json + labelstudio.json
      let sameAsOtherSeed = 0;
      const other = new Set(await readdir(join(dir, "c")));
      for (const name of names) {
        const a = await readFile(join(dir, "a", name));
        assert.ok(a.equals(await readFile(join(dir, "b", name))), `${name} differs between runs`);
        const twin = name.replace("synth-7-", "synth-8-");
        if (other.has(twin) && a.equals(await readFile(join(dir, "c", twin)))) sameAsOtherSeed++;
      }
      assert.equal(sameAsOtherSeed, 0);
      // Any image can be regenerated alone from (seed, index).
      const one = await generateDataset({ count: 1, seed: 7, startIndex: 5 });
      const five = names.find((n) => n.startsWith("synth-7-00005."));
      assert.ok(five);
      assert.ok(Buffer.from(one.images[0].bytes).equals(await readFile(join(dir, "a", five))));
    });
  });

  await t.step("images: varied sizes, JPEG and PNG, decodable at the declared size", async () => {
    const sizes = new Set(ds.images.map((i) => `${i.width}x${i.height}`));
    assert.ok(sizes.size >= 4, `expected varied sizes, found ${[...sizes]}`);
    assert.ok(ds.images.some((i) => i.width !== i.height));
    const formats = new Set(ds.images.map((i) => i.format));
    assert.deepEqual([...formats].sort(), ["jpeg", "png"]);
    for (const img of ds.images.slice(0, 10)) {
      const meta = await sharp(img.bytes).metadata();
      assert.equal(meta.format, img.format);
      assert.equal(meta.width, img.width);
      assert.equal(meta.height, img.height);
      assert.ok(img.fileName.endsWith(img.format === "png" ? ".png" : ".jpg"));
    }
  });

  await t.step(
    "objects: 1–4 per image, 24–120 px once letterboxed to 320, inside the image",
    () => {
      assert.deepEqual(ds.labels, [...SYNTHETIC_LABELS]);
      assert.ok(ds.labels.length >= 3);
      const seen = new Set<string>();
      let overlaps = 0;
      for (const img of ds.images) {
        assert.ok(img.boxes.length >= 1 && img.boxes.length <= 4, `${img.boxes.length} objects`);
        const scale = 320 / Math.max(img.width, img.height);
        for (const { label, bbox: [x, y, w, h] } of img.boxes) {
          seen.add(label);
          assert.ok(x >= 0 && y >= 0 && x + w <= img.width && y + h <= img.height);
          for (const side of [w * scale, h * scale]) {
            assert.ok(side >= 24 - 1e-9 && side <= 120 + 1e-9, `side ${side} at 320 px`);
          }
        }
        for (let i = 0; i < img.boxes.length; i++) {
          for (let j = i + 1; j < img.boxes.length; j++) {
            const [a, b] = [img.boxes[i].bbox, img.boxes[j].bbox];
            if (
              a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3]
            ) {
              overlaps++;
            }
          }
        }
      }
      assert.deepEqual([...seen].sort(), [...SYNTHETIC_LABELS].sort());
      assert.ok(overlaps > 0, "overlaps should occur");
    },
  );

  await t.step("every box is painted: its centre stands out from the ring around it", async () => {
    let visible = 0, total = 0;
    for (const img of ds.images.slice(0, 20)) {
      const { data } = await sharp(img.bytes).removeAlpha().raw().toBuffer({
        resolveWithObject: true,
      });
      const px = (x: number, y: number) => {
        const i = (Math.round(y) * img.width + Math.round(x)) * 3;
        return [data[i], data[i + 1], data[i + 2]];
      };
      for (const { label, bbox: [x, y, w, h] } of img.boxes) {
        // A point surely inside the shape (triangles: towards the base, away from the apex).
        const inside = label === "triangle" ? null : px(x + w / 2, y + h / 2);
        if (!inside) continue;
        const ring = [[x - 3, y + h / 2], [x + w + 2, y + h / 2], [x + w / 2, y - 3], [
          x + w / 2,
          y + h + 2,
        ]]
          .filter(([a, b]) => a >= 0 && b >= 0 && a < img.width && b < img.height)
          .map(([a, b]) => px(a, b));
        if (!ring.length) continue;
        total++;
        const diff = Math.min(
          ...ring.map((c) =>
            Math.abs(c[0] - inside[0]) + Math.abs(c[1] - inside[1]) + Math.abs(c[2] - inside[2])
          ),
        );
        if (diff > 40) visible++;
      }
    }
    assert.ok(total > 10);
    // Overlaps can put another object right beside a box, so allow a few.
    assert.ok(visible / total >= 0.8, `${visible}/${total} boxes stand out`);
  });

  await t.step("invalid options are refused with the reason", async () => {
    await assert.rejects(
      () => generateDataset({ count: 0, seed: 1 }),
      (e: unknown) =>
        e instanceof SluiceError && e.code === "invalid_options" && /count/.test(e.message),
    );
    await assert.rejects(
      () => generateDataset({ count: 1, seed: 1, objectSize: [100, 50] }),
      (e: unknown) => e instanceof SluiceError && /min <= max/.test(e.message),
    );
  });

  await t.step("Label Studio export: percent boxes with the original size", () => {
    const tasks = toLabelStudioTasks(ds, { imageUrl: (f) => `s3://raw/synthetic/${f}` });
    assert.equal(tasks.length, ds.images.length);
    tasks.forEach((task, i) => {
      const img = ds.images[i];
      assert.equal(task.data.image, `s3://raw/synthetic/${img.fileName}`);
      const res = task.annotations[0].result;
      assert.equal(res.length, img.boxes.length);
      res.forEach((r, j) => {
        const [x, y, w, h] = img.boxes[j].bbox;
        assert.equal(r.type, "rectanglelabels");
        assert.equal(r.from_name, "label");
        assert.equal(r.to_name, "image");
        assert.equal(r.original_width, img.width);
        assert.equal(r.original_height, img.height);
        assert.deepEqual(r.value.rectanglelabels, [img.boxes[j].label]);
        const back = [
          r.value.x * img.width / 100,
          r.value.y * img.height / 100,
          r.value.width * img.width / 100,
          r.value.height * img.height / 100,
        ];
        back.forEach((v, k) => assert.ok(Math.abs(v - [x, y, w, h][k]) < 1e-9));
        assert.ok(r.value.x + r.value.width <= 100 + 1e-9);
      });
    });
  });

  await t.step("COCO ground truth: ids, categories, areas", () => {
    const coco = toCocoGroundTruth(ds);
    assert.deepEqual(coco.categories, SYNTHETIC_LABELS.map((name, i) => ({ id: i + 1, name })));
    assert.equal(coco.images.length, ds.images.length);
    assert.equal(coco.annotations.length, ds.images.reduce((a, i) => a + i.boxes.length, 0));
    const ids = new Set(coco.annotations.map((a) => a.id));
    assert.equal(ids.size, coco.annotations.length);
    for (const a of coco.annotations) {
      const img = ds.images[a.image_id - 1];
      assert.ok(img.boxes.some((b) => b.bbox.every((v, k) => v === a.bbox[k])));
      assert.equal(a.area, a.bbox[2] * a.bbox[3]);
      assert.equal(
        coco.categories[a.category_id - 1].name,
        img.boxes.find((b) => b.bbox.every((v, k) => v === a.bbox[k]))?.label,
      );
    }
  });

  await t.step("writeTrainingSet letterboxes, splits and shards", async () => {
    await withTempDir(async (dir) => {
      const small = { images: ds.images.slice(0, 14), labels: ds.labels };
      const set = await writeTrainingSet(small, { dir, inputSize: 160, valCount: 4, shards: 2 });
      assert.equal(set.train.images.length, 10);
      assert.equal(set.val.images.length, 4);
      const shardNames = await Promise.all(
        set.shardPaths.map(async (p) => (await Deno.readTextFile(p)).trim().split("\n")),
      );
      assert.deepEqual(shardNames.map((s) => s.length), [5, 5]);
      assert.deepEqual(
        [...shardNames[0], ...shardNames[1]].sort(),
        set.train.images.map((i) => i.file_name).sort(),
      );
      for (const [k, im] of set.train.images.entries()) {
        const meta = await sharp(join(set.imagesDir, im.file_name)).metadata();
        assert.deepEqual([meta.width, meta.height, im.width, im.height], [160, 160, 160, 160]);
        const orig = small.images[k];
        const scale = 160 / Math.max(orig.width, orig.height);
        const anns = set.train.annotations.filter((a) => a.image_id === im.id);
        assert.equal(anns.length, orig.boxes.length);
        anns.forEach((a, j) => {
          // Widths scale by the letterbox factor (up to pixel rounding of the resized size).
          assert.ok(Math.abs(a.bbox[2] - orig.boxes[j].bbox[2] * scale) < 0.02 * a.bbox[2] + 0.5);
          assert.ok(a.bbox[0] >= 0 && a.bbox[0] + a.bbox[2] <= 160 + 1e-9);
          assert.ok(a.bbox[1] >= 0 && a.bbox[1] + a.bbox[3] <= 160 + 1e-9);
        });
      }
    });
  });
});

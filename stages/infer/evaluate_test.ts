import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { evaluate, evaluatePredictions, GroundTruthError } from "./evaluate.ts";

/** Perfect precision is 1 − ε in COCO's arithmetic (it adds numpy.spacing(1) to denominators). */
function near(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `expected ${expected}, found ${actual}`);
}

const GT = {
  images: [
    { id: 1, file_name: "a.jpg", width: 100, height: 100 },
    { id: 2, file_name: "b.jpg", width: 100, height: 100 },
    { id: 3, file_name: "never-predicted.jpg", width: 100, height: 100 },
  ],
  annotations: [
    { id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 30, 30], area: 900, iscrowd: 0 },
    { id: 2, image_id: 2, category_id: 2, bbox: [50, 50, 40, 20], area: 800, iscrowd: 0 },
    { id: 3, image_id: 3, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
  ],
  categories: [{ id: 1, name: "cat" }, { id: 2, name: "dog" }],
};

Deno.test("evaluatePredictions matches images by file name and classes by name", () => {
  const exact = evaluatePredictions(GT, [
    {
      imageId: "img_a",
      uris: ["s3://raw/photos/a.jpg"],
      boxes: [{ label: "cat", bbox: [10, 10, 30, 30], score: 0.9 }],
    },
    {
      imageId: "img_b",
      uris: ["s3://raw/b.jpg"],
      boxes: [{ label: "dog", bbox: [50, 50, 40, 20], score: 0.8 }],
    },
  ]);
  near(exact.map50, 1);
  near(exact.map50_95, 1);
  assert.equal(exact.gtImages, 3);
  assert.equal(exact.matchedImages, 2);
  assert.deepEqual(exact.unmatched, ["never-predicted.jpg"]);
  assert.equal(exact.boxesScored, 2);

  // Off by 5 px on a 30 px box: IoU 25²/(2·900 − 625) ≈ 0.53, a hit at 0.5 only.
  const shifted = evaluatePredictions(GT, [
    {
      imageId: "img_a",
      uris: ["s3://raw/a.jpg"],
      boxes: [{ label: "cat", bbox: [15, 15, 30, 30], score: 0.9 }],
    },
    {
      imageId: "img_b",
      uris: ["s3://raw/b.jpg"],
      boxes: [{ label: "bird", bbox: [50, 50, 40, 20], score: 0.8 }],
    },
  ]);
  near(shifted.perClass.find((c) => c.name === "cat")?.ap50 ?? 0, 1);
  assert.ok(shifted.map50_95 < 0.5);
  assert.equal(shifted.perClass.find((c) => c.name === "dog")?.ap50, 0);
  assert.deepEqual(shifted.unknownLabels, ["bird"]);
});

Deno.test("evaluatePredictions prefers sluice_image_id over file names", () => {
  const gt = {
    ...GT,
    images: [{ id: 1, file_name: "same.jpg", sluice_image_id: "img_2" }, {
      id: 2,
      file_name: "other.jpg",
    }],
    annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] }],
  };
  const r = evaluatePredictions(gt, [
    { imageId: "img_1", uris: ["s3://raw/same.jpg"], boxes: [] },
    {
      imageId: "img_2",
      uris: ["s3://raw/x/same.jpg"],
      boxes: [{ label: "cat", bbox: [0, 0, 10, 10], score: 1 }],
    },
  ]);
  near(r.map50, 1);
});

Deno.test("evaluate reads the ground truth file and names a bad one", async () => {
  const dir = await mkdtemp(join(tmpdir(), "infer-eval-"));
  try {
    const path = join(dir, "gt.json");
    await writeFile(path, JSON.stringify(GT));
    const r = await evaluate({
      gt: path,
      predictions: [{
        imageId: "i",
        uris: ["file:///x/a.jpg"],
        boxes: [{ label: "cat", bbox: [10, 10, 30, 30], score: 1 }],
      }],
    });
    assert.equal(r.matchedImages, 1);
    near(r.map50, 1);
    await writeFile(path, JSON.stringify({ images: "no" }));
    const bad = await evaluate({ gt: path, predictions: [] }).catch((e) => e);
    assert.ok(bad instanceof GroundTruthError);
    assert.equal(bad.code, "invalid_ground_truth");
    const missing = await evaluate({ gt: join(dir, "none.json"), predictions: [] }).catch((e) => e);
    assert.match(missing.message, /expected a readable COCO file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

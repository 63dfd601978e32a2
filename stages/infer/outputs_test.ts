import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import type { ModelRef } from "./model_resolver.ts";
import {
  cocoOutputs,
  labelStudioTasks,
  outputKeys,
  partId,
  type PredictedImage,
  writeOutputs,
  writePart,
} from "./outputs.ts";

const REF: ModelRef = {
  name: "det",
  version: "3",
  alias: "champion",
  via: "alias",
  uri: "models:/det/3",
  movable: true,
};
const SPEC = { labels: ["cat", "dog"], categoryIds: [3, 7] };

const IMAGES: PredictedImage[] = [
  {
    id: "img_b",
    url: "s3://data/images/bb/b.jpg",
    fileName: "b.jpg",
    width: 200,
    height: 100,
    boxes: [
      { label: "cat", bbox: [20, 10, 50, 40], score: 0.8 },
      // Past the right and bottom edges: Label Studio gets it clipped to the image.
      { label: "dog", bbox: [150, 50, 60, 60], score: 0.6 },
    ],
    score: 0.7,
  },
  {
    id: "img_a",
    url: "s3://data/images/aa/a.png",
    fileName: "a.png",
    width: 64,
    height: 48,
    boxes: [],
    score: 0,
  },
];

Deno.test("Label Studio tasks: pre-annotations in percent, scored, naming model, version and alias", () => {
  assert.deepEqual(labelStudioTasks(IMAGES, REF), [
    {
      data: {
        image: "s3://data/images/aa/a.png",
        sluice_image_id: "img_a",
        sluice_model: "det",
        sluice_model_version: "3",
        // No box: E = 1 bit (one wholly uncertain object), u = 1/8, b = 0 → 0.125 / 1.25.
        sluice_review_priority: "0.1000",
      },
      predictions: [{ model_version: "det:3@champion", score: 0, result: [] }],
    },
    {
      data: {
        image: "s3://data/images/bb/b.jpg",
        sluice_image_id: "img_b",
        sluice_model: "det",
        sluice_model_version: "3",
        // Both boxes within 2× of the best: u = (H(0.8) + H(0.6)) / 8 = 1.693 / 8; one of each
        // class: b = 1/sqrt(2) → (0.2116 + 0.25 · 0.7071) / 1.25.
        sluice_review_priority: "0.3107",
      },
      predictions: [{
        model_version: "det:3@champion",
        score: 0.7,
        result: [
          {
            id: "p0",
            type: "rectanglelabels",
            from_name: "label",
            to_name: "image",
            original_width: 200,
            original_height: 100,
            image_rotation: 0,
            value: { x: 10, y: 10, width: 25, height: 40, rotation: 0, rectanglelabels: ["cat"] },
            score: 0.8,
          },
          {
            id: "p1",
            type: "rectanglelabels",
            from_name: "label",
            to_name: "image",
            original_width: 200,
            original_height: 100,
            image_rotation: 0,
            value: { x: 75, y: 50, width: 25, height: 50, rotation: 0, rectanglelabels: ["dog"] },
            score: 0.6,
          },
        ],
      }],
    },
  ]);
  const [task] = labelStudioTasks([IMAGES[1]], { ...REF, alias: null });
  assert.equal(task.predictions![0].model_version, "det:3");
});

Deno.test("COCO results: image_id, category_id from the model card, bbox, score", () => {
  const coco = cocoOutputs(IMAGES, SPEC);
  assert.deepEqual(coco.results, [
    { image_id: 2, category_id: 3, bbox: [20, 10, 50, 40], score: 0.8 },
    { image_id: 2, category_id: 7, bbox: [150, 50, 60, 60], score: 0.6 },
  ]);
  assert.deepEqual(coco.images, [
    { id: 1, file_name: "a.png", width: 64, height: 48, sluice_image_id: "img_a" },
    { id: 2, file_name: "b.jpg", width: 200, height: 100, sluice_image_id: "img_b" },
  ]);
  assert.deepEqual(coco.categories, [
    { id: 3, name: "cat", supercategory: "" },
    { id: 7, name: "dog", supercategory: "" },
  ]);
});

Deno.test("outputs land under <prefix>/<model>/<version>/ and are byte-identical on a re-run", async () => {
  const dir = await mkdtemp(join(tmpdir(), "infer-outputs-"));
  const store = await openObjectStore(join(dir, "objects"));
  try {
    const keys = await writeOutputs(store, "predictions", REF, SPEC, IMAGES);
    assert.deepEqual(
      [keys.dir, keys.labelStudio, keys.cocoResults, keys.cocoImages],
      [
        "predictions/det/3",
        "predictions/det/3/labelstudio.json",
        "predictions/det/3/coco_results.json",
        "predictions/det/3/coco_images.json",
      ],
    );
    const read = async (key: string) =>
      JSON.parse(new TextDecoder().decode(await store.getBytes(key)));
    assert.deepEqual(await read(keys.labelStudio), labelStudioTasks(IMAGES, REF));
    assert.deepEqual(await read(keys.cocoResults), cocoOutputs(IMAGES, SPEC).results);
    const first = await store.getBytes(keys.labelStudio);
    await writeOutputs(store, "predictions", REF, SPEC, [...IMAGES].reverse());
    assert.deepEqual(await store.getBytes(keys.labelStudio), first);

    const part = await writePart(store, "predictions", REF, IMAGES);
    assert.equal(
      part.key,
      `predictions/det/3/parts/${partId(["img_a", "img_b"])}.labelstudio.json`,
    );
    assert.equal(partId(["img_b", "img_a"]), partId(["img_a", "img_b"]));
    assert.notEqual(partId(["img_a"]), partId(["img_a", "img_b"]));
    assert.deepEqual(await read(part.key), part.tasks);
    assert.equal(
      outputKeys("", { name: "a b", version: "sha-12" }).labelStudio,
      "a%20b/sha-12/labelstudio.json",
    );
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

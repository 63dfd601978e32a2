import assert from "node:assert/strict";
import { profileOf, snapshotDatasetInput } from "./dataset_input.ts";

const categories = [{ id: 1, name: "car" }, { id: 3, name: "person" }];
const opts = {
  snapshotId: "snap-0123456789abcdef0123",
  variant: "640",
  inputSize: 320,
  snapshotUri: "s3://train/training/snap-0123/snapshot.json",
  train: {
    images: [{ id: 1 }, { id: 2 }, { id: 3 }],
    annotations: [
      { image_id: 1, category_id: 1 },
      { image_id: 1, category_id: 1 },
      { image_id: 1, category_id: 3 },
      { image_id: 2, category_id: 3 },
      { image_id: 2, category_id: 3, iscrowd: 1 },
    ],
    categories,
  },
  val: {
    images: [{ id: 9 }],
    annotations: [{ image_id: 9, category_id: 1 }],
    categories,
  },
};

Deno.test("profileOf counts images and boxes per class and split, crowd regions apart", () => {
  assert.deepEqual(profileOf(opts), {
    variant: "640",
    input_size: 320,
    images: { train: 3, val: 1 },
    boxes: { train: 4, val: 1 },
    classes: {
      car: { train_images: 1, train_boxes: 2, val_images: 1, val_boxes: 1, crowd_regions: 0 },
      person: { train_images: 2, train_boxes: 2, val_images: 0, val_boxes: 0, crowd_regions: 1 },
    },
  });
});

Deno.test("snapshotDatasetInput: digest from the snapshot id, source, schema, context", () => {
  const { dataset, tags } = snapshotDatasetInput(opts);
  assert.equal(dataset.name, "sluice-640");
  assert.equal(dataset.digest, "0123456789abcdef0123");
  assert.equal(dataset.sourceType, "s3");
  assert.deepEqual(JSON.parse(dataset.source), { uri: opts.snapshotUri });
  assert.ok(
    JSON.parse(dataset.schema!).mlflow_colspec.some((c: { name: string }) => c.name === "bbox_w"),
  );
  assert.deepEqual(JSON.parse(dataset.profile!), profileOf(opts));
  assert.deepEqual(tags, { "mlflow.data.context": "training" });
  assert.equal(
    snapshotDatasetInput({ ...opts, snapshotUri: "file:///data/snapshot.json" }).dataset.sourceType,
    "local",
  );
});

import assert from "node:assert/strict";
import { detectorSpec, type GraphInfo, ModelCardError } from "./model_card.ts";

const GRAPH: GraphInfo = {
  inputNames: ["images"],
  outputNames: ["heatmap", "size", "offset"],
  inputShapes: { images: ["batch", 3, 320, 320] },
  outputShapes: {
    heatmap: ["batch", 3, 80, 80],
    size: ["batch", 2, 80, 80],
    offset: ["batch", 2, 80, 80],
  },
};

// The fields the trainer's export_onnx.model_card writes.
const CARD = {
  format: "sluice-centernet/1",
  input: { name: "images", shape: ["batch", 3, 320, 320], dtype: "float32", layout: "NCHW" },
  outputs: [{ name: "heatmap", shape: ["batch", 3, 80, 80] }],
  stride: 4,
  labels: ["circle", "rectangle", "triangle"],
  category_ids: [4, 5, 6],
  decode: { score_threshold: 0.1, pre_nms_top_k: 50, nms_iou: 0.6, top_k: 20, steps: ["..."] },
  metrics: { map50: 0.9 },
};

Deno.test("detectorSpec reads the trainer's model card", () => {
  const spec = detectorSpec(CARD, null, GRAPH);
  assert.deepEqual(spec, {
    format: "sluice-centernet/1",
    inputName: "images",
    inputWidth: 320,
    inputHeight: 320,
    outputs: { heatmap: "heatmap", size: "size", offset: "offset" },
    stride: 4,
    labels: ["circle", "rectangle", "triangle"],
    categoryIds: [4, 5, 6],
    decode: { scoreThreshold: 0.1, preNmsTopK: 50, nmsIou: 0.6, topK: 20, nmsInGraph: false },
  });
});

Deno.test("detectorSpec falls back to labels.json and the graph's shapes", () => {
  const spec = detectorSpec(null, ["a", "b", "c"], GRAPH);
  assert.equal(spec.inputWidth, 320);
  assert.equal(spec.stride, 4);
  assert.deepEqual(spec.categoryIds, [1, 2, 3]);
  assert.deepEqual(spec.decode, {
    scoreThreshold: 0.05,
    preNmsTopK: 100,
    nmsIou: 0.5,
    topK: 100,
    nmsInGraph: false,
  });
  const graphNms = detectorSpec(
    { labels: ["a", "b", "c"], decode: { nms_in_graph: true } },
    null,
    GRAPH,
  );
  assert.equal(graphNms.decode.nmsInGraph, true);
});

Deno.test("detectorSpec names what is missing or inconsistent", async (t) => {
  const fails = (card: unknown, labels: unknown, graph: GraphInfo, re: RegExp) => {
    const err = (() => {
      try {
        detectorSpec(card, labels, graph);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof ModelCardError, `expected ModelCardError, got ${err}`);
    assert.equal(err.code, "invalid_model");
    assert.match(err.message, re);
  };
  await t.step(
    "no labels anywhere",
    () => fails(null, null, GRAPH, /labels in model_card\.json or labels\.json/),
  );
  await t.step(
    "labels.json that is not a list of names",
    () => fails(null, { a: 1 }, GRAPH, /labels\.json: expected a non-empty list/),
  );
  await t.step(
    "class count differs from the heatmap",
    () =>
      fails({ labels: ["a", "b"] }, null, GRAPH, /expected 2 classes \(one per label\), found 3/),
  );
  await t.step("dynamic spatial size", () =>
    fails(null, ["a", "b", "c"], {
      ...GRAPH,
      inputShapes: { images: ["batch", 3, "h", "w"] },
    }, /expected a fixed \[batch, 3, H, W\] size/));
  await t.step(
    "not a CenterNet-style graph",
    () =>
      fails(
        null,
        ["a", "b", "c"],
        { ...GRAPH, outputNames: ["boxes", "scores"] },
        /heatmap, size and offset/,
      ),
  );
  await t.step(
    "wrong input name",
    () => fails({ ...CARD, input: { name: "pixels" } }, null, GRAPH, /input named "pixels"/),
  );
  await t.step(
    "category ids do not line up with labels",
    () =>
      fails(
        { ...CARD, category_ids: [1] },
        null,
        GRAPH,
        /one category id per label \(3\), found 1/,
      ),
  );
  await t.step(
    "a card that is not a card",
    () => fails({ labels: "abc" }, null, GRAPH, /model_card\.json: expected/),
  );
});

import assert from "node:assert/strict";
import { parseLine, parseTrainerLine } from "./trainer_events.ts";

Deno.test("trainer events", async (t) => {
  await t.step("metric, param and progress lines parse", () => {
    const m = parseTrainerLine(
      '{"type":"metric","key":"train_loss","value":0.5,"step":10,"epoch":1}',
    );
    assert.deepEqual(m, { type: "metric", key: "train_loss", value: 0.5, step: 10, epoch: 1 });
    const p = parseTrainerLine('{"type":"param","key":"lr","value":"0.003"}');
    assert.deepEqual(p, { type: "param", key: "lr", value: "0.003" });
    const g = parseTrainerLine(
      '{"type":"progress","epoch":2,"step":20,"images_per_sec":31.5,"elapsed_s":4.2,"progress":0.5}',
    );
    assert.equal(g?.type, "progress");
  });

  await t.step("Python's non-finite spellings become numbers", () => {
    const nan = parseTrainerLine('{"type":"metric","key":"loss","value":"nan","step":1}');
    assert.ok(nan?.type === "metric" && Number.isNaN(nan.value));
    const inf = parseTrainerLine('{"type":"metric","key":"loss","value":"-inf","step":1}');
    assert.ok(inf?.type === "metric" && inf.value === -Infinity);
  });

  await t.step("stray output, unknown types and bad events are told apart", () => {
    assert.equal(parseLine("").kind, "empty");
    assert.equal(parseLine("Epoch 1 done").kind, "invalid");
    assert.equal(parseLine("[1, 2]").kind, "invalid");
    assert.deepEqual(parseLine('{"type":"future_event","x":1}'), {
      kind: "unknown",
      type: "future_event",
    });
    const bad = parseLine('{"type":"metric","key":"loss","value":"abc"}');
    assert.equal(bad.kind, "invalid");
    assert.match((bad as { problem: string }).problem, /metric event/);
  });

  await t.step("shard and summary events keep what the launcher reads", () => {
    const s = parseTrainerLine(
      '{"type":"shard","rank":1,"world_size":2,"shard":"/x/node-1.txt","count":3,"image_ids":[4,5,6]}',
    );
    assert.deepEqual(s, {
      type: "shard",
      rank: 1,
      world_size: 2,
      shard: "/x/node-1.txt",
      count: 3,
      image_ids: [4, 5, 6],
    });
    const summary = parseTrainerLine(JSON.stringify({
      type: "summary",
      map50: 0.7,
      map50_95: 0.4,
      ap_definition: "coco-101-point",
      per_class: [],
      val_images: 8,
      train_images: 32,
      steps: 8,
      epochs: 2,
      train_seconds: 3.5,
      images_per_sec: 20,
      world_size: 1,
      device: "cpu",
      num_params: 600000,
      model: "/out/model.onnx",
    }));
    assert.ok(summary?.type === "summary" && summary.map50 === 0.7);
  });
});

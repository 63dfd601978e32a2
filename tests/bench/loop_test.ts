/**
 * The review-loop benchmark end to end at `--quick` size (real ingest, normalize, PyTorch
 * trainer with a warm start, onnxruntime infer, the ingest stage's Label Studio webhook): the
 * simulated reviews reach the manifest through the webhook with provenance, and every mAP is a
 * number in [0, 1]. Plus the selection arms and the headline interpolation. About 20-40 s.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LabelStudioTask } from "../../common/annotations/labelstudio.ts";
import { openManifest } from "../../common/manifest/mod.ts";
import { skipUnless } from "../harness/requirement.ts";
import { formatLoopReport, parseLoopArgs, runLoop } from "./loop.ts";
import { reviewsToReach, selectTasks } from "./_loop_select.ts";

const task = (id: string, priority: string): LabelStudioTask => ({
  data: { image: `file:///x/${id}.jpg`, sluice_image_id: id, sluice_review_priority: priority },
});

Deno.test("loop bench: selection arms and the reviews-to-reach figure", async (t) => {
  const tasks = [
    task("a", "0.2000"),
    task("b", "0.9000"),
    task("c", "0.5000"),
    task("d", "0.9000"),
  ];
  await t.step("uncertainty takes the highest priorities (ties by id), eligible only", () => {
    const pick = (eligible: (id: string) => boolean) =>
      selectTasks("uncertainty", tasks, { k: 2, seed: 1, eligible }).map((x) =>
        x.data.sluice_image_id
      );
    assert.deepEqual(pick(() => true), ["b", "d"]);
    assert.deepEqual(pick((id) => id !== "b"), ["d", "c"]);
  });
  await t.step("least-confident: the lowest top box score first", () => {
    const scored = (id: string, scores: number[]): LabelStudioTask => ({
      data: { sluice_image_id: id },
      predictions: [{
        model_version: "1",
        score: Math.max(0, ...scores),
        result: scores.map((score) => ({ score }) as never),
      }],
    });
    const pool = [scored("a", [0.9, 0.2]), scored("b", [0.3]), scored("c", []), scored("d", [0.6])];
    const ids = selectTasks("least-confident", pool, { k: 3, seed: 1, eligible: () => true })
      .map((x) => x.data.sluice_image_id);
    assert.deepEqual(ids, ["c", "b", "d"]);
  });
  await t.step("random: K distinct eligible tasks, the same for the same seed", () => {
    const ids = (seed: number) =>
      selectTasks("random", tasks, { k: 3, seed, eligible: (id) => id !== "a" })
        .map((x) => x.data.sluice_image_id);
    assert.deepEqual(ids(5), ids(5));
    assert.deepEqual([...ids(5)].sort(), ["b", "c", "d"]);
    const draws = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((s) => ids(s).join()));
    assert.ok(draws.size > 1, "different seeds draw different orders");
  });
  await t.step("a task without a priority is an error naming it", () => {
    assert.throws(
      () =>
        selectTasks("uncertainty", [{ data: { sluice_image_id: "z" } }], {
          k: 1,
          seed: 1,
          eligible: () => true,
        }),
      /task of z: expected data\.sluice_review_priority/,
    );
  });
  await t.step("reviews to reach: linear between rounds, null when never reached", () => {
    const curve = [[0, 0.1], [10, 0.3], [20, 0.4]] as const;
    assert.equal(reviewsToReach(curve, 0.2), 5);
    assert.equal(reviewsToReach(curve, 0.05), 0);
    assert.equal(reviewsToReach(curve, 0.4), 20);
    assert.equal(reviewsToReach(curve, 0.41), null);
  });
  await t.step("options: --quick sizes, explicit flags win, bad values are refused", () => {
    const q = parseLoopArgs(["--quick", "--k", "2"])!;
    assert.equal(q.k, 2);
    assert.equal(q.seeds, 1);
    assert.equal(parseLoopArgs([])!.seeds, 3);
    assert.throws(() => parseLoopArgs(["--rounds", "0"]), /rounds/);
    assert.throws(() => parseLoopArgs(["--k", "500", "--pool", "100"]), /at most --pool/);
    assert.throws(() => parseLoopArgs(["--frobnicate"]), /bench loop: .*frobnicate/);
    assert.deepEqual(parseLoopArgs(["--arms", "least-confident,random"])!.arms, [
      "least-confident",
      "random",
    ]);
    assert.throws(
      () => parseLoopArgs(["--arms", "uncertainty,least-confident"]),
      /including "random"/,
    );
    assert.throws(() => parseLoopArgs(["--arms", "greedy,random"]), /arms/);
  });
});

let torchOk = false;
try {
  torchOk = (await new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import torch, onnx"],
    stdout: "null",
    stderr: "null",
  }).output()).success;
} catch {
  torchOk = false;
}

Deno.test({
  name: "loop bench --quick: reviews arrive through the webhook with provenance, mAP in [0, 1]",
  ignore: skipUnless(
    "tests/bench/loop_test.ts",
    torchOk ? null : "/usr/bin/python3 cannot import torch + onnx (apt-get install python3-torch)",
  ),
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "sluice-loop-test-"));
    try {
      const o = parseLoopArgs(["--quick", "--dir", dir])!;
      const report = await runLoop(o);
      assert.equal(report.points.length, 2 * (o.rounds + 1));
      for (const p of report.points) {
        assert.ok(Number.isFinite(p.map50) && p.map50 >= 0 && p.map50 <= 1, JSON.stringify(p));
      }
      assert.deepEqual(report.reviewed, [0, o.k]);
      for (const arm of ["uncertainty", "random"] as const) {
        // The provenance rows the webhook recorded in the arm's own manifest.
        const m = await openManifest(
          `sqlite://${join(dir, "seed-1", arm, ".sluice", "manifest.db")}`,
        );
        try {
          const rows = await m.listReviews();
          assert.equal(rows.length, o.k, `${arm}: one review per selected image`);
          for (const r of rows) {
            assert.equal(r.state, "active");
            assert.equal(r.reviewer, "1");
            // Round 1 reviews the shared round-0 model's pre-annotations.
            assert.equal(r.modelName, "loop");
            assert.equal(r.modelVersion, "1");
            assert.ok(r.counts, `${arm}: edit counts against the prediction`);
            assert.ok(r.boxes.length >= 1, `${arm}: the true boxes were recorded`);
          }
          const reviewed = await m.listAnnotations(rows.map((r) => r.imageId));
          assert.ok(reviewed.some((a) => a.source === "review"), "mirrored into annotations");
        } finally {
          await m.close();
        }
      }
      assert.deepEqual(report.reviews.map((r) => [r.arm, r.rows, r.withPrediction]), [
        ["uncertainty", o.k, o.k],
        ["random", o.k, o.k],
      ]);
      assert.match(formatLoopReport(report), /\| 1 \| 3 \| /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});

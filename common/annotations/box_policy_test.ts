import assert from "node:assert/strict";
import type { AnnotationInput } from "../manifest/mod.ts";
import { applyBoxPolicy, countProblems } from "./box_policy.ts";

const IMAGE = { width: 100, height: 80 };

/** A closed polygon starting at its smallest vertex, so that equal shapes compare equal. */
function cycle(points: [number, number][]): [number, number][] {
  let k = 0;
  points.forEach((p, i) => {
    if (p[0] + p[1] < points[k][0] + points[k][1]) k = i;
  });
  return [...points.slice(k), ...points.slice(0, k)];
}

Deno.test("applyBoxPolicy", async (t) => {
  await t.step("valid boxes pass through unchanged, in order", () => {
    const anns: AnnotationInput[] = [
      { label: "cat", bbox: [0, 0, 100, 80], sourceRef: "a" },
      {
        label: "dog",
        bbox: [10.5, 20.25, 5, 5],
        polygon: [[10.5, 20.25], [15.5, 20.25], [15.5, 25.25]],
      },
    ];
    const r = applyBoxPolicy(anns, IMAGE);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.kept, anns);
  });

  await t.step("NaN, Infinity and malformed boxes are always dropped, never thrown", () => {
    const anns = [
      { label: "cat", bbox: [NaN, 0, 10, 10] },
      { label: "cat", bbox: [0, 0, Infinity, 10] },
      { label: "cat", bbox: [0, 0, 10] },
      { label: "cat", bbox: "0,0,10,10" },
      { label: "cat", bbox: [0, 0, 10, 10], polygon: [[0, 0], [NaN, 1], [2, 2]] },
      null,
      { label: "cat", bbox: [1, 1, 10, 10] },
    ] as unknown as AnnotationInput[];
    for (const outOfBounds of ["clamp", "drop"] as const) {
      const r = applyBoxPolicy(anns, IMAGE, { outOfBounds });
      assert.deepEqual(r.kept.map((a) => a.bbox), [[1, 1, 10, 10]]);
      assert.deepEqual(r.problems.map((p) => [p.index, p.problem, p.action]), [
        [0, "invalid_number", "dropped"],
        [1, "invalid_number", "dropped"],
        [2, "invalid_number", "dropped"],
        [3, "invalid_number", "dropped"],
        [4, "invalid_number", "dropped"],
        [5, "invalid_number", "dropped"],
      ]);
      assert.match(r.problems[0].detail, /expected 4 finite numbers, found \[NaN/);
    }
  });

  await t.step("zero and negative sizes are dropped", () => {
    const r = applyBoxPolicy([
      { label: "a", bbox: [5, 5, 0, 10] },
      { label: "a", bbox: [5, 5, 10, -1] },
    ], IMAGE);
    assert.equal(r.kept.length, 0);
    assert.deepEqual(r.problems.map((p) => p.problem), ["non_positive_size", "non_positive_size"]);
    assert.match(r.problems[1].detail, /found 10×-1/);
  });

  await t.step("partly outside: clamp clips box and polygon; drop drops", () => {
    const ann: AnnotationInput = {
      label: "a",
      bbox: [-20, 70, 40, 20],
      polygon: [[-20, 70], [20, 70], [20, 90], [-20, 90]],
    };
    const clamp = applyBoxPolicy([ann], IMAGE, { outOfBounds: "clamp" });
    assert.deepEqual(clamp.kept[0].bbox, [0, 70, 20, 10]);
    assert.deepEqual(cycle(clamp.kept[0].polygon ?? []), [[0, 70], [20, 70], [20, 80], [0, 80]]);
    assert.deepEqual(clamp.problems.map((p) => [p.problem, p.action]), [[
      "out_of_bounds",
      "clamped",
    ]]);
    assert.match(clamp.problems[0].detail, /20 px outside the 100×80 image/);

    const drop = applyBoxPolicy([ann], IMAGE, { outOfBounds: "drop" });
    assert.deepEqual(drop.kept, []);
    assert.deepEqual(drop.problems.map((p) => [p.problem, p.action]), [[
      "out_of_bounds",
      "dropped",
    ]]);
  });

  await t.step("overhang within tolerance is clamped silently in both modes", () => {
    for (const outOfBounds of ["clamp", "drop"] as const) {
      const r = applyBoxPolicy([{ label: "a", bbox: [90, 70, 10.0000001, 10.3] }], IMAGE, {
        outOfBounds,
      });
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.kept[0].bbox, [90, 70, 10, 10]);
    }
    const strict = applyBoxPolicy([{ label: "a", bbox: [90, 70, 10, 10.3] }], IMAGE, {
      outOfBounds: "drop",
      tolerance: 0,
    });
    assert.equal(strict.kept.length, 0);
  });

  await t.step("entirely outside is dropped even when clamping", () => {
    const r = applyBoxPolicy([{ label: "a", bbox: [100, 0, 10, 10] }, {
      label: "a",
      bbox: [-50, -50, 10, 10],
    }], IMAGE);
    assert.equal(r.kept.length, 0);
    assert.deepEqual(r.problems.map((p) => p.problem), ["outside_image", "outside_image"]);
  });

  await t.step("unknown, empty and missing labels with an allowlist", () => {
    const anns = [
      { label: "cat", bbox: [0, 0, 5, 5] },
      { label: "zebra", bbox: [0, 0, 5, 5] },
      { label: "", bbox: [0, 0, 5, 5] },
      { bbox: [0, 0, 5, 5] },
    ] as unknown as AnnotationInput[];
    const r = applyBoxPolicy(anns, IMAGE, { labels: ["cat", "dog"] });
    assert.deepEqual(r.kept.map((a) => a.label), ["cat"]);
    assert.deepEqual(r.problems.map((p) => [p.index, p.problem]), [
      [1, "unknown_label"],
      [2, "unknown_label"],
      [3, "unknown_label"],
    ]);
    assert.match(r.problems[0].detail, /"zebra" is not one of \[cat, dog\]/);
    // Without an allowlist any non-empty label is fine.
    assert.equal(applyBoxPolicy(anns, IMAGE).kept.length, 2);
  });

  await t.step("degenerate polygons are removed but the box is kept; minSize drops slivers", () => {
    const r = applyBoxPolicy(
      [
        { label: "a", bbox: [0, 0, 5, 5], polygon: [[0, 0], [5, 5]] },
        { label: "a", bbox: [0, 0, 0.5, 30] },
      ],
      IMAGE,
      { minSize: 1 },
    );
    assert.deepEqual(r.kept, [{ label: "a", bbox: [0, 0, 5, 5], polygon: null }]);
    assert.deepEqual(countProblems(r.problems), {
      "invalid_polygon/polygon_removed": 1,
      "too_small/dropped": 1,
    });
  });

  await t.step("clamping a rotated rectangle clears its rotation", () => {
    const r = applyBoxPolicy([{
      label: "a",
      bbox: [-5, 0, 20, 20],
      polygon: [[5, 0], [15, 10], [5, 20], [-5, 10]],
      rotation: 45,
    }], IMAGE);
    assert.equal(r.kept[0].rotation, null);
    assert.deepEqual(r.kept[0].bbox, [0, 0, 15, 20]);
  });

  await t.step("invalid options and image sizes are programming errors: they throw", () => {
    assert.throws(() => applyBoxPolicy([], IMAGE, { outOfBounds: "wrap" as "drop" }));
    assert.throws(() => applyBoxPolicy([], { width: 0, height: 10 }));
  });
});

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { AnnotationInput, BBox } from "../manifest/mod.ts";
import { AnnotationFormatError } from "./errors.ts";
import { polygonArea } from "./geometry.ts";
import {
  parseLabelStudioExport,
  predictionsToLabelStudio,
  readLabelStudioExport,
  toLabelStudioTasks,
} from "./labelstudio.ts";

const FIXTURE = fileURLToPath(new URL("./testdata/labelstudio_export.json", import.meta.url));

function near(
  actual: readonly number[],
  expected: readonly number[],
  tol = 1e-9,
  what = "value",
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) =>
    assert.ok(
      Math.abs(v - expected[i]) <= tol,
      `${what}[${i}]: expected ${expected[i]} ± ${tol}, found ${v}`,
    )
  );
}

/**
 * label-studio-sdk's `Converter.rotated_rectangle` transcribed from Python: it rotates in PERCENT
 * space. Used as an independent oracle: it must agree with Sluice on square images only.
 */
function sdkRotatedRectangle(x: number, y: number, w: number, h: number, r: number): BBox {
  if (Math.abs(r) === 0) return [x, y, w, h];
  const alpha = Math.atan(h / w);
  const beta = Math.PI * (r / 180);
  const radius = Math.sqrt((w / 2) ** 2 + (h / 2) ** 2);
  const x0 = x - radius * (Math.cos(Math.PI - alpha - beta) - Math.cos(Math.PI - alpha)) + w / 2;
  const y0 = y + radius * (Math.sin(Math.PI - alpha - beta) - Math.sin(Math.PI - alpha)) + h / 2;
  const thetas = [
    alpha + beta,
    Math.PI - alpha + beta,
    Math.PI + alpha + beta,
    2 * Math.PI - alpha + beta,
  ];
  const xs = thetas.map((t) => x0 + radius * Math.cos(t));
  const ys = thetas.map((t) => y0 + radius * Math.sin(t));
  const lx = Math.min(...xs), ly = Math.min(...ys);
  return [lx, ly, Math.max(...xs) - lx, Math.max(...ys) - ly];
}

function lsTask(width: number, height: number, value: Record<string, unknown>) {
  return {
    id: 1,
    data: { image: "a.jpg" },
    annotations: [{
      id: 1,
      result: [{
        id: "r",
        type: "rectanglelabels",
        original_width: width,
        original_height: height,
        value: { ...value, rectanglelabels: ["x"] },
      }],
    }],
  };
}

Deno.test("Label Studio import", async (t) => {
  const imported = await readLabelStudioExport(FIXTURE);

  await t.step(
    "bad tasks are reported per task with file and JSON path; others still import",
    () => {
      assert.deepEqual(imported.tasks.map((x) => x.taskId), ["101", "102", "104"]);
      assert.equal(imported.failures.length, 2);
      for (const f of imported.failures) {
        assert.ok(f instanceof AnnotationFormatError);
        assert.equal(f.code, "bad_annotation_file");
        assert.equal(f.file, FIXTURE);
      }
      assert.equal(imported.failures[0].path, "$[2].data.image");
      assert.match(
        imported.failures[0].message,
        /labelstudio_export\.json at \$\[2\]\.data\.image: expected the image URL/,
      );
      assert.equal(imported.failures[1].path, "$[4]");
    },
  );

  await t.step("newest annotation wins; cancelled ones are skipped; predictions ignored", () => {
    const task = imported.tasks[0];
    assert.equal(task.annotationId, "11");
    assert.equal(task.width, 800);
    assert.equal(task.height, 600);
    assert.deepEqual(task.annotations.map((a) => a.label), ["cat", "dog"]);
    // pixel = percent / 100 × original size
    assert.deepEqual(task.annotations[0].bbox, [100, 150, 200, 300]);
    assert.equal(task.annotations[0].sourceRef, "labelstudio:101/11/a1");
    assert.deepEqual(task.annotations[1].polygon, [[400, 300], [600, 300], [600, 600]]);
    assert.deepEqual(task.annotations[1].bbox, [400, 300, 200, 300]);
    assert.equal(polygonArea(task.annotations[1].polygon ?? []), 30000);
    assert.ok(task.problems.some((p) => p.path === "$[0].annotations[2].was_cancelled"));
    assert.ok(task.problems.some((p) => p.path === "$[0].annotations[1].result[2].type"));
    assert.ok(
      !task.annotations.some((a) => a.label === "bird"),
      "predictions must not be imported",
    );
  });

  await t.step("image references: upload prefix stripped, URL decoded, s3 URI kept", () => {
    const ref = imported.tasks[0].imageRef;
    assert.equal(ref.fileName, "9f3a2b1c-cat one.jpg");
    assert.ok(ref.candidates.includes("cat one.jpg"));
    assert.equal(imported.tasks[1].imageRef.fileName, "dog.png");
    assert.ok(imported.tasks[1].imageRef.candidates.includes("s3://raw/dogs/dog.png"));
    assert.ok(imported.tasks[2].imageRef.candidates.includes("https://example.com/img/bird.jpg"));
  });

  await t.step("bad results are problems, not failures; extra labels keep the first", () => {
    const task = imported.tasks[2];
    assert.deepEqual(task.annotations.map((a) => a.bbox), [[10, 10, 20, 20]]);
    assert.deepEqual(task.problems.map((p) => p.path), [
      "$[3].annotations[0].result[0].value.x",
      "$[3].annotations[0].result[1].value.rectanglelabels",
    ]);
  });

  await t.step("rotated rectangles: envelope of corners rotated clockwise in pixel space", () => {
    const ann = imported.tasks[1].annotations[0];
    const c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
    // 400×200 image: origin (100, 20), 100×40 px, turned 30° clockwise about the origin.
    const corners = [[100, 20], [100 + 100 * c, 20 + 100 * s], [
      100 + 100 * c - 40 * s,
      20 + 100 * s + 40 * c,
    ], [
      100 - 40 * s,
      20 + 40 * c,
    ]];
    near(ann.polygon?.flat() ?? [], corners.flat(), 1e-9, "corners");
    near(ann.bbox, [80, 20, 100 * c + 40 * s, 100 * s + 40 * c], 1e-9, "bbox");
    assert.equal(ann.rotation, 30);
    assert.ok(Math.abs(polygonArea(ann.polygon ?? []) - 4000) < 1e-6);
  });

  await t.step(
    "agrees with label-studio-sdk on square images, differs (by design) otherwise",
    () => {
      for (const r of [15, 30, 45, 90, 200, 330]) {
        const v = { x: 20, y: 30, width: 25, height: 10, rotation: r };
        const sdk = sdkRotatedRectangle(20, 30, 25, 10, r);
        const square = parseLabelStudioExport([lsTask(500, 500, v)]).tasks[0].annotations[0];
        near(square.bbox, sdk.map((p) => (p / 100) * 500), 1e-9, `square r=${r}`);
        const wide = parseLabelStudioExport([lsTask(1000, 500, v)]).tasks[0].annotations[0];
        const sdkWide: BBox = [sdk[0] * 10, sdk[1] * 5, sdk[2] * 10, sdk[3] * 5];
        assert.ok(
          wide.bbox.some((p, i) => Math.abs(p - sdkWide[i]) > 1),
          `r=${r}: expected pixel-space envelope to differ from the SDK's percent-space one`,
        );
      }
      // Without rotation both are plain percent → pixel scaling.
      const plain = parseLabelStudioExport([
        lsTask(1000, 500, { x: 20, y: 30, width: 25, height: 10 }),
      ]);
      assert.deepEqual(plain.tasks[0].annotations[0].bbox, [200, 150, 250, 50]);
      assert.equal(plain.tasks[0].annotations[0].polygon, undefined);
    },
  );

  await t.step("choose: oldest, first, merge", () => {
    const oldest =
      parseLabelStudioExport(Deno.readTextFileSync(FIXTURE), { choose: "oldest" }).tasks[0];
    assert.equal(oldest.annotationId, "10");
    assert.deepEqual(oldest.annotations.map((a) => a.bbox), [[0, 0, 400, 300]]);
    const first =
      parseLabelStudioExport(Deno.readTextFileSync(FIXTURE), { choose: "first" }).tasks[0];
    assert.equal(first.annotationId, "10");
    const merged =
      parseLabelStudioExport(Deno.readTextFileSync(FIXTURE), { choose: "merge" }).tasks[0];
    assert.equal(merged.annotationId, null);
    assert.deepEqual(merged.annotations.map((a) => a.sourceRef), [
      "labelstudio:101/10/old1",
      "labelstudio:101/11/a1",
      "labelstudio:101/11/a2",
    ]);
  });

  await t.step("newest falls back to created_at, then to the larger id", () => {
    const mk = (id: number, created?: string, updated?: string) => ({
      id,
      created_at: created,
      updated_at: updated,
      result: [{
        id: "r",
        type: "rectanglelabels",
        original_width: 10,
        original_height: 10,
        value: { x: id, y: 0, width: 10, height: 10, rectanglelabels: ["a"] },
      }],
    });
    const byCreated = parseLabelStudioExport([{
      data: { image: "a.jpg" },
      annotations: [mk(1, "2024-05-01T00:00:00Z"), mk(2, "2024-04-01T00:00:00Z")],
    }]);
    assert.equal(byCreated.tasks[0].annotationId, "1");
    const byId = parseLabelStudioExport([{
      data: { image: "a.jpg" },
      annotations: [mk(7), mk(9), mk(8)],
    }]);
    assert.equal(byId.tasks[0].annotationId, "9");
  });

  await t.step("rectangle + labels pairs, legacy completions, single task object", () => {
    const doc = {
      id: 5,
      data: { image: "x.jpg" },
      completions: [{
        id: 1,
        result: [
          {
            id: "q",
            type: "rectangle",
            original_width: 10,
            original_height: 10,
            value: { x: 10, y: 10, width: 50, height: 50 },
          },
          { id: "q", type: "labels", value: { labels: ["car"] } },
        ],
      }],
    };
    const r = parseLabelStudioExport(doc);
    assert.deepEqual(r.tasks[0].annotations.map((a) => [a.label, a.bbox]), [["car", [1, 1, 5, 5]]]);
  });

  await t.step("broken JSON and wrong top-level shape throw a named error", () => {
    assert.throws(
      () => parseLabelStudioExport("[{", { file: "broken.json" }),
      (e: unknown) =>
        e instanceof AnnotationFormatError && e.path === "$" &&
        /broken\.json at \$: expected JSON/.test(e.message),
    );
    assert.throws(
      () => parseLabelStudioExport('{"tasks": []}', { file: "obj.json" }),
      (e: unknown) =>
        e instanceof AnnotationFormatError &&
        /expected an array of tasks, found an object/.test(e.message),
    );
  });
});

Deno.test("Label Studio export", async (t) => {
  const images = [
    { id: "img_a", url: "s3://raw/a.jpg", width: 640, height: 480 },
    { id: "img_b", url: "https://cdn.example.com/b.jpg", width: 100, height: 50 },
  ];
  const anns = new Map<string, AnnotationInput[]>([["img_a", [
    { label: "cat", bbox: [64, 48, 320, 240] },
    { label: "dog", bbox: [0, 0, 64, 48], polygon: [[0, 0], [64, 0], [32, 48]] },
  ]]]);

  await t.step("tasks carry data, sluice id and percent boxes", () => {
    const tasks = toLabelStudioTasks(images, anns);
    assert.equal(tasks.length, 2);
    assert.deepEqual(tasks[0].data, { image: "s3://raw/a.jpg", sluice_image_id: "img_a" });
    const [r0, r1] = tasks[0].annotations?.[0].result ?? [];
    assert.deepEqual(r0.value, {
      x: 10,
      y: 10,
      width: 50,
      height: 50,
      rotation: 0,
      rectanglelabels: ["cat"],
    });
    assert.equal(r0.from_name, "label");
    assert.equal(r0.to_name, "image");
    assert.equal(r0.original_width, 640);
    // Default: polygons stay polygons (what the source held); `polygons: "rectangle"` boxes them.
    assert.equal(r1.type, "polygonlabels");
    const boxed = toLabelStudioTasks(images, anns, { polygons: "rectangle" });
    assert.equal(boxed[0].annotations?.[0].result[1].type, "rectanglelabels");
    assert.deepEqual(boxed[0].annotations?.[0].result[1].value.width, 10);
    assert.equal(tasks[1].annotations, undefined);
    assert.equal(toLabelStudioTasks(images, anns, { includeEmpty: false }).length, 1);
  });

  await t.step("polygon mode writes polygonlabels in percent", () => {
    const tasks = toLabelStudioTasks(images, anns, {
      polygons: "polygon",
      polygonFromName: "poly",
    });
    const r1 = tasks[0].annotations?.[0].result[1];
    assert.equal(r1?.type, "polygonlabels");
    assert.equal(r1?.from_name, "poly");
    assert.deepEqual(r1?.value.points, [[0, 0], [10, 0], [5, 10]]);
  });

  await t.step("rotated rectangles go back exactly as Label Studio stored them", () => {
    const src = [lsTask(400, 200, { x: 25, y: 10, width: 25, height: 20, rotation: 30 })];
    const ann = parseLabelStudioExport(src).tasks[0].annotations;
    const out = toLabelStudioTasks([{ id: "i", url: "a.jpg", width: 400, height: 200 }], {
      i: ann,
    });
    const v = out[0].annotations?.[0].result[0].value;
    near([v?.x ?? NaN, v?.y ?? NaN, v?.width ?? NaN, v?.height ?? NaN, v?.rotation ?? NaN], [
      25,
      10,
      25,
      20,
      30,
    ], 1e-9);
  });

  await t.step("predictions: exact shape, configurable names, clipped boxes", () => {
    const pred = predictionsToLabelStudio(
      {
        modelName: "det",
        modelVersion: "3",
        boxes: [
          { label: "cat", bbox: [64, 48, 64, 48], score: 0.9 },
          { label: "dog", bbox: [600, 400, 100, 100], score: 0.5 },
          { label: "ghost", bbox: [700, 0, 10, 10], score: 0.4 },
        ],
      },
      { width: 640, height: 480 },
      { fromName: "bbox", toName: "img" },
    );
    assert.equal(pred.model_version, "det:3");
    assert.ok(Math.abs(pred.score - 0.6) < 1e-12);
    assert.deepEqual(pred.result[0], {
      id: "p0",
      type: "rectanglelabels",
      from_name: "bbox",
      to_name: "img",
      original_width: 640,
      original_height: 480,
      image_rotation: 0,
      value: { x: 10, y: 10, width: 10, height: 10, rotation: 0, rectanglelabels: ["cat"] },
      score: 0.9,
    });
    assert.equal(pred.result.length, 2);
    near([pred.result[1].value.width ?? NaN, pred.result[1].value.height ?? NaN], [
      6.25,
      100 * 80 / 480,
    ], 1e-9);
    const tasks = toLabelStudioTasks(
      images,
      {},
      {},
      new Map([["img_b", [{ modelVersion: "7", score: 0.3, boxes: [] }]]]),
    );
    assert.deepEqual(tasks[1].predictions, [{ model_version: "7", score: 0.3, result: [] }]);
  });
});

Deno.test("Label Studio: skipped, reviewed-empty and unlabelled tasks", async (t) => {
  const box = {
    id: "r",
    type: "rectanglelabels",
    original_width: 100,
    original_height: 50,
    value: { x: 10, y: 10, width: 20, height: 20, rectanglelabels: ["cat"] },
  };

  await t.step("a pre-1.0 completion with skipped: true is excluded like a cancelled one", () => {
    const { tasks } = parseLabelStudioExport([{
      id: 7,
      data: { image: "a.jpg" },
      completions: [{ id: 1, result: [box], skipped: true }],
    }]);
    assert.deepEqual(tasks[0].annotations, []);
    assert.equal(tasks[0].labelled, false);
    assert.deepEqual(tasks[0].problems, [{
      path: "$[0].completions[0].skipped",
      problem: "annotation was skipped: skipped",
    }]);
  });

  await t.step("a submitted empty result means reviewed, no objects", () => {
    const { tasks } = parseLabelStudioExport([
      { id: 1, data: { image: "a.jpg" }, annotations: [{ id: 1, result: [] }] },
      { id: 2, data: { image: "b.jpg" }, annotations: [] },
      { id: 3, data: { image: "c.jpg" }, annotations: [{ id: 2, result: [box] }] },
    ]);
    assert.deepEqual(tasks.map((x) => [x.labelled, x.annotations.length]), [
      [true, 0],
      [false, 0],
      [true, 1],
    ]);
  });

  await t.step(
    "export: [] → a completed annotation with an empty result; none → no annotation",
    () => {
      const images = ["a", "b"].map((id) => ({ id, url: `${id}.jpg`, width: 100, height: 50 }));
      const tasks = toLabelStudioTasks(images, { a: [] });
      assert.deepEqual(tasks[0].annotations, [{ result: [], ground_truth: false }]);
      assert.equal(tasks[1].annotations, undefined);
      const back = parseLabelStudioExport(JSON.stringify(tasks)).tasks;
      assert.deepEqual(back.map((x) => x.labelled), [true, false]);
    },
  );
});

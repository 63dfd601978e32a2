import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { SluiceError } from "../errors/mod.ts";
import type { AnnotationInput } from "../manifest/mod.ts";
import { parseCoco, readCoco, toCoco, toCocoResults } from "./coco.ts";
import { AnnotationFormatError } from "./errors.ts";
import { parseLabelStudioExport, toLabelStudioTasks } from "./labelstudio.ts";

const FIXTURE = fileURLToPath(new URL("./testdata/coco_instances.json", import.meta.url));
const LS_FIXTURE = fileURLToPath(new URL("./testdata/labelstudio_export.json", import.meta.url));

function assertBoxesNear(
  actual: readonly number[][],
  expected: readonly number[][],
  tol: number,
  what: string,
): void {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: expected ${expected.length} boxes, found ${actual.length}`,
  );
  actual.forEach((box, i) =>
    box.forEach((v, k) =>
      assert.ok(
        Math.abs(v - expected[i][k]) <= tol,
        `${what} box ${i}[${k}]: expected ${expected[i][k]} ± ${tol}, found ${v}`,
      )
    )
  );
}

Deno.test("COCO import", async (t) => {
  const coco = await readCoco(FIXTURE);

  await t.step(
    "images in file order, including ones without annotations; bad records are failures",
    () => {
      assert.deepEqual(coco.images.map((i) => [i.cocoId, i.fileName, i.width, i.height]), [
        [7, "photos/street.jpg", 640, 480],
        [9, "empty.png", 100, 100],
        [12, "crowd.jpg", 300, 200],
      ]);
      assert.equal(coco.images[0].imageRef.fileName, "street.jpg");
      assert.deepEqual(coco.images[1].annotations, []);
      assert.equal(coco.failures.length, 1);
      assert.ok(coco.failures[0] instanceof AnnotationFormatError);
      assert.equal(coco.failures[0].path, "$.images[3].file_name");
    },
  );

  await t.step("categories with id gaps map by id, not position", () => {
    assert.deepEqual(coco.categories, [{ id: 1, name: "person" }, { id: 3, name: "car" }, {
      id: 18,
      name: "dog",
    }]);
    const street = coco.images[0].annotations;
    assert.deepEqual(street.map((a) => a.label), ["person", "dog", "dog"]);
  });

  await t.step("bbox kept as is; every polygon part kept; RLE skipped with a problem", () => {
    const [person, dog1, dog2] = coco.images[0].annotations;
    assert.deepEqual(person, {
      label: "person",
      bbox: [10.5, 20.25, 30, 60],
      sourceRef: "coco:100",
    });
    // Two parts: one annotation each, bbox = the part's own envelope (bbox and polygon agree).
    assert.deepEqual(dog1, {
      label: "dog",
      bbox: [100, 100, 50, 40],
      polygon: [[100, 100], [150, 100], [150, 140], [100, 140]],
      sourceRef: "coco:101/part1",
    });
    assert.deepEqual(dog2, {
      label: "dog",
      bbox: [120, 120, 1, 1],
      polygon: [[120, 120], [121, 120], [121, 121]],
      sourceRef: "coco:101/part2",
    });
    const probs = coco.images[0].problems.map((p) => [p.path, p.problem]);
    assert.deepEqual(probs, [
      ["$.annotations[1].segmentation", "2 polygon parts: imported as one annotation each"],
      ["$.annotations[2].segmentation", "RLE segmentation is not supported: annotation skipped"],
    ]);
    const withBbox = parseCoco(Deno.readTextFileSync(FIXTURE), { rle: "bbox" });
    assert.deepEqual(withBbox.images[0].annotations.map((a) => a.label), [
      "person",
      "dog",
      "dog",
      "car",
    ]);
    const largest = parseCoco(Deno.readTextFileSync(FIXTURE), { multipart: "largest" });
    assert.deepEqual(largest.images[0].annotations[1], { ...dog1, sourceRef: "coco:101" });
  });

  await t.step(
    "crowd skipped by default; unknown category and image reported; bbox from polygon",
    () => {
      const crowd = coco.images[2];
      assert.deepEqual(crowd.annotations.map((a) => [a.label, a.bbox]), [["car", [5, 5, 20, 10]], [
        "dog",
        [10, 10, 50, 40],
      ]]);
      assert.deepEqual(crowd.problems.map((p) => p.problem), [
        "crowd region skipped",
        "annotation skipped: no category with id 2",
      ]);
      assert.deepEqual(coco.problems, [{
        path: "$.annotations[6].image_id",
        problem: "annotation skipped: no image with id 99",
      }]);
      const keep = parseCoco(Deno.readTextFileSync(FIXTURE), { crowd: "keep", rle: "bbox" });
      assert.equal(keep.images[2].annotations[0].bbox[2], 300);
    },
  );

  await t.step("broken JSON or a document without images throws a named error", () => {
    assert.throws(
      () => parseCoco("{", { file: "x.json" }),
      (e: unknown) => e instanceof AnnotationFormatError && e.path === "$",
    );
    assert.throws(
      () => parseCoco({ annotations: [] }, { file: "y.json" }),
      (e: unknown) =>
        e instanceof AnnotationFormatError && e.path === "$.images" &&
        e.code === "bad_annotation_file",
    );
  });
});

Deno.test("COCO export", async (t) => {
  const images = [
    { id: "img_a", fileName: "a.jpg", width: 640, height: 480 },
    { id: "img_b", fileName: "b.jpg", width: 100, height: 100 },
  ];
  const anns: Record<string, AnnotationInput[]> = {
    img_a: [
      { label: "dog", bbox: [10, 10, 20, 30] },
      { label: "cat", bbox: [0, 0, 10, 10], polygon: [[0, 0], [10, 0], [0, 10]] },
      { label: "zebra", bbox: [1, 1, 1, 1] },
    ],
  };

  await t.step("stable category ids from a map; unknown labels appended in name order", () => {
    const { coco, categoryIds, imageIds } = toCoco({
      images,
      annotationsByImage: anns,
      labels: new Map([["cat", 4], ["dog", 7]]),
      dateCreated: "2024-01-01T00:00:00Z",
    });
    assert.deepEqual(coco.categories, [
      { id: 4, name: "cat", supercategory: "" },
      { id: 7, name: "dog", supercategory: "" },
      { id: 8, name: "zebra", supercategory: "" },
    ]);
    assert.deepEqual([...categoryIds], [["cat", 4], ["dog", 7], ["zebra", 8]]);
    assert.deepEqual([...imageIds], [["img_a", 1], ["img_b", 2]]);
    assert.deepEqual(coco.images[1], {
      id: 2,
      file_name: "b.jpg",
      width: 100,
      height: 100,
      sluice_image_id: "img_b",
    });
    // area: shoelace for polygons, w×h otherwise; iscrowd always 0.
    assert.deepEqual(
      coco.annotations.map((a) => [a.id, a.image_id, a.category_id, a.area, a.iscrowd]),
      [
        [1, 1, 7, 600, 0],
        [2, 1, 4, 50, 0],
        [3, 1, 8, 1, 0],
      ],
    );
    assert.deepEqual(coco.annotations[1].segmentation, [[0, 0, 10, 0, 0, 10]]);
    assert.deepEqual(coco.annotations[0].segmentation, []);
  });

  await t.step("a label list gives ids 1..n in list order", () => {
    const { categoryIds } = toCoco({
      images,
      annotationsByImage: anns,
      labels: ["zebra", "dog", "cat"],
    });
    assert.deepEqual([...categoryIds], [["zebra", 1], ["dog", 2], ["cat", 3]]);
  });

  await t.step("results export and its refusal of unknown images and labels", () => {
    const ids = toCoco({ images, annotationsByImage: anns, labels: ["cat", "dog", "zebra"] });
    const results = toCocoResults(
      [{ imageId: "img_b", boxes: [{ label: "dog", bbox: [1, 2, 3, 4], score: 0.75 }] }],
      ids,
    );
    assert.deepEqual(results, [{ image_id: 2, category_id: 2, bbox: [1, 2, 3, 4], score: 0.75 }]);
    assert.throws(
      () => toCocoResults([{ imageId: "img_zz", boxes: [] }], ids),
      (e: unknown) => e instanceof SluiceError && e.code === "unknown_image",
    );
    assert.throws(
      () =>
        toCocoResults([{
          imageId: "img_a",
          boxes: [{ label: "emu", bbox: [0, 0, 1, 1], score: 1 }],
        }], ids),
      (e: unknown) =>
        e instanceof SluiceError && e.code === "unknown_label" && /"emu"/.test(e.message),
    );
  });
});

Deno.test("round trips between Label Studio and COCO", async (t) => {
  await t.step("LS → internal → COCO → internal → LS preserves boxes (1e-6 px) and labels", () => {
    const ls1 = parseLabelStudioExport(Deno.readTextFileSync(LS_FIXTURE));
    const images = ls1.tasks.map((task) => ({
      id: `img_${task.taskId}`,
      fileName: task.imageRef.fileName,
      width: task.width ?? 1,
      height: task.height ?? 1,
    }));
    const byImage = new Map(ls1.tasks.map((task) => [`img_${task.taskId}`, task.annotations]));
    const { coco } = toCoco({ images, annotationsByImage: byImage });
    const back = parseCoco(JSON.stringify(coco));
    assert.deepEqual(back.problems, []);
    const byImage2 = new Map(
      back.images.map((im) => [im.imageRef.sluiceImageId ?? "", im.annotations]),
    );
    const lsTasks = toLabelStudioTasks(
      images.map((im) => ({ id: im.id, url: im.fileName, width: im.width, height: im.height })),
      byImage2,
    );
    const ls2 = parseLabelStudioExport(JSON.parse(JSON.stringify(lsTasks)));
    assert.equal(ls2.tasks.length, ls1.tasks.length);
    ls1.tasks.forEach((task, i) => {
      const again = ls2.tasks[i];
      assert.equal(again.imageRef.sluiceImageId, `img_${task.taskId}`);
      assert.deepEqual(again.annotations.map((a) => a.label), task.annotations.map((a) => a.label));
      assertBoxesNear(
        again.annotations.map((a) => a.bbox),
        task.annotations.map((a) => a.bbox),
        1e-6,
        `task ${task.taskId}`,
      );
    });
    // Something non-trivial went through: a polygon and a rotated rectangle.
    assert.ok(ls1.tasks.some((task) => task.annotations.some((a) => a.polygon && !a.rotation)));
    assert.ok(ls1.tasks.some((task) => task.annotations.some((a) => a.rotation)));
  });

  await t.step(
    "COCO → internal → LS → internal → COCO preserves boxes (1e-6 px) and category ids",
    () => {
      const c1 = parseCoco(Deno.readTextFileSync(FIXTURE));
      const images = c1.images.map((im) => ({
        id: `coco_${im.cocoId}`,
        url: im.fileName,
        width: im.width,
        height: im.height,
      }));
      const byImage = new Map(c1.images.map((im) => [`coco_${im.cocoId}`, im.annotations]));
      const ls = parseLabelStudioExport(JSON.stringify(toLabelStudioTasks(images, byImage)));
      assert.deepEqual(ls.failures, []);
      const labels = new Map(c1.categories.map((c) => [c.name, c.id]));
      const { coco: c2 } = toCoco({
        images: ls.tasks.map((task) => ({
          id: task.imageRef.sluiceImageId ?? "",
          fileName: task.imageRef.url,
          width: images[task.index].width,
          height: images[task.index].height,
        })),
        annotationsByImage: new Map(
          ls.tasks.map((task) => [task.imageRef.sluiceImageId ?? "", task.annotations]),
        ),
        labels,
      });
      const src = JSON.parse(Deno.readTextFileSync(FIXTURE));
      const kept = c1.images.flatMap((im) =>
        im.annotations.map((a) =>
          src.annotations.find((x: { id: number }) =>
            `coco:${x.id}` === a.sourceRef?.replace(/\/part\d+$/, "")
          )
        )
      );
      assert.deepEqual(
        c2.annotations.map((a) => a.category_id),
        kept.map((a: { category_id: number }) => a.category_id),
      );
      assertBoxesNear(
        c2.annotations.map((a) => a.bbox),
        c1.images.flatMap((im) => im.annotations.map((a) => a.bbox)),
        1e-6,
        "coco",
      );
      assert.deepEqual(c2.images.map((i) => i.file_name), c1.images.map((i) => i.fileName));
      assert.deepEqual(
        c2.categories.map((c) => [c.id, c.name]),
        c1.categories.map((c) => [c.id, c.name]),
      );
    },
  );
});

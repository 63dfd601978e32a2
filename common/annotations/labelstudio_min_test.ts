// Label Studio's JSON-MIN export reads as the same tasks as the full JSON export of the same
// project. The JSON-MIN below is written as label-studio-sdk's `Converter.convert_to_json_min`
// writes it: one flat record per submitted annotation (newest first), the task's data at the top,
// each control tag's regions as their `value` objects plus `original_width`/`original_height`,
// cancelled annotations left out, an unannotated task as one record with `annotation_id: null`.
import assert from "node:assert/strict";
import { parseLabelStudioExport } from "./labelstudio.ts";

const rect = (x: number, y: number, w: number, h: number, rotation = 0) => ({
  x,
  y,
  width: w,
  height: h,
  rotation,
});
const size = { original_width: 800, original_height: 600 };
const poly = [[10, 10], [40, 12], [30, 50]];

/** The full JSON export. */
const FULL = [
  {
    id: 201,
    data: { image: "s3://raw/a/one.jpg" },
    annotations: [
      {
        id: 1,
        completed_by: 5,
        created_at: "2024-01-01T10:00:00.000000Z",
        updated_at: "2024-01-01T10:00:00.000000Z",
        was_cancelled: false,
        result: [{
          id: "r1",
          from_name: "label",
          to_name: "image",
          type: "rectanglelabels",
          ...size,
          image_rotation: 0,
          value: { ...rect(5, 5, 20, 20), rectanglelabels: ["cat"] },
        }],
      },
      {
        id: 2,
        completed_by: 5,
        created_at: "2024-01-03T10:00:00.000000Z",
        updated_at: "2024-01-03T10:00:00.000000Z",
        was_cancelled: false,
        result: [
          {
            id: "r2",
            from_name: "label",
            to_name: "image",
            type: "rectanglelabels",
            ...size,
            image_rotation: 0,
            value: { ...rect(25, 10, 25, 20, 30), rectanglelabels: ["dog"] },
          },
          {
            id: "r3",
            from_name: "poly",
            to_name: "image",
            type: "polygonlabels",
            ...size,
            image_rotation: 0,
            value: { points: poly, closed: true, polygonlabels: ["cat"] },
          },
        ],
      },
    ],
  },
  {
    id: 202,
    data: { image: "s3://raw/a/empty.jpg" },
    annotations: [{ id: 3, completed_by: 6, created_at: "2024-01-02T00:00:00Z", result: [] }],
  },
  { id: 203, data: { image: "s3://raw/a/nobody.jpg" }, annotations: [] },
  {
    id: 204,
    data: { image: "s3://raw/a/bird.jpg" },
    annotations: [
      { id: 4, completed_by: 6, was_cancelled: true, result: [] },
      {
        id: 5,
        completed_by: 6,
        created_at: "2024-01-04T00:00:00Z",
        updated_at: "2024-01-04T00:00:00Z",
        result: [
          // A Rectangle tag and a Labels tag: two results with one id.
          {
            id: "p1",
            from_name: "box",
            to_name: "image",
            type: "rectangle",
            ...size,
            value: rect(50, 50, 10, 10),
          },
          {
            id: "p1",
            from_name: "lbl",
            to_name: "image",
            type: "labels",
            ...size,
            value: { ...rect(50, 50, 10, 10), labels: ["bird"] },
          },
        ],
      },
    ],
  },
  {
    id: 205,
    data: { image: "https://example.com/x/five.jpg", sluice_image_id: "img_5", captured: "x" },
    annotations: [{
      id: 6,
      completed_by: { id: 7, email: "ann@example.com" },
      created_at: "2024-01-05T00:00:00Z",
      result: [{
        id: "q",
        from_name: "label",
        to_name: "image",
        type: "rectanglelabels",
        ...size,
        value: { ...rect(0, 0, 100, 100), rectanglelabels: ["cat"] },
      }],
    }],
  },
];

/** The same project exported as JSON-MIN. */
const MIN = [
  {
    image: "s3://raw/a/one.jpg",
    id: 201,
    label: [{ ...rect(25, 10, 25, 20, 30), rectanglelabels: ["dog"], ...size }],
    poly: [{ points: poly, closed: true, polygonlabels: ["cat"], ...size }],
    annotator: 5,
    annotation_id: 2,
    created_at: "2024-01-03T10:00:00.000000Z",
    updated_at: "2024-01-03T10:00:00.000000Z",
    lead_time: 12.5,
  },
  {
    image: "s3://raw/a/one.jpg",
    id: 201,
    label: [{ ...rect(5, 5, 20, 20), rectanglelabels: ["cat"], ...size }],
    annotator: 5,
    annotation_id: 1,
    created_at: "2024-01-01T10:00:00.000000Z",
    updated_at: "2024-01-01T10:00:00.000000Z",
    lead_time: 3.1,
  },
  {
    image: "s3://raw/a/empty.jpg",
    id: 202,
    annotator: 6,
    annotation_id: 3,
    created_at: "2024-01-02T00:00:00Z",
    updated_at: null,
    lead_time: null,
  },
  {
    image: "s3://raw/a/nobody.jpg",
    id: 203,
    annotator: "",
    annotation_id: null,
    created_at: null,
    updated_at: null,
    lead_time: null,
  },
  {
    image: "s3://raw/a/bird.jpg",
    id: 204,
    box: [{ ...rect(50, 50, 10, 10), ...size }],
    lbl: [{ ...rect(50, 50, 10, 10), labels: ["bird"], ...size }],
    annotator: 6,
    annotation_id: 5,
    created_at: "2024-01-04T00:00:00Z",
    updated_at: "2024-01-04T00:00:00Z",
    lead_time: 1,
  },
  {
    image: "https://example.com/x/five.jpg",
    sluice_image_id: "img_5",
    captured: "x",
    id: 205,
    label: [{ ...rect(0, 0, 100, 100), rectanglelabels: ["cat"], ...size }],
    annotator: "ann@example.com",
    annotation_id: 6,
    created_at: "2024-01-05T00:00:00Z",
    updated_at: null,
    lead_time: 2,
  },
];

const byShape = (a: { label: string; bbox: number[] }, b: { label: string; bbox: number[] }) =>
  JSON.stringify([a.label, a.bbox]).localeCompare(JSON.stringify([b.label, b.bbox]));

/** What an import keeps of a task (shapes without their export-specific source refs). */
function kept(doc: unknown, choose: "newest" | "oldest" | "merge") {
  const { tasks, failures } = parseLabelStudioExport(doc, { choose });
  assert.deepEqual(failures, []);
  return tasks.map((t) => ({
    taskId: t.taskId,
    imageRef: t.imageRef,
    width: t.width,
    height: t.height,
    labelled: t.labelled,
    annotationId: t.annotationId,
    annotations: t.annotations.map(({ sourceRef: _, ...a }) => a),
  }));
}

Deno.test("Label Studio JSON-MIN: the same tasks, shapes, negatives and unlabelled tasks as the full JSON", async (t) => {
  for (const choose of ["newest", "oldest", "merge"] as const) {
    await t.step(`choose ${choose}`, () => {
      const full = kept(FULL, choose), min = kept(MIN, choose);
      if (choose === "merge") {
        // Merged shapes come in file order, and JSON-MIN lists a task's newest annotation first.
        const order = (x: typeof full) =>
          x.map((t) => ({ ...t, annotations: t.annotations.toSorted(byShape) }));
        assert.deepEqual(order(min), order(full));
      } else assert.deepEqual(min, full);
    });
  }
  await t.step("what was read", () => {
    const byId = new Map(kept(MIN, "newest").map((x) => [x.taskId, x]));
    // Newest of task 201: a rotated rectangle (4 corners) and a polygon, in pixels.
    const one = byId.get("201")!;
    assert.deepEqual(one.annotations.map((a) => a.label), ["dog", "cat"]);
    assert.equal(one.annotations[0].rotation, 30);
    assert.deepEqual(one.annotations[1].polygon, [[80, 60], [320, 72], [240, 300]]);
    assert.equal(one.annotationId, "2");
    // Reviewed empty is labelled with no shapes; nobody's task is not labelled.
    assert.deepEqual([byId.get("202")!.labelled, byId.get("202")!.annotations], [true, []]);
    assert.equal(byId.get("203")!.labelled, false);
    // Rectangle + Labels pair: one labelled box, not two.
    assert.deepEqual(byId.get("204")!.annotations, [{ label: "bird", bbox: [400, 300, 80, 60] }]);
    // The Sluice id in the task data matches exactly.
    assert.equal(byId.get("205")!.imageRef.sluiceImageId, "img_5");
  });
  await t.step("a region that is not a shape is reported, not imported", () => {
    const odd = [{ ...MIN[4], lbl: [{ text: ["a note"], ...size }] }];
    const { tasks, failures } = parseLabelStudioExport(odd);
    assert.deepEqual(failures, []);
    assert.deepEqual(tasks[0].annotations, []);
    assert.ok(
      tasks[0].problems.some((p) => /not a box or polygon/.test(p.problem)),
      JSON.stringify(tasks[0].problems),
    );
  });
  await t.step("a record that is neither shape is a failure that says what was expected", () => {
    const { tasks, failures } = parseLabelStudioExport([{ img: "a.jpg", id: 1 }, MIN[2]]);
    assert.equal(tasks.length, 1);
    assert.equal(failures.length, 1);
    assert.match(failures[0].message, /"data" \(JSON export\) or a record with "image"/);
    assert.match(failures[0].message, /\["img","id"\]/);
  });
});

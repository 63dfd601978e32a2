import assert from "node:assert/strict";
import { join } from "node:path";
import type { CocoDataset } from "../../common/annotations/coco.ts";
import type { LabelStudioTask } from "../../common/annotations/labelstudio.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { runIngestOnce } from "./run_once.ts";
import { createIngestStage } from "./stage.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();

function near(actual: number[], expected: number[], what: string) {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, i) => {
    assert.ok(Math.abs(v - expected[i]) < 1e-6, `${what}: expected ${expected}, found ${actual}`);
  });
}

const rect = (
  id: string,
  label: string,
  x: number,
  y: number,
  w: number,
  h: number,
  size: [number, number],
  rotation = 0,
) => ({
  id,
  type: "rectanglelabels",
  from_name: "label",
  to_name: "image",
  original_width: size[0],
  original_height: size[1],
  image_rotation: 0,
  value: { x, y, width: w, height: h, rotation, rectanglelabels: [label] },
});

Deno.test({
  name: "Label Studio → manifest → COCO round trip, with matching, box policy and unmatched tasks",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const env = await openTestEnv(server);
    const stage = createIngestStage(env.config, { ...env });
    try {
      await env.put("a.jpg", await makeImage({ width: 100, height: 50, rgb: [200, 0, 0] }));
      await env.put("dir/b.jpg", await makeImage({ width: 80, height: 80, rgb: [0, 200, 0] }));
      await env.put("c.png", await makeImage({ width: 60, height: 40, format: "png" }));
      assert.equal((await stage.runOnce({ progress: false })).worker.done, 3);

      const tasks = [
        {
          id: 101,
          data: { image: "/data/upload/1/3f2a9b1c-a.jpg" },
          annotations: [
            {
              id: 5,
              created_at: "2026-01-01T00:00:00Z",
              result: [rect("o1", "old", 0, 0, 10, 10, [100, 50])],
            },
            {
              id: 6,
              created_at: "2026-02-01T00:00:00Z",
              result: [
                rect("r1", "cat", 10, 20, 30, 40, [100, 50]),
                rect("r2", "dog", 80, 50, 40, 20, [100, 50]),
                {
                  id: "r3",
                  type: "polygonlabels",
                  from_name: "poly",
                  to_name: "image",
                  original_width: 100,
                  original_height: 50,
                  value: { points: [[10, 10], [20, 10], [20, 30]], polygonlabels: ["bird"] },
                },
              ],
            },
          ],
        },
        {
          id: 102,
          data: { image: `s3://${env.rawBucket}/dir/b.jpg` },
          annotations: [{ id: 7, result: [rect("r4", "cat", 50, 10, 20, 10, [80, 80], 90)] }],
        },
        { id: 103, data: { image: "https://example.com/unknown.jpg" }, annotations: [] },
      ];
      const file = join(env.dir, "ls-export.json");
      await Deno.writeTextFile(file, JSON.stringify(tasks));

      await t.step("import matches by upload file name and by S3 URI", async () => {
        const s = await stage.importAnnotations(file, "labelstudio");
        assert.equal(s.status, "imported");
        assert.equal(s.records, 3);
        assert.equal(s.matched, 2);
        assert.deepEqual(s.unmatched, ["https://example.com/unknown.jpg"]);
        assert.equal(s.annotations, 4);
        assert.deepEqual(s.boxes, { clamped: 1, kept: 3 });
        assert.match(
          await env.metrics.metrics(),
          /sluice_ingest_annotation_boxes_total\{outcome="clamped"\} 1/,
        );
      });

      await t.step("re-importing is idempotent", async () => {
        await stage.importAnnotations(file, "auto");
        const ids = (await env.manifest.listImages({ status: "ingested" })).map((i) => i.id);
        assert.equal((await env.manifest.listAnnotations(ids)).length, 4);
      });

      await t.step(
        "the COCO export carries pixel boxes, polygons and stable categories",
        async () => {
          const { document, images, annotations } = await stage.exportAnnotations({
            format: "coco",
          });
          const coco = document as CocoDataset;
          assert.equal(images, 3);
          assert.equal(annotations, 4);
          assert.deepEqual(coco.images.map((i) => i.file_name).sort(), [
            "a.jpg",
            "c.png",
            "dir/b.jpg",
          ]);
          const labels = new Map((await env.manifest.listLabels()).map((l) => [l.name, l.id]));
          const cat = (id: number) => coco.categories.find((c) => c.id === id)!.name;
          for (const c of coco.categories) assert.equal(labels.get(c.name), c.id);
          const imgId = (name: string) => coco.images.find((i) => i.file_name === name)!.id;
          const of = (name: string) =>
            coco.annotations.filter((a) => a.image_id === imgId(name))
              .map((a) => ({ label: cat(a.category_id), bbox: a.bbox, seg: a.segmentation }));
          const a = of("a.jpg");
          assert.deepEqual(a.map((x) => x.label), ["cat", "dog", "bird"]);
          near(a[0].bbox, [10, 10, 30, 20], "cat");
          near(a[1].bbox, [80, 25, 20, 10], "dog, clamped at the right edge");
          near(a[2].bbox, [10, 5, 10, 10], "bird polygon envelope");
          near(a[2].seg[0], [10, 5, 20, 5, 20, 15], "bird polygon");
          const b = of("dir/b.jpg");
          assert.equal(b.length, 1);
          // 16 × 8 px at (40, 8), turned 90° clockwise about that corner.
          near(b[0].bbox, [32, 8, 8, 16], "rotated rectangle envelope");
          assert.equal(b[0].seg[0].length, 8, "the rotated rectangle keeps its four corners");
          assert.deepEqual(of("c.png"), []);
        },
      );
    } finally {
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "COCO → manifest → Label Studio round trip (and back into a second manifest)",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const settings = { annotations: [{ uri: "labels/coco.json", format: "coco" }] };
    const env = await openTestEnv(server, { settings });
    const second = await openTestEnv(server, { rawBucket: env.rawBucket });
    const stage = createIngestStage(env.config, { ...env });
    const stage2 = createIngestStage(second.config, { ...second });
    try {
      await env.put("x.jpg", await makeImage({ width: 100, height: 50, rgb: [10, 10, 10] }));
      await env.put("y/z.png", await makeImage({ width: 50, height: 50, format: "png" }));
      const coco = {
        images: [
          { id: 7, file_name: "x.jpg", width: 100, height: 50 },
          { id: 9, file_name: "z.png", width: 50, height: 50 },
          { id: 10, file_name: "missing.jpg", width: 10, height: 10 },
        ],
        categories: [{ id: 3, name: "car" }, { id: 5, name: "person" }],
        annotations: [
          { id: 1, image_id: 7, category_id: 3, bbox: [10, 10, 20, 10], iscrowd: 0 },
          {
            id: 2,
            image_id: 9,
            category_id: 5,
            bbox: [5, 5, 10, 20],
            segmentation: [[5, 5, 15, 5, 15, 25, 5, 25]],
            iscrowd: 0,
          },
          { id: 3, image_id: 7, category_id: 5, bbox: [90, 40, 20, 20], iscrowd: 0 },
        ],
      };
      await env.put("labels/coco.json", new TextEncoder().encode(JSON.stringify(coco)));

      let tasks: LabelStudioTask[] = [];
      await t.step("once mode imports the configured COCO file", async () => {
        const s = await runIngestOnce(env.config, { ...env, progress: false });
        assert.equal(s.worker.done, 2);
        const [imp] = s.annotations;
        assert.equal(imp.format, "coco");
        assert.equal(imp.matched, 2);
        assert.deepEqual(imp.unmatched, ["missing.jpg"]);
        assert.deepEqual(imp.boxes, { kept: 2, clamped: 1 });
        assert.deepEqual(
          (await env.manifest.listLabels()).map((l) => l.name),
          ["car", "person"],
        );
      });

      await t.step("poll mode re-imports only changed or incompletely matched files", async () => {
        // The last import left "missing.jpg" unmatched: try again, it may have arrived.
        assert.equal((await stage.importConfiguredAnnotations({ onlyIfNeeded: true })).length, 1);
        const fixed = { ...coco, images: coco.images.filter((i) => i.file_name !== "missing.jpg") };
        await env.put("labels/coco.json", new TextEncoder().encode(JSON.stringify(fixed)));
        const changed = await stage.importConfiguredAnnotations({ onlyIfNeeded: true });
        assert.deepEqual(changed.map((x) => [x.matched, x.unmatched.length]), [[2, 0]]);
        assert.deepEqual(await stage.importConfiguredAnnotations({ onlyIfNeeded: true }), []);
      });

      await t.step("the Label Studio export has percent boxes and Sluice ids", async () => {
        const out = await stage.exportAnnotations({ format: "labelstudio" });
        tasks = out.document as LabelStudioTask[];
        assert.equal(tasks.length, 2);
        const byKey = new Map(
          (await env.manifest.listImages({ status: "ingested" })).map((i) => [i.id, i.sourceKey]),
        );
        const task = (key: string) =>
          tasks.find((tk) => byKey.get(tk.data.sluice_image_id) === key)!;
        const x = task("x.jpg");
        assert.equal(x.data.image, env.source.uriFor("x.jpg"));
        const xr = x.annotations![0].result;
        assert.deepEqual(xr.map((r) => r.value.rectanglelabels![0]), ["car", "person"]);
        const v = (
          i: number,
        ) => [xr[i].value.x!, xr[i].value.y!, xr[i].value.width!, xr[i].value.height!];
        near(v(0), [10, 20, 20, 20], "car in percent");
        near(v(1), [90, 80, 10, 20], "person, clamped, in percent");
        // Polygons stay polygons (what the source held)...
        const zr = task("y/z.png").annotations![0].result;
        assert.equal(zr[0].type, "polygonlabels");
        const pts = zr[0].value.points!;
        const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
        near(
          [
            Math.min(...xs),
            Math.min(...ys),
            Math.max(...xs) - Math.min(...xs),
            Math.max(...ys) - Math.min(...ys),
          ],
          [10, 10, 20, 40],
          "polygon exported as a polygon",
        );
        // ...unless the project only has rectangles.
        const boxed =
          (await stage.exportAnnotations({ format: "labelstudio", polygons: "rectangle" }))
            .document as LabelStudioTask[];
        const br = boxed.find((tk) => byKey.get(tk.data.sluice_image_id) === "y/z.png")!
          .annotations![0].result[0];
        near(
          [br.value.x!, br.value.y!, br.value.width!, br.value.height!],
          [10, 10, 20, 40],
          "box",
        );
      });

      await t.step("importing that export elsewhere gives the same boxes back", async () => {
        await runIngestOnce(second.config, { ...second, progress: false });
        const file = join(second.dir, "tasks.json");
        await Deno.writeTextFile(file, JSON.stringify(tasks));
        const s = await stage2.importAnnotations(file);
        assert.equal(s.format, "labelstudio");
        assert.equal(s.matched, 2);
        assert.deepEqual(s.unmatched, []);
        const a = (await stage.exportAnnotations({ format: "coco", dateCreated: "t" }))
          .document as CocoDataset;
        const b = (await stage2.exportAnnotations({ format: "coco", dateCreated: "t" }))
          .document as CocoDataset;
        assert.deepEqual(b.images, a.images);
        // Category ids are each manifest's own; the labels behind them must agree.
        const named = (d: CocoDataset) => {
          const names = new Map(d.categories.map((c) => [c.id, c.name]));
          return d.annotations.map((x) => ({
            image: x.image_id,
            label: names.get(x.category_id),
            bbox: x.bbox,
          }))
            .sort((p, q) => p.image - q.image || p.bbox[0] - q.bbox[0]);
        };
        const na = named(a), nb = named(b);
        assert.equal(nb.length, 3);
        assert.equal(nb.length, na.length);
        nb.forEach((x, i) => {
          assert.equal(x.image, na[i].image);
          assert.equal(x.label, na[i].label);
          near(x.bbox, na[i].bbox, `annotation ${i}`);
        });
      });
    } finally {
      await stage2.close();
      await stage.close();
      await second.close();
      await env.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "box policy drop and label allowlist are applied and counted; broken files fail by name",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const env = await openTestEnv(server, {
      settings: { boxOutOfBounds: "drop", labels: ["car"] },
    });
    const stage = createIngestStage(env.config, { ...env });
    try {
      await env.put("x.jpg", await makeImage({ width: 100, height: 50 }));
      await stage.runOnce({ progress: false });
      const coco = {
        images: [{ id: 1, file_name: "x.jpg", width: 100, height: 50 }],
        categories: [{ id: 1, name: "car" }, { id: 2, name: "person" }],
        annotations: [
          { id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 20, 10] },
          { id: 2, image_id: 1, category_id: 1, bbox: [90, 40, 20, 20] },
          { id: 3, image_id: 1, category_id: 2, bbox: [1, 1, 5, 5] },
        ],
      };
      const file = join(env.dir, "coco.json");
      await Deno.writeTextFile(file, JSON.stringify(coco));
      const s = await stage.importAnnotations(file);
      assert.deepEqual(s.boxes, { dropped: 2, kept: 1 });
      assert.equal(s.annotations, 1);
      assert.match(
        await env.metrics.metrics(),
        /sluice_ingest_annotation_boxes_total\{outcome="dropped"\} 2/,
      );

      await Deno.writeTextFile(file, "{ this is not json");
      const broken = await stage.importAnnotations(file);
      assert.equal(broken.status, "failed");
      assert.equal(broken.reason, "bad_annotation_file");
      const missing = await stage.importAnnotations("labels/nope.json");
      assert.equal(missing.status, "failed");
      assert.equal(missing.reason, "annotation_unreadable");
      const wrongShape = join(env.dir, "shape.json");
      await Deno.writeTextFile(wrongShape, JSON.stringify({ hello: 1 }));
      const shape = await stage.importAnnotations(wrongShape);
      assert.equal(shape.reason, "bad_annotation_file");
      // The good import is untouched by the failed ones.
      const [img] = await env.manifest.listImages({ status: "ingested" });
      assert.equal((await env.manifest.listAnnotations([img.id])).length, 1);
    } finally {
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "which Label Studio annotation wins is configurable; skipped shapes are logged and counted",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const oldest = await openTestEnv(server, { settings: { labelStudioChoose: "oldest" } });
    const newest = await openTestEnv(server, { rawBucket: oldest.rawBucket });
    const stages = [oldest, newest].map((env) => createIngestStage(env.config, { ...env }));
    try {
      await oldest.put("p.jpg", await makeImage({ width: 100, height: 100 }));
      for (const s of stages) await s.runOnce({ progress: false });
      const tasks = [{
        id: 1,
        data: { image: "p.jpg" },
        annotations: [
          {
            id: 1,
            created_at: "2026-01-01T00:00:00Z",
            result: [rect("a", "first", 0, 0, 10, 10, [100, 100])],
          },
          {
            id: 2,
            created_at: "2026-03-01T00:00:00Z",
            result: [rect("b", "latest", 0, 0, 10, 10, [100, 100])],
          },
          {
            id: 3,
            created_at: "2026-04-01T00:00:00Z",
            was_cancelled: true,
            result: [rect("c", "cancelled", 0, 0, 10, 10, [100, 100])],
          },
        ],
      }];
      const file = join(oldest.dir, "ls.json");
      await Deno.writeTextFile(file, JSON.stringify(tasks));

      await t.step(
        "ingest.labelStudioChoose picks the annotation; the default is newest",
        async () => {
          const labels = [];
          for (const [i, env] of [oldest, newest].entries()) {
            const s = await stages[i].importAnnotations(file);
            assert.equal(s.status, "imported");
            assert.equal(s.problems, 1, "the cancelled annotation is reported");
            assert.match(s.problemExamples[0].path, /annotations\[2\]\.was_cancelled/);
            const [img] = await env.manifest.listImages({ status: "ingested" });
            labels.push((await env.manifest.listAnnotations([img.id])).map((a) => a.label));
          }
          assert.deepEqual(labels, [["first"], ["latest"]]);
        },
      );

      await t.step(
        "unknown categories, null coordinates, negative and short boxes: skipped, counted, logged",
        async () => {
          const coco = {
            images: [{ id: 1, file_name: "p.jpg", width: 100, height: 100 }],
            categories: [{ id: 1, name: "car" }],
            annotations: [
              { id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 20, 20] },
              { id: 2, image_id: 1, category_id: 42, bbox: [10, 10, 20, 20] },
              { id: 3, image_id: 1, category_id: 1, bbox: [10, 10, -5, 20] },
              { id: 4, image_id: 1, category_id: 1, bbox: [10, null, 5, 20] },
              { id: 5, image_id: 1, category_id: 1, bbox: [10, 10] },
              { id: 6, image_id: 99, category_id: 1, bbox: [10, 10, 5, 5] },
            ],
          };
          const cocoFile = join(newest.dir, "coco.json");
          await Deno.writeTextFile(cocoFile, JSON.stringify(coco));
          const before = newest.lines.length;
          const s = await stages[1].importAnnotations(cocoFile);
          assert.equal(s.status, "imported");
          assert.equal(s.annotations, 1);
          // Unknown category 42, the null coordinate, the 2-number bbox, the unknown image 99.
          assert.equal(s.problems, 4);
          const paths = s.problemExamples.map((p) => p.path).sort();
          assert.deepEqual(paths, [
            "$.annotations[1].category_id",
            "$.annotations[3].bbox[1]",
            "$.annotations[4].bbox",
            "$.annotations[5].image_id",
          ]);
          // The negative width reaches the box policy, which drops it.
          assert.deepEqual(s.boxes, { kept: 1, dropped: 1 });
          const text = await newest.metrics.metrics();
          assert.match(text, /sluice_ingest_annotation_problems_total 5\n/);
          assert.match(text, /sluice_ingest_annotation_boxes_total\{outcome="dropped"\} 1/);
          const warned = newest.lines.slice(before).map((l) => JSON.parse(l))
            .find((l) => l.msg?.includes("skipped or changed"));
          assert.ok(warned, "expected a warning naming the skipped shapes");
          assert.equal(warned.problems, 4);
          assert.ok(
            warned.examples.some((e: string) => /category_id.*no category with id 42/.test(e)),
          );
        },
      );
    } finally {
      for (const s of stages) await s.close();
      await newest.close();
      await oldest.close();
      await server.stop();
    }
  },
});

import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeImage } from "./_test_env.ts";
import { main } from "./main.ts";

async function run(argv: string[], cwd: string) {
  let out = "";
  let err = "";
  const code = await main(argv, {
    env: {},
    cwd,
    print: (t) => out += t,
    printError: (t) => err += t,
  });
  return { code, out, err };
}

const exists = (p: string) => stat(p).then(() => true, () => false);

const CONFIG = `<View>
  <Image name="photo" value="$img"/>
  <RectangleLabels name="boxes" toName="photo">
    <Label value="cat" category="2"/><Label value="dog"/><Label value="car"/>
  </RectangleLabels>
  <PolygonLabels name="outline" toName="photo"><Label value="cat"/></PolygonLabels>
</View>`;

Deno.test("sluice-ingest annotation commands: YOLO, VOC, Label Studio with a label config", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-formats-cli-"));
  try {
    await mkdir(join(dir, "raw"), { recursive: true });
    await mkdir(join(dir, "objects"));
    const sizes: Record<string, [number, number]> = {
      "a.jpg": [200, 100],
      "b.jpg": [120, 90],
      "c.jpg": [64, 96],
    };
    for (const [name, [width, height]] of Object.entries(sizes)) {
      await Deno.writeFile(join(dir, "raw", name), await makeImage({ width, height }));
    }
    const common = [
      "--source-url",
      join(dir, "raw"),
      "--object-store-url",
      join(dir, "objects"),
      "--manifest-url",
      `sqlite://${join(dir, "manifest.db")}`,
      "--staging-root",
      join(dir, "nvme"),
      "--staging-min-free-mb",
      "0",
      "--http-port",
      "0",
      "--log-level",
      "error",
      "--worker-idle-poll-ms",
      "20",
      "--ingest-local-files-root",
      dir,
    ];
    const once = await run(["once", ...common], dir);
    assert.equal(once.code, 0, once.err);

    const result = (type: string, value: Record<string, unknown>, w = 200, h = 100) => ({
      id: crypto.randomUUID().slice(0, 8),
      type,
      from_name: "label",
      to_name: "image",
      original_width: w,
      original_height: h,
      value,
    });
    await Deno.writeTextFile(
      join(dir, "tasks.json"),
      JSON.stringify([
        {
          data: { image: "/data/local-files/?d=raw/a.jpg" },
          annotations: [{
            result: [
              result("rectanglelabels", {
                x: 0,
                y: 0,
                width: 25,
                height: 50,
                rectanglelabels: ["dog"],
              }),
              result("rectanglelabels", {
                x: 50,
                y: 20,
                width: 20,
                height: 20,
                rotation: 30,
                rectanglelabels: ["car"],
              }),
              result("polygonlabels", {
                points: [[10, 60], [40, 60], [25, 95]],
                polygonlabels: ["cat"],
              }),
            ],
          }],
        },
        { data: { image: "/data/local-files/?d=raw/b.jpg" }, annotations: [{ result: [] }] },
        { data: { image: "/data/local-files/?d=raw/c.jpg" }, annotations: [] },
      ]),
    );
    const imp = await run([
      "import-annotations",
      "--format",
      "labelstudio",
      "tasks.json",
      ...common,
    ], dir);
    assert.equal(imp.code, 0, imp.err + imp.out);
    const s = JSON.parse(imp.out);
    assert.deepEqual([s.matched, s.annotations, s.reviewedEmpty, s.unlabelled], [3, 3, 1, 1]);

    await t.step(
      "export yolo (segment): data.yaml, labels, empty file for the negative",
      async () => {
        const r = await run(
          ["export", "--format", "yolo", "--yolo-task", "segment", "--out", "yolo", ...common],
          dir,
        );
        assert.equal(r.code, 0, r.err);
        const out = JSON.parse(r.out);
        assert.deepEqual([out.images, out.imagesWritten, out.annotationFiles, out.objects], [
          3,
          3,
          2,
          3,
        ]);
        const yaml = await readFile(join(dir, "yolo", "data.yaml"), "utf8");
        assert.match(yaml, /^path: .*\ntrain: images\/train\nval: images\/val\n/);
        // Class ids follow the manifest's label ids (labels in the order the import met them).
        assert.match(yaml, /\nnames:\n {2}0: dog\n {2}1: car\n {2}2: cat\n$/);
        assert.equal(await readFile(join(dir, "yolo/labels/train/b.txt"), "utf8"), "");
        assert.equal(
          await exists(join(dir, "yolo/labels/train/c.txt")),
          false,
          "unlabelled: no file",
        );
        const lines = (await readFile(join(dir, "yolo/labels/train/a.txt"), "utf8")).trim().split(
          "\n",
        );
        assert.equal(lines.length, 3);
        assert.deepEqual(lines.map((l) => (l.split(" ").length - 1) / 2), [4, 4, 3]);
        assert.deepEqual(
          await Deno.readFile(join(dir, "yolo/images/train/a.jpg")),
          await Deno.readFile(join(dir, "raw/a.jpg")),
        );
      },
    );

    await t.step(
      "import the YOLO directory back: exact matches, negative and unlabelled kept apart",
      async () => {
        const r = await run(
          ["import-annotations", "--format", "yolo", "--yolo-task", "segment", "yolo", ...common],
          dir,
        );
        assert.equal(r.code, 0, r.err + r.out);
        const out = JSON.parse(r.out);
        assert.equal(out.format, "yolo");
        assert.deepEqual([
          out.records,
          out.matched,
          out.annotations,
          out.reviewedEmpty,
          out.unlabelled,
        ], [
          3,
          3,
          3,
          1,
          1,
        ]);
        assert.deepEqual(out.unmatched, []);
      },
    );

    await t.step("export and import VOC", async () => {
      const r = await run([
        "export",
        "--format",
        "voc",
        "--out",
        "voc",
        "--source",
        "yolo",
        ...common,
      ], dir);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual((await readdir(join(dir, "voc", "Annotations"))).sort(), ["a.xml", "b.xml"]);
      const back = await run(["import-annotations", "--format", "voc", "voc", ...common], dir);
      assert.equal(back.code, 0, back.err);
      const out = JSON.parse(back.out);
      assert.deepEqual([out.matched, out.annotations, out.reviewedEmpty], [2, 3, 1]);
    });

    await t.step(
      "export labelstudio with a label config: its names, local-files URLs",
      async () => {
        await Deno.writeTextFile(join(dir, "config.xml"), CONFIG);
        const r = await run(
          [
            "export",
            "--format",
            "labelstudio",
            "--out",
            "-",
            "--label-config",
            "config.xml",
            "--source",
            "labelstudio",
            ...common,
          ],
          dir,
        );
        assert.equal(r.code, 0, r.err);
        const tasks = JSON.parse(r.out);
        const a = tasks.find((x: { data: { img: string } }) => x.data.img.endsWith("a.jpg"));
        assert.equal(a.data.img, "/data/local-files/?d=raw/a.jpg");
        const res = a.annotations[0].result as {
          type: string;
          from_name: string;
          to_name: string;
        }[];
        assert.deepEqual(
          res.map((x) => [x.type, x.from_name, x.to_name]).sort(),
          [["polygonlabels", "outline", "photo"], ["rectanglelabels", "boxes", "photo"], [
            "rectanglelabels",
            "boxes",
            "photo",
          ]],
        );
        const b = tasks.find((x: { data: { img: string } }) => x.data.img.endsWith("b.jpg"));
        assert.deepEqual(b.annotations, [{ result: [], ground_truth: false }]);
        const c = tasks.find((x: { data: { img: string } }) => x.data.img.endsWith("c.jpg"));
        assert.equal(c.annotations, undefined);
        // COCO ids from the config (label-studio-converter: explicit 2 for cat, the rest sorted).
        const coco = await run(
          ["export", "--format", "coco", "--out", "-", "--label-config", "config.xml", ...common],
          dir,
        );
        assert.deepEqual(
          JSON.parse(coco.out).categories.map((k: { id: number; name: string }) => [k.id, k.name]),
          [[0, "car"], [1, "dog"], [2, "cat"]],
        );
      },
    );

    await t.step(
      "a COCO image without annotations exports as reviewed, not unlabelled",
      async () => {
        await Deno.writeTextFile(
          join(dir, "coco.json"),
          JSON.stringify({
            images: [
              { id: 1, file_name: "a.jpg", width: 200, height: 100 },
              { id: 3, file_name: "c.jpg", width: 64, height: 96 },
            ],
            annotations: [{ id: 9, image_id: 1, category_id: 1, bbox: [1, 2, 30, 40] }],
            categories: [{ id: 1, name: "dog" }],
          }),
        );
        const imp = await run(
          ["import-annotations", "--format", "coco", "coco.json", ...common],
          dir,
        );
        assert.equal(imp.code, 0, imp.err + imp.out);
        assert.equal(JSON.parse(imp.out).reviewedEmpty, 1);
        const r = await run(
          ["export", "--format", "labelstudio", "--out", "-", "--source", "coco", ...common],
          dir,
        );
        const tasks = JSON.parse(r.out) as { data: { image: string }; annotations?: unknown[] }[];
        const c = tasks.find((x) => x.data.image.endsWith("c.jpg"))!;
        assert.deepEqual(c.annotations, [{ result: [], ground_truth: false }]);
        const b = tasks.find((x) => x.data.image.endsWith("b.jpg"))!;
        assert.equal(b.annotations, undefined, "b: no COCO annotations and not in the COCO file");
      },
    );

    await t.step(
      "import with a label config: aliases map to labels, unknown labels are skipped",
      async () => {
        await Deno.writeTextFile(
          join(dir, "alias.xml"),
          '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">' +
            '<Label value="cat" alias="C"/><Label value="dog"/></RectangleLabels></View>',
        );
        await Deno.writeTextFile(
          join(dir, "alias.json"),
          JSON.stringify([{
            data: { image: "/data/local-files/?d=raw/c.jpg" },
            annotations: [{
              result: [
                result(
                  "rectanglelabels",
                  { x: 0, y: 0, width: 50, height: 50, rectanglelabels: ["C"] },
                  64,
                  96,
                ),
                result(
                  "rectanglelabels",
                  { x: 10, y: 10, width: 5, height: 5, rectanglelabels: ["horse"] },
                  64,
                  96,
                ),
              ],
            }],
          }]),
        );
        const r = await run(
          [
            "import-annotations",
            "--format",
            "labelstudio",
            "--label-config",
            "alias.xml",
            "alias.json",
            ...common,
          ],
          dir,
        );
        assert.equal(r.code, 0, r.err + r.out);
        const out = JSON.parse(r.out);
        assert.equal(out.annotations, 1);
        assert.ok(
          out.problemExamples.some((p: { problem: string }) =>
            p.problem === 'label "horse" is not in the label config: skipped'
          ),
        );
        const ls = await run(
          ["export", "--format", "labelstudio", "--out", "-", "--source", "labelstudio", ...common],
          dir,
        );
        const c = (JSON.parse(ls.out) as {
          data: { image: string };
          annotations: { result: { value: { rectanglelabels: string[] } }[] }[];
        }[])
          .find((x) => x.data.image.endsWith("c.jpg"))!;
        assert.deepEqual(c.annotations[0].result.map((x) => x.value.rectanglelabels[0]), ["cat"]);
      },
    );

    await t.step("a label the config lacks fails the export with its name", async () => {
      await Deno.writeTextFile(
        join(dir, "small.xml"),
        '<View><Image name="i" value="$image"/><RectangleLabels name="r" toName="i"><Label value="dog"/></RectangleLabels></View>',
      );
      const r = await run(
        [
          "export",
          "--format",
          "labelstudio",
          "--out",
          "-",
          "--label-config",
          "small.xml",
          "--source",
          "labelstudio",
          ...common,
        ],
        dir,
      );
      assert.equal(r.code, 1);
      assert.match(r.err, /labels "car", "cat" that the config lacks/);
    });

    await t.step(
      "a label-only YOLO export (Label Studio's plain YOLO, no images): matched by file stem, " +
        "placed in the matched image's pixels",
      async () => {
        // As label-studio-sdk's convert_to_yolo writes it without images: classes.txt, notes.json,
        // an empty images/, labels/<image name without extension>.txt (uploads keep their prefix).
        const root = join(dir, "ls-yolo");
        await mkdir(join(root, "images"), { recursive: true });
        await mkdir(join(root, "labels"), { recursive: true });
        await Deno.writeTextFile(join(root, "classes.txt"), "cat\ndog\n");
        await Deno.writeTextFile(join(root, "notes.json"), '{"categories": []}');
        // a.jpg is 200×100: a dog over x 0..50, y 0..50.
        await Deno.writeTextFile(join(root, "labels", "8f3c1a2e-a.txt"), "1 0.125 0.25 0.25 0.5\n");
        await Deno.writeTextFile(join(root, "labels", "b.txt"), "");
        await Deno.writeTextFile(join(root, "labels", "zzz.txt"), "0 0.5 0.5 0.1 0.1\n");
        const r = await run(["import-annotations", "--format", "yolo", "ls-yolo", ...common], dir);
        assert.equal(r.code, 0, r.err + r.out);
        const out = JSON.parse(r.out);
        assert.deepEqual(
          [out.records, out.matched, out.annotations, out.reviewedEmpty, out.unmatched],
          [3, 2, 1, 1, ["labels/zzz.txt"]],
        );
        const coco = await run(
          ["export", "--format", "coco", "--out", "-", "--source", "yolo", ...common],
          dir,
        );
        assert.equal(coco.code, 0, coco.err);
        const doc = JSON.parse(coco.out);
        const a = doc.images.find((i: { file_name: string }) => i.file_name.endsWith("a.jpg"));
        const boxes = doc.annotations.filter((x: { image_id: number }) => x.image_id === a.id);
        assert.deepEqual(boxes.map((x: { bbox: number[] }) => x.bbox), [[0, 0, 50, 50]]);
        const dog = doc.categories.find((c: { name: string }) => c.name === "dog");
        assert.equal(boxes[0].category_id, dog.id);
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

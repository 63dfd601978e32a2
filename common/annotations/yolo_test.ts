import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { parseDataYaml } from "./_data_yaml.ts";
import { rotatedBoxAnnotation } from "./rotated_box.ts";
import { formatYoloLabels, parseYoloLabels } from "./yolo.ts";
import { labelPathFor, parseLabelOnly, readYoloDataset, writeYoloDataset } from "./yolo_dataset.ts";

const near = (a: readonly number[], b: readonly number[], tol: number, what: string) =>
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol, `${what}: ${a} vs ${b}`));

async function png(path: string, width: number, height: number, orientation?: number) {
  let img = sharp({ create: { width, height, channels: 3, background: "#888" } });
  if (orientation) img = img.jpeg().withMetadata({ orientation });
  else img = img.png();
  await writeFile(path, await img.toBuffer());
}

Deno.test("YOLO label lines as the Ultralytics docs write them", async (t) => {
  await t.step("detect: `cls cx cy w h`, normalised by width and height", () => {
    // The line format of docs.ultralytics.com/datasets/detect (class, centre, size in 0..1).
    const { annotations, problems } = parseYoloLabels(
      "0 0.481719 0.634028 0.690625 0.713278\n\n1 0.5 0.5 1 1\n",
      { width: 640, height: 480 },
      ["person", "bicycle"],
      { file: "labels/train/x.txt" },
    );
    assert.deepEqual(problems, []);
    near(annotations[0].bbox, [87.30016, 133.14672, 442, 342.37344], 1e-6, "person");
    assert.deepEqual(annotations[1].bbox, [0, 0, 640, 480]);
    assert.equal(annotations[0].sourceRef, "yolo:labels/train/x.txt:1");
  });

  await t.step("obb: the docs' example line is four corners; not a rectangle → polygon", () => {
    const { annotations, problems } = parseYoloLabels(
      "0 0.780811 0.743961 0.782371 0.74686 0.777691 0.752174 0.776131 0.749758",
      { width: 1024, height: 1024 },
      ["plane"],
      { task: "obb" },
    );
    assert.equal(annotations[0].polygon?.length, 4);
    assert.match(problems[0].problem, /not a rectangle: kept as polygon/);
  });

  await t.step("obb on a non-square image: pixel-space rectangle survives normalising", () => {
    const src = rotatedBoxAnnotation("car", [50, 20, 60, 20], 30);
    const { text } = formatYoloLabels(
      [src],
      { width: 200, height: 100 },
      new Map([["car", 0]]),
      "obb",
    );
    const nums = text.trim().split(" ").slice(1).map(Number);
    // In normalised units the corners are NOT a rectangle (x and y scale differently)...
    const [x0, y0, x1, y1, , , x3, y3] = nums;
    assert.ok(Math.abs((x1 - x0) * (x3 - x0) + (y1 - y0) * (y3 - y0)) > 1e-3);
    // ...and read back in pixels they are exactly the rotated box.
    const back = parseYoloLabels(text, { width: 200, height: 100 }, ["car"], { task: "obb" });
    assert.equal(back.problems.length, 0);
    near([back.annotations[0].rotation!], [30], 1e-9, "rotation");
    near(back.annotations[0].polygon!.flat(), src.polygon!.flat(), 1e-9, "corners");
  });

  await t.step("segment lines, a trailing score column, and bad lines", () => {
    const { annotations, problems } = parseYoloLabels(
      [
        "1 0.1 0.1 0.5 0.1 0.3 0.6",
        "0 0.5 0.5 0.2 0.2 0.87",
        "0 0.1 0.1 0.5 0.1 0.3 0.6 0.4",
        "7 0.5 0.5 0.1 0.1",
        "0 0.5 0.5",
        "x 1 2 3 4",
      ].join("\n"),
      { width: 100, height: 50 },
      ["cat", "dog"],
      { file: "l.txt" },
    );
    assert.deepEqual(annotations[0].polygon, [[10, 5], [50, 5], [30, 30]]);
    assert.deepEqual(annotations[0].bbox, [10, 5, 40, 25]);
    assert.equal(annotations[1].score, 0.87);
    near(annotations[1].bbox, [40, 20, 20, 10], 1e-9, "scored box");
    assert.equal(annotations[2].score, 0.4);
    assert.deepEqual(problems.map((p) => p.path), ["l.txt:4", "l.txt:5", "l.txt:6"]);
    assert.match(
      problems[0].problem,
      /class 7 is not among the 2 names: skipped \(unknown label\)/,
    );
  });

  await t.step(
    "export clips to the image (Ultralytics drops files with values outside 0..1)",
    () => {
      const out = formatYoloLabels(
        [
          { label: "cat", bbox: [-10, 0, 20, 10] },
          { label: "cat", bbox: [0, 0, 100, 50], score: 0.25 },
          { label: "cow", bbox: [1, 1, 1, 1] },
          { label: "cat", bbox: [500, 500, 1, 1] },
        ],
        { width: 100, height: 50 },
        new Map([["cat", 3]]),
        "detect",
      );
      assert.equal(out.text, "3 0.05 0.1 0.1 0.2\n3 0.5 0.5 1 1 0.25\n");
      assert.deepEqual(out.problems.map((p) => p.problem), [
        "box reaches outside the image: clipped",
        'unknown label "cow": skipped',
        "box lies outside the image: skipped",
      ]);
      for (const n of out.text.split(/\s+/).filter(Boolean).map(Number)) assert.ok(n >= 0);
    },
  );
});

Deno.test("data.yaml in the forms Ultralytics ships", () => {
  const coco8 = parseDataYaml(`# Ultralytics coco8.yaml (abridged)
path: ../datasets/coco8 # dataset root dir
train: images/train # train images (relative to 'path') 4 images
val: images/val # val images (relative to 'path') 4 images
test: # test images (optional)

# Classes
names:
  0: person
  1: bicycle
  2: 'traffic light'
`);
  assert.deepEqual(coco8, {
    path: "../datasets/coco8",
    train: ["images/train"],
    val: ["images/val"],
    test: [],
    names: ["person", "bicycle", "traffic light"],
  });
  assert.deepEqual(parseDataYaml("train: [a, b]\nval: c\nnames: ['x', \"y: z\"]\n").names, [
    "x",
    "y: z",
  ]);
  assert.deepEqual(parseDataYaml("train: a\nval: a\nnames:\n  - p\n  - q\n").names, ["p", "q"]);
  assert.throws(() => parseDataYaml("names:\n  0: a\n  2: c\n"), /class 1 has no name/);
  assert.throws(() => parseDataYaml("train: a\n"), /expected a names key/);
});

Deno.test("YOLO datasets on disk", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-yolo-"));
  try {
    await t.step(
      "Label Studio / CVAT layout: classes.txt, images/, labels/; EXIF size",
      async () => {
        const root = join(dir, "ls");
        await mkdir(join(root, "images"), { recursive: true });
        await mkdir(join(root, "labels"), { recursive: true });
        await writeFile(join(root, "classes.txt"), "Airplane\nCar\n");
        await writeFile(join(root, "notes.json"), '{"categories": []}');
        await png(join(root, "images", "8f3c1a2e-a.png"), 40, 20); // Label Studio's upload name
        await png(join(root, "images", "b.jpg"), 40, 20, 6); // stored 40×20, shown 20×40
        await png(join(root, "images", "c.png"), 10, 10);
        await writeFile(join(root, "labels", "8f3c1a2e-a.txt"), "1 0.5 0.5 0.5 0.5\n");
        await writeFile(join(root, "labels", "b.txt"), "");
        await writeFile(join(root, "labels", "orphan.txt"), "0 0.5 0.5 0.1 0.1\n");
        const ds = await readYoloDataset(root);
        assert.equal(ds.layout, "classes");
        assert.deepEqual(ds.names, ["Airplane", "Car"]);
        assert.deepEqual(
          ds.images.map((i) => [i.path, i.width, i.height, i.labelled, i.annotations.length]),
          [["images/8f3c1a2e-a.png", 40, 20, true, 1], ["images/b.jpg", 20, 40, true, 0], [
            "images/c.png",
            10,
            10,
            false,
            0,
          ]],
        );
        assert.deepEqual(ds.images[0].annotations[0].bbox, [10, 5, 20, 10]);
        assert.ok(ds.images[0].imageRef.candidates.includes("a.png"), "matches the source name");
        assert.equal(ds.images[0].annotations[0].label, "Car");
        // A label file without its image: kept for matching by file stem, read with a size.
        assert.deepEqual(ds.problems, []);
        assert.deepEqual(
          ds.labelOnly.map((l) => [l.path, l.split, l.imageRef.stems]),
          [["labels/orphan.txt", null, ["orphan"]]],
        );
        const only = parseLabelOnly(ds.labelOnly[0], { width: 200, height: 100 }, ds.names);
        assert.deepEqual(only.annotations.map((a) => [a.label, a.bbox]), [
          ["Airplane", [90, 45, 20, 10]],
        ]);
      },
    );

    await t.step(
      "CVAT YOLO 1.1 without images: obj.names, obj_train_data/*.txt read as label-only",
      async () => {
        const root = join(dir, "cvat");
        await mkdir(join(root, "obj_train_data"), { recursive: true });
        await writeFile(join(root, "obj.names"), "person\ncar\n");
        await writeFile(
          join(root, "obj.data"),
          "classes = 2\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n",
        );
        await writeFile(join(root, "train.txt"), "data/obj_train_data/street.jpg\n");
        await writeFile(join(root, "obj_train_data", "street.txt"), "1 0.5 0.5 0.2 0.4\n");
        const ds = await readYoloDataset(root);
        assert.deepEqual(ds.names, ["person", "car"]);
        assert.deepEqual(ds.images, []);
        assert.deepEqual(
          ds.labelOnly.map((l) => [l.path, l.split, l.imageRef.stems]),
          [["obj_train_data/street.txt", "train", ["street"]]],
        );
        const { annotations } = parseLabelOnly(
          ds.labelOnly[0],
          { width: 100, height: 50 },
          ds.names,
        );
        assert.deepEqual(annotations.map((a) => [a.label, a.bbox]), [["car", [40, 15, 20, 20]]]);
      },
    );

    await t.step(
      "Ultralytics layout: data.yaml path/train/val/names, labels per split",
      async () => {
        const root = join(dir, "ul");
        const s = await writeYoloDataset({
          dir: root,
          task: "detect",
          names: ["cat", "dog"],
          images: [
            { id: "i1", fileName: "a/x.png", width: 30, height: 10, split: "train" },
            { id: "i2", fileName: "b/x.png", width: 30, height: 10, split: "train" },
            { id: "i3", fileName: "y.png", width: 30, height: 10, split: "val" },
          ],
          annotationsByImage: { i1: [{ label: "dog", bbox: [0, 0, 15, 5] }], i3: [] },
          imageBytes: async (img) =>
            new Uint8Array(
              await sharp({
                create: { width: img.width, height: img.height, channels: 3, background: "#000" },
              }).png().toBuffer(),
            ),
        });
        assert.deepEqual([s.labelFiles, s.imagesWritten, s.objects], [2, 3, 1]);
        const yaml = await readFile(join(root, "data.yaml"), "utf8");
        assert.equal(
          yaml,
          `path: ${root}\ntrain: images/train\nval: images/val\n\nnames:\n  0: cat\n  1: dog\n`,
        );
        assert.equal(
          await readFile(join(root, "labels/train/x.txt"), "utf8"),
          "1 0.25 0.25 0.5 0.5\n",
        );
        assert.equal(await readFile(join(root, "labels/val/y.txt"), "utf8"), "");
        const back = await readYoloDataset(root);
        assert.deepEqual(
          back.images.map((i) => [i.path, i.split, i.labelled, i.imageRef.sluiceImageId]),
          [
            ["images/train/x-i2.png", "train", false, "i2"],
            ["images/train/x.png", "train", true, "i1"],
            ["images/val/y.png", "val", true, "i3"],
          ],
        );
      },
    );

    await t.step("label paths follow Ultralytics' img2label_paths", () => {
      assert.equal(labelPathFor("/d/images/train/a.b.jpg"), "/d/labels/train/a.b.txt");
      assert.equal(labelPathFor("/images/x/images/v/a.png"), "/images/x/labels/v/a.txt");
    });

    await t.step("a directory in neither layout is a named error", async () => {
      await mkdir(join(dir, "none"));
      await assert.rejects(
        () => readYoloDataset(join(dir, "none")),
        /expected data\.yaml \(Ultralytics\) or classes\.txt/,
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

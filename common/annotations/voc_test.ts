import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AnnotationFormatError } from "./errors.ts";
import { formatVocXml, parseVocXml } from "./voc.ts";
import { readVocDataset, writeVocDataset } from "./voc_dataset.ts";

const FIXTURE = new URL("./testdata/voc/", import.meta.url).pathname;

Deno.test("VOC fixture (devkit layout, VOC2007 000001) reads with 1-based corners", async (t) => {
  const xml = await readFile(join(FIXTURE, "Annotations/000001.xml"), "utf8");

  await t.step("origin 1 (devkit): xmin 48 is pixel 47 counted from 0, xmax is inclusive", () => {
    const v = parseVocXml(xml, { file: "000001.xml" });
    assert.equal(v.fileName, "000001.jpg");
    assert.deepEqual([v.width, v.height], [353, 500]);
    assert.deepEqual(v.annotations.map((a) => [a.label, a.bbox]), [
      ["dog", [47, 239, 148, 132]],
      ["person", [7, 11, 345, 487]],
    ]);
    assert.equal(v.annotations[0].sourceRef, "voc:000001.xml#0");
    assert.equal(v.imageRef.fileName, "000001.jpg");
  });

  await t.step("origin 0 (Label Studio / CVAT writers): corners taken as they are", () => {
    const v = parseVocXml(xml, { origin: 0 });
    assert.deepEqual(v.annotations[0].bbox, [48, 240, 147, 131]);
  });

  await t.step("the dataset reader takes splits from ImageSets/Main", async () => {
    const ds = await readVocDataset(FIXTURE);
    assert.deepEqual(ds.failures, []);
    assert.deepEqual(ds.records.map((r) => [r.file, r.split, r.annotations.length]), [
      ["Annotations/000001.xml", "train", 2],
      ["Annotations/000002.xml", "val", 0],
    ]);
  });
});

Deno.test("VOC export", async (t) => {
  const image = { fileName: "a b&c.jpg", width: 200, height: 100, sluiceImageId: "img_1" };

  await t.step(
    "writes the devkit elements; boxes past the border are clipped and truncated",
    () => {
      const problems: { path: string; problem: string }[] = [];
      const xml = formatVocXml(image, [
        { label: "cat", bbox: [0, 0, 10, 20] },
        { label: "dog", bbox: [190, 90, 20, 20] },
        { label: "gone", bbox: [300, 300, 5, 5] },
      ], { problems });
      assert.match(xml, /<filename>a b&amp;c.jpg<\/filename>/);
      assert.match(xml, /<size><width>200<\/width><height>100<\/height><depth>3<\/depth><\/size>/);
      assert.match(
        xml,
        /<truncated>0<\/truncated>\s*<difficult>0<\/difficult>\s*<bndbox><xmin>1<\/xmin><ymin>1<\/ymin><xmax>10<\/xmax><ymax>20<\/ymax>/,
      );
      assert.match(xml, /<truncated>1<\/truncated>[\s\S]*<xmax>200<\/xmax><ymax>100<\/ymax>/);
      assert.deepEqual(problems, [{
        path: "$[2]",
        problem: "box lies outside the image: skipped",
      }]);
      const back = parseVocXml(xml);
      assert.equal(back.imageRef.sluiceImageId, "img_1");
      assert.deepEqual(back.annotations.map((a) => a.bbox), [[0, 0, 10, 20], [190, 90, 10, 10]]);
    },
  );

  await t.step("polygons and rotated boxes travel in extension elements", () => {
    const xml = formatVocXml(image, [
      { label: "p", bbox: [10, 10, 20, 20], polygon: [[10, 10], [30, 10], [20, 30]] },
      {
        label: "r",
        bbox: [0, 0, 1, 1],
        polygon: [[10, 10], [20, 10], [20, 15], [10, 15]],
        rotation: 0.000001,
      },
      { label: "s", bbox: [1, 1, 2, 2], score: 0.5 },
    ]);
    const v = parseVocXml(xml);
    assert.deepEqual(v.annotations[0].polygon, [[10, 10], [30, 10], [20, 30]]);
    assert.deepEqual(v.annotations[0].bbox, [10, 10, 20, 20]);
    assert.equal(v.annotations[1].rotation, 0.000001);
    assert.equal(v.annotations[2].score, 0.5);
  });

  await t.step("malformed files are named errors; bad objects are problems", () => {
    assert.throws(
      () => parseVocXml("<annotation><size>", { file: "x.xml" }),
      (e: unknown) =>
        e instanceof AnnotationFormatError && /x\.xml at \$: expected XML/.test(e.message),
    );
    assert.throws(
      () => parseVocXml("<annotation><filename>a</filename></annotation>", { file: "y.xml" }),
      (e: unknown) => e instanceof AnnotationFormatError && e.path === "annotation.size",
    );
    assert.throws(() => parseVocXml("<voc/>"), /expected <annotation>, found <voc>/);
    const v = parseVocXml(
      "<annotation><size><width>9</width><height>9</height></size><object><name>a</name></object>" +
        "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>" +
        "<object><name>c</name><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>3</xmax><ymax>2</ymax></bndbox></object></annotation>",
    );
    assert.deepEqual(v.annotations, []);
    assert.deepEqual(v.problems.map((p) => p.problem), [
      "object without <bndbox>: skipped",
      "object without <name>: skipped",
      "empty box (xmin 5, xmax 3, ymin 1, ymax 2): skipped",
    ]);
  });

  await t.step("dataset: XML only for images with an entry, splits in ImageSets", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-voc-"));
    try {
      const s = await writeVocDataset({
        dir,
        images: [
          { id: "i1", fileName: "x/a.jpg", width: 10, height: 10, split: "train" },
          { id: "i2", fileName: "y/a.jpg", width: 10, height: 10, split: "val" },
          { id: "i3", fileName: "c.jpg", width: 10, height: 10, split: "val" },
        ],
        annotationsByImage: { i1: [{ label: "k", bbox: [1, 1, 2, 2] }], i2: [] },
        imageBytes: () => Promise.resolve(new Uint8Array([1, 2, 3])),
      });
      assert.deepEqual([s.xmlFiles, s.imagesWritten, s.objects], [2, 3, 1]);
      assert.equal(await readFile(join(dir, "ImageSets/Main/val.txt"), "utf8"), "a-i2\nc\n");
      const back = await readVocDataset(dir);
      assert.deepEqual(
        back.records.map((r) => [r.imageRef.sluiceImageId, r.split, r.annotations.length]),
        [["i2", "val", 0], ["i1", "train", 1]],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

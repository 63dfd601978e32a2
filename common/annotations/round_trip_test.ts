/**
 * Round-trip property tests over generated annotations (seeded; see
 * tests/support/annotation_gen.ts): LS → COCO → LS, COCO → YOLO (detect, segment, obb) → COCO
 * through real files and real PNGs, LS → VOC → LS. Geometry must come back within 1e-6 of the
 * image's larger side; rotations on non-square images, multi-part polygons, empty and
 * unlabelled images, unknown labels and boxes on the border are all in the data.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import type { AnnotationInput } from "../manifest/mod.ts";
import {
  generateDataset,
  type GeneratedImage,
  KNOWN_LABELS,
  UNKNOWN_LABEL,
} from "../../tests/support/annotation_gen.ts";
import { type CocoDataset, parseCoco, toCoco } from "./coco.ts";
import { boxToCorners, envelope, type Point } from "./geometry.ts";
import { parseLabelStudioExport, toLabelStudioTasks } from "./labelstudio.ts";
import { formatVocXml, parseVocXml } from "./voc.ts";
import { readYoloDataset, writeYoloDataset } from "./yolo_dataset.ts";
import type { YoloTask } from "./yolo.ts";

const SEEDS = [1, 2, 3, 4, 5];

function shapeOf(a: AnnotationInput): Point[] {
  return a.polygon && a.polygon.length >= 3 ? a.polygon : boxToCorners(a.bbox);
}

function sortKey(a: AnnotationInput): string {
  const [x, y] = envelope(shapeOf(a));
  return `${a.label}|${x.toFixed(3)}|${y.toFixed(3)}`;
}

/** Compares two annotation lists as sets of (label, geometry) within `tol` pixels. */
function assertSameAnnotations(
  actual: readonly AnnotationInput[],
  expected: readonly AnnotationInput[],
  tol: number,
  ctx: string,
  compare: { polygons: boolean; rotation: boolean },
) {
  assert.equal(actual.length, expected.length, `${ctx}: annotation count`);
  const a = [...actual].sort((p, q) => sortKey(p).localeCompare(sortKey(q)));
  const e = [...expected].sort((p, q) => sortKey(p).localeCompare(sortKey(q)));
  e.forEach((want, i) => {
    const got = a[i];
    const at = `${ctx} #${i} (${want.label})`;
    assert.equal(got.label, want.label, `${at}: label`);
    got.bbox.forEach((v, k) =>
      assert.ok(Math.abs(v - want.bbox[k]) <= tol, `${at}: bbox ${got.bbox} vs ${want.bbox}`)
    );
    if (compare.polygons) {
      const gp = shapeOf(got), wp = shapeOf(want);
      assert.equal(gp.length, wp.length, `${at}: polygon length`);
      gp.forEach(([x, y], k) =>
        assert.ok(
          Math.abs(x - wp[k][0]) <= tol && Math.abs(y - wp[k][1]) <= tol,
          `${at}: point ${k} ${[x, y]} vs ${wp[k]}`,
        )
      );
    }
    if (compare.rotation) {
      assert.ok(
        Math.abs((got.rotation ?? 0) - (want.rotation ?? 0)) <= 1e-6,
        `${at}: rotation ${got.rotation} vs ${want.rotation}`,
      );
    }
  });
}

const tolOf = (img: { width: number; height: number }) => 1e-6 * Math.max(img.width, img.height);

Deno.test("LS → COCO → LS keeps every shape, rotation and reviewed-empty image", () => {
  for (const seed of SEEDS) {
    const ds = generateDataset(seed, { images: 12, multipart: false });
    const byImage = new Map<string, AnnotationInput[]>();
    for (const img of ds.images) if (img.annotations) byImage.set(img.id, img.annotations);
    const lsImages = ds.images.map((i) => ({ ...i, url: `s3://raw/${i.fileName}` }));
    const ls1 = parseLabelStudioExport(JSON.stringify(toLabelStudioTasks(lsImages, byImage)));
    assert.deepEqual(ls1.failures, []);
    // COCO holds labelled images only: an unlabelled one has no place there.
    const labelled = ls1.tasks.filter((t) => t.labelled);
    assert.equal(labelled.length, ds.images.filter((i) => i.annotations !== null).length);
    const { coco } = toCoco({
      images: labelled.map((t) => ({
        id: t.imageRef.sluiceImageId!,
        fileName: ds.images[t.index].fileName,
        width: ds.images[t.index].width,
        height: ds.images[t.index].height,
      })),
      annotationsByImage: new Map(labelled.map((t) => [t.imageRef.sluiceImageId!, t.annotations])),
      labels: KNOWN_LABELS,
      dateCreated: "2026-01-01T00:00:00.000Z",
    });
    const c = parseCoco(JSON.parse(JSON.stringify(coco)));
    const back = new Map<string, AnnotationInput[]>();
    for (const im of c.images) back.set(im.imageRef.sluiceImageId!, im.annotations);
    const ls2 = parseLabelStudioExport(JSON.stringify(toLabelStudioTasks(lsImages, back)));
    for (const img of ds.images) {
      const t = ls2.tasks.find((x) => x.imageRef.sluiceImageId === img.id)!;
      assert.equal(t.labelled, img.annotations !== null, `seed ${seed} ${img.id}: labelled`);
      assertSameAnnotations(
        t.annotations,
        img.annotations ?? [],
        tolOf(img),
        `seed ${seed} ${img.id}`,
        {
          polygons: true,
          rotation: true,
        },
      );
    }
    // Unknown labels became categories of their own, after the known ones.
    const names = coco.categories.map((k) => k.name);
    assert.deepEqual(names.slice(0, 3), KNOWN_LABELS);
  }
});

/** The source COCO document: generated shapes plus multi-part objects and an unknown category. */
function sourceCoco(images: GeneratedImage[]): CocoDataset {
  const labelled = images.filter((i) => i.annotations !== null);
  const { coco } = toCoco({
    images: labelled,
    annotationsByImage: new Map(labelled.map((i) => [i.id, i.annotations!])),
    labels: [...KNOWN_LABELS, UNKNOWN_LABEL],
    dateCreated: "2026-01-01T00:00:00.000Z",
  });
  const cocoIds = new Map(coco.images.map((i) => [i.sluice_image_id!, i.id]));
  for (const img of labelled) {
    for (const m of img.multipart) {
      const all = m.parts.flat();
      const bb = envelope(all);
      coco.annotations.push({
        id: coco.annotations.length + 1,
        image_id: cocoIds.get(img.id)!,
        category_id: KNOWN_LABELS.indexOf(m.label) + 1 || 4,
        bbox: bb,
        area: 0,
        iscrowd: 0,
        segmentation: m.parts.map((p) => p.flat()),
      });
    }
  }
  // A category the document does not define: reported and left out.
  coco.annotations.push({
    id: coco.annotations.length + 1,
    image_id: coco.images[coco.images.length - 1].id,
    category_id: 99,
    bbox: [1, 1, 5, 5],
    area: 25,
    iscrowd: 0,
    segmentation: [],
  });
  return coco;
}

for (const task of ["detect", "segment", "obb"] as YoloTask[]) {
  Deno.test(`COCO → YOLO (${task}) → COCO through files and real images`, async () => {
    const dir = await mkdtemp(join(tmpdir(), `sluice-yolo-${task}-`));
    try {
      for (const seed of SEEDS.slice(0, 3)) {
        const ds = generateDataset(seed, { images: 8, maxSide: 500 });
        const src = sourceCoco(ds.images);
        const parsed = parseCoco(src);
        assert.equal(
          parsed.problems.length +
            parsed.images.flatMap((i) => i.problems).filter((p) =>
              p.problem.startsWith("annotation skipped: no category")
            ).length,
          1,
          "the unknown category is reported",
        );
        const out = join(dir, `s${seed}`);
        const imgs = ds.images.map((img) => {
          const p = parsed.images.find((x) => x.imageRef.sluiceImageId === img.id);
          return { img, anns: p?.annotations };
        });
        const byImage = new Map<string, AnnotationInput[]>();
        for (const { img, anns } of imgs) if (anns) byImage.set(img.id, anns);
        const summary = await writeYoloDataset({
          dir: out,
          task,
          names: KNOWN_LABELS,
          images: ds.images,
          annotationsByImage: byImage,
          imageBytes: async (img) =>
            new Uint8Array(
              await sharp({
                create: { width: img.width, height: img.height, channels: 3, background: "#777" },
              }).png().toBuffer(),
            ),
        });
        const zebras = [...byImage.values()].flat().filter((a) => a.label === UNKNOWN_LABEL);
        assert.equal(
          summary.problems.filter((p) => p.problem.startsWith("unknown label")).length,
          zebras.length,
        );
        assert.deepEqual(summary.splits, {
          train: ds.images.filter((i) => i.split === "train").length,
          val: ds.images.filter((i) => i.split === "val").length,
        });
        const read = await readYoloDataset(out, { task });
        assert.deepEqual(read.names, KNOWN_LABELS);
        assert.deepEqual(read.failures, []);
        for (const { img, anns } of imgs) {
          const r = read.images.find((x) => x.imageRef.sluiceImageId === img.id)!;
          assert.ok(r, `${img.id} read back`);
          assert.equal(r.split, img.split);
          assert.equal(r.width, img.width);
          assert.equal(r.labelled, anns !== undefined, `${img.id}: labelled`);
          const want = (anns ?? []).filter((a) => a.label !== UNKNOWN_LABEL).map((a) => {
            if (task === "detect") return { label: a.label, bbox: a.bbox };
            if (task === "obb" && a.polygon && !a.rotation) {
              return { label: a.label, bbox: envelope(a.polygon) };
            }
            return a;
          });
          const ctx = `${task} seed ${seed} ${img.id}`;
          assertSameAnnotations(r.annotations, want, tolOf(img), ctx, {
            polygons: task !== "detect",
            rotation: task === "obb",
          });
        }
        // And on to COCO again: the same category ids and boxes.
        const { coco } = toCoco({
          images: read.images.map((r) => ({
            id: r.imageRef.sluiceImageId!,
            fileName: r.path,
            width: r.width,
            height: r.height,
          })),
          annotationsByImage: new Map(
            read.images.filter((r) => r.labelled).map((
              r,
            ) => [r.imageRef.sluiceImageId!, r.annotations]),
          ),
          labels: KNOWN_LABELS,
        });
        assert.deepEqual(coco.categories.map((c) => [c.id, c.name]), [[1, "cat"], [2, "dog"], [
          3,
          "car",
        ]]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

Deno.test("LS → VOC → LS keeps boxes, polygons, rotations and reviewed-empty images", () => {
  for (const seed of SEEDS) {
    for (const origin of [1, 0] as const) {
      const ds = generateDataset(seed, { images: 10, multipart: false });
      const byImage = new Map<string, AnnotationInput[]>();
      for (const img of ds.images) if (img.annotations) byImage.set(img.id, img.annotations);
      const lsImages = ds.images.map((i) => ({ ...i, url: `s3://raw/${i.fileName}` }));
      const ls1 = parseLabelStudioExport(JSON.stringify(toLabelStudioTasks(lsImages, byImage)));
      const back = new Map<string, AnnotationInput[]>();
      for (const t of ls1.tasks) {
        if (!t.labelled) continue; // unlabelled: no XML
        const img = ds.images[t.index];
        const xml = formatVocXml(
          { fileName: img.fileName, width: img.width, height: img.height, sluiceImageId: img.id },
          t.annotations,
          { origin },
        );
        const v = parseVocXml(xml, { origin });
        assert.equal(v.imageRef.sluiceImageId, img.id);
        back.set(img.id, v.annotations);
      }
      const ls2 = parseLabelStudioExport(JSON.stringify(toLabelStudioTasks(lsImages, back)));
      for (const img of ds.images) {
        const t = ls2.tasks.find((x) => x.imageRef.sluiceImageId === img.id)!;
        assert.equal(t.labelled, img.annotations !== null);
        assertSameAnnotations(
          t.annotations,
          img.annotations ?? [],
          tolOf(img),
          `voc origin ${origin} seed ${seed} ${img.id}`,
          { polygons: true, rotation: true },
        );
      }
    }
  }
});

Deno.test("generated data covers what the round trips claim", () => {
  const all = SEEDS.flatMap((s) => generateDataset(s, { images: 12 }).images);
  const anns = all.flatMap((i) => i.annotations ?? []);
  assert.ok(anns.some((a) => a.rotation), "rotated boxes");
  assert.ok(anns.some((a) => a.polygon && !a.rotation), "polygons");
  assert.ok(all.some((i) => i.multipart.length > 0), "multi-part objects");
  assert.ok(anns.some((a) => a.label === UNKNOWN_LABEL), "unknown labels");
  assert.ok(all.some((i) => i.annotations?.length === 0), "reviewed-empty images");
  assert.ok(all.some((i) => i.annotations === null), "unlabelled images");
  assert.ok(all.every((i) => i.width !== i.height), "non-square images");
  assert.ok(
    all.some((i) => (i.annotations ?? []).some((a) => a.bbox[0] === 0 || a.bbox[1] === 0)),
    "boxes on the border",
  );
});

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import sharp from "sharp";
import type { GroundTruth, Prediction } from "./mean_ap.ts";
import { confusionMatrix, writeEvalPictures } from "./pictures.ts";

/** Six 200x150 grey images, each with one orange (cat 1) and one blue (cat 2) rectangle. */
async function fixture() {
  const images = Array.from({ length: 6 }, (_, i) => ({ id: i + 1, file_name: `${i}.png` }));
  const annotations: GroundTruth["annotations"] = [];
  const bytes = new Map<number, Uint8Array>();
  for (const img of images) {
    const a: [number, number, number, number] = [20 + img.id * 5, 30, 60, 40];
    const b: [number, number, number, number] = [120, 70 + img.id * 3, 50, 50];
    annotations.push({ image_id: img.id, category_id: 1, bbox: a });
    annotations.push({ image_id: img.id, category_id: 2, bbox: b });
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150">` +
      `<rect width="200" height="150" fill="#808080"/>` +
      `<rect x="${a[0]}" y="${a[1]}" width="${a[2]}" height="${a[3]}" fill="#ff9900"/>` +
      `<rect x="${b[0]}" y="${b[1]}" width="${b[2]}" height="${b[3]}" fill="#0044ff"/></svg>`;
    bytes.set(img.id, new Uint8Array(await sharp(Buffer.from(svg)).jpeg().toBuffer()));
  }
  const gt: GroundTruth & { images: typeof images } = {
    images,
    annotations,
    categories: [{ id: 1, name: "orange" }, { id: 2, name: "blue" }],
  };
  const predictions: Prediction[] = [];
  for (const a of annotations) {
    const id = Number(a.image_id);
    // Image 6's blue box is predicted as orange; image 5's orange box is missed.
    if (id === 5 && a.category_id === 1) continue;
    const cat = id === 6 && a.category_id === 2 ? 1 : a.category_id;
    predictions.push({ image_id: id, category_id: cat, bbox: a.bbox, score: 0.9 - id * 0.05 });
  }
  predictions.push({ image_id: 1, category_id: 2, bbox: [0, 0, 30, 30], score: 0.6 }); // false alarm
  predictions.push({ image_id: 2, category_id: 2, bbox: [0, 100, 30, 30], score: 0.1 }); // too weak
  return {
    gt,
    predictions,
    image: (img: { id: number | string }) => Promise.resolve(bytes.get(Number(img.id))!),
  };
}

Deno.test("confusionMatrix: hits on the diagonal, confusions, misses and false alarms", async () => {
  const { gt, predictions } = await fixture();
  const m = confusionMatrix(gt, predictions);
  assert.deepEqual(m.labels, ["orange", "blue", "background"]);
  // rows: predicted orange, blue, background; columns: true orange, blue, background
  assert.deepEqual(m.counts, [
    [5, 1, 0],
    [0, 5, 1],
    [1, 0, 0],
  ]);
});

Deno.test("writeEvalPictures writes PR curves, a confusion matrix and a contact sheet as PNG", async () => {
  const f = await fixture();
  const dir = Deno.env.get("SLUICE_EVAL_PICTURES_DIR") ??
    await Deno.makeTempDir({ prefix: "eval-pics-" });
  try {
    const files = await writeEvalPictures(dir, f);
    assert.deepEqual(files.map((p) => p.slice(dir.length + 1)), [
      "pr_curves.png",
      "confusion_matrix.png",
      "contact_sheet.png",
    ]);
    for (const path of files) {
      const meta = await sharp(path).metadata();
      assert.equal(meta.format, "png", path);
      assert.ok(
        (meta.width ?? 0) >= 300 && (meta.height ?? 0) >= 200,
        `${path}: ${meta.width}x${meta.height}`,
      );
    }
    // Contact sheet: 4 columns of 240 px tiles (+4 px gaps), 2 rows for 6 images.
    const sheet = await sharp(files[2]).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([sheet.info.width, sheet.info.height], [4 * 244 - 4, 2 * 244 - 4]);
    // Image 1's true orange box starts at x=25, y=30 in a 200 px image scaled by 1.2: its left
    // edge at x≈30 must be drawn green (true box) or red (the prediction on top).
    const px = (x: number, y: number) => {
      const o = (y * sheet.info.width + x) * sheet.info.channels;
      return [sheet.data[o], sheet.data[o + 1], sheet.data[o + 2]];
    };
    const row = Array.from({ length: 60 }, (_, x) => px(x, 60));
    assert.ok(row.some(([r, g]) => g > 120 && r < 80), "image 1's true box drawn in green");
    assert.ok(row.some(([r, g]) => r > 150 && g < 70), "its predicted box drawn in red");
    assert.ok(px(5, 200).every((v) => v < 60), "the letterbox padding is dark");
    // PR curve: mostly white canvas with coloured curves.
    const pr = await sharp(files[0]).stats();
    assert.ok(pr.channels[0].mean > 200, "a white canvas");
  } finally {
    if (!Deno.env.get("SLUICE_EVAL_PICTURES_DIR")) await Deno.remove(dir, { recursive: true });
  }
});

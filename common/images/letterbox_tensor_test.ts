import assert from "node:assert/strict";
import { SluiceError } from "../errors/mod.ts";
import { decode, encode, fillRect, findColouredBox, texturedGrey } from "./_test_images.ts";
import { letterboxRgb, letterboxToTensor, rgbToNchw } from "./letterbox_tensor.ts";
import { SharpResizer } from "./sharp_resizer.ts";
import { parseVariantSpecs } from "./variant_spec.ts";
import { boxFromVariant, boxToVariant, planVariant } from "./variant_transform.ts";

Deno.test("letterbox tensor for inference", async (t) => {
  const W = 1203, H = 801;
  const box: [number, number, number, number] = [700, 200, 300, 240];
  const src = await encode(fillRect(texturedGrey(W, H), box, [230, 20, 20]));

  await t.step("same pixels and transform as the normalize stage's letterbox variant", async () => {
    const resizer = new SharpResizer();
    const [variant] = await resizer.render(
      src,
      parseVariantSpecs([{
        name: "320",
        width: 320,
        height: 320,
        mode: "letterbox",
        format: "png",
      }]),
    );
    await resizer.close();
    const lb = await letterboxRgb(src, 320);
    assert.deepEqual(lb.transform, variant.transform);
    assert.deepEqual(
      lb.transform,
      planVariant(W, H, { width: 320, height: 320, mode: "letterbox" }),
    );
    const rendered = await decode(variant.bytes);
    assert.equal(lb.rgb.length, rendered.data.length);
    assert.ok(lb.rgb.every((v, i) => v === rendered.data[i]), "pixel-identical to the PNG variant");
  });

  await t.step("NCHW float layout in [0, 1], padding at 114/255, boxes map back", async () => {
    const tensor = await letterboxToTensor(src, { width: 320, height: 256 });
    assert.deepEqual(tensor.dims, [1, 3, 256, 320]);
    assert.equal(tensor.data.length, 3 * 256 * 320);
    assert.ok(tensor.data.every((v) => v >= 0 && v <= 1));
    // 1203×801 into 320×256: content 320×213, 21 rows of padding on top.
    assert.deepEqual([tensor.transform.padX, tensor.transform.padY], [0, 21]);
    const plane = 256 * 320;
    for (const pad of [0, 20 * 320 + 319, 255 * 320]) {
      for (let c = 0; c < 3; c++) {
        assert.equal(tensor.data[c * plane + pad], Math.fround(114 / 255));
      }
    }
    // Find the red box in the R plane minus G: it is where boxToVariant says; back it maps to the source box.
    const rgb = new Uint8Array(plane * 3);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(tensor.data[c * plane + i] * 255);
    }
    const found = findColouredBox({ data: rgb, width: 320, height: 256 }, "red");
    assert.ok(found);
    const expected = boxToVariant(tensor.transform, box)!;
    for (let k = 0; k < 4; k++) {
      assert.ok(Math.abs(found[k] - expected[k]) <= 0.25, `${found} vs ${expected}`);
    }
    const back = boxFromVariant(tensor.transform, found)!;
    for (let k = 0; k < 4; k++) {
      assert.ok(
        Math.abs(back[k] - box[k]) <= 0.25 / tensor.transform.scaleX,
        `${back} vs ${box}`,
      );
    }
  });

  await t.step("a small image is enlarged without a half-pixel shift (±0.1 px)", async () => {
    // 50×40 → 100×100: scale 2, content 100×80, 10 rows of padding on top. The drawn box
    // [10, 10, 20, 15] must cover exactly x 20..60, y 30..60 (libvips' resize put it at +½).
    const small = await encode(
      fillRect(texturedGrey(50, 40), [10, 10, 20, 15], [230, 20, 20]),
      "png",
    );
    const lb = await letterboxRgb(small, 100);
    assert.deepEqual(
      [lb.transform.scaleX, lb.transform.scaleY, lb.transform.padX, lb.transform.padY],
      [2, 2, 0, 10],
    );
    const found = findColouredBox({ data: lb.rgb, width: 100, height: 100 }, "red");
    assert.ok(found);
    const edges = [found[0], found[1], found[0] + found[2], found[1] + found[3]];
    [20, 30, 60, 60].forEach((e, k) =>
      assert.ok(Math.abs(edges[k] - e) <= 0.1, `edge ${k}: expected ${e}, found ${edges[k]}`)
    );
    const back = boxFromVariant(lb.transform, found)!;
    [10, 10, 20, 15].forEach((e, k) =>
      assert.ok(Math.abs(back[k] - e) <= 0.05, `back ${k}: expected ${e}, found ${back[k]}`)
    );
  });

  await t.step("rgbToNchw fills one slot of a batch", () => {
    const rgb = new Uint8Array([255, 0, 51, 0, 102, 255]); // 2×1 image
    const batch = new Float32Array(2 * 6).fill(-1);
    rgbToNchw(rgb, 2, 1, batch, 6);
    assert.deepEqual(Array.from(batch.subarray(0, 6)), [-1, -1, -1, -1, -1, -1]);
    assert.deepEqual(
      Array.from(batch.subarray(6)),
      [1, 0, 0, 0.4, 0.2, 1].map((v) => Math.fround(v)),
    );
    assert.throws(
      () => rgbToNchw(rgb, 3, 1),
      (e: unknown) => e instanceof SluiceError && /expected 9 bytes/.test(e.message),
    );
    assert.throws(() => rgbToNchw(rgb, 2, 1, new Float32Array(5)), /at least 6 floats/);
  });
});

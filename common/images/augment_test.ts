import assert from "node:assert/strict";
import sharp from "sharp";
import { flipHorizontal, polygonArea, rotate90, translate } from "../annotations/geometry.ts";
import { SluiceError } from "../errors/mod.ts";
import type { AnnotationInput, BBox } from "../manifest/mod.ts";
import {
  augment,
  type AugmentParams,
  geometryOf,
  parseRecipe,
  type RecipeInput,
  renderAugmentation,
  sampleAugmentParams,
  transformAnnotations,
} from "./augment.ts";
import { seedFrom } from "./prng.ts";
import { ImageError } from "./verify.ts";

const W = 200, H = 150;
const BOX: BBox = [30, 20, 50, 40];

/** Black PNG with a solid white rectangle exactly covering `box` (integer pixels). */
async function drawBox(width: number, height: number, box: BBox): Promise<Uint8Array> {
  const rect = await sharp({
    create: { width: box[2], height: box[3], channels: 3, background: "#ffffff" },
  }).png().toBuffer();
  const buf = await sharp({ create: { width, height, channels: 3, background: "#000000" } })
    .composite([{ input: rect, left: box[0], top: box[1] }])
    .png()
    .toBuffer();
  return new Uint8Array(buf);
}

async function raw(
  bytes: Uint8Array,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** Envelope `[x, y, w, h]` of the bright pixels of an image, or null when there are none. */
async function brightEnvelope(bytes: Uint8Array): Promise<BBox | null> {
  const { data, width, height } = await raw(bytes);
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 3] > 127) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
  }
  return x1 < 0 ? null : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

function assertBoxNear(actual: BBox | null, expected: BBox, tol: number, what: string): void {
  assert.ok(actual, `${what}: expected pixels near [${expected}], found none`);
  actual.forEach((v, k) =>
    assert.ok(
      Math.abs(v - expected[k]) <= tol,
      `${what}: pixels at [${actual}], transformed box [${expected}] (±${tol})`,
    )
  );
}

const png = (ops: RecipeInput["ops"], name = "t"): RecipeInput => ({
  name,
  ops,
  output: { format: "png", quality: 90 },
});

Deno.test("augment: boxes follow pixels", async (t) => {
  const image = await drawBox(W, H, BOX);
  const anns: AnnotationInput[] = [{ label: "thing", bbox: BOX }];

  const cases: [string, RecipeInput][] = [
    ["horizontal flip", png([{ op: "hflip", p: 1 }])],
    ["vertical flip", png([{ op: "vflip", p: 1 }])],
    ["90° clockwise", png([{ op: "rot90", p: 1, turns: [1] }])],
    ["270° clockwise", png([{ op: "rot90", p: 1, turns: [3] }])],
    ["flip then quarter turn", png([{ op: "hflip", p: 1 }, { op: "rot90", p: 1, turns: [1] }])],
    ["crop", png([{ op: "random_resized_crop", p: 1, scale: [0.6, 0.8] }])],
    [
      "crop + resize",
      png([{ op: "random_resized_crop", p: 1, scale: [0.5, 0.9], size: [96, 64] }]),
    ],
    [
      "affine scale/translate",
      png([{ op: "affine", p: 1, scale: [1.2, 1.3], translate: [0.05, 0.1] }]),
    ],
    [
      "affine shrink (pre-shrunk by sharp)",
      png([{ op: "affine", p: 1, scale: [0.4, 0.5], translate: [-0.1, 0.1] }]),
    ],
    ["free rotation, expand", png([{ op: "rotate", p: 1, degrees: [20, 30], mode: "expand" }])],
    ["free rotation, crop", png([{ op: "rotate", p: 1, degrees: [-30, -20], mode: "crop" }])],
  ];
  for (const [what, recipe] of cases) {
    await t.step(what, async () => {
      let compared = 0;
      for (let index = 0; index < 3; index++) {
        const out = await augment(image, anns, { recipe, imageId: "img_box", index });
        assert.equal((await sharp(out.bytes).metadata()).width, out.width);
        const pixels = await brightEnvelope(out.bytes);
        if (out.annotations.length === 0) {
          // Dropped: then little of it may be left in the picture.
          assert.equal(out.dropped.length, 1);
          assert.ok(out.dropped[0].visible < 0.3);
          continue;
        }
        assertBoxNear(pixels, out.annotations[0].bbox, 2, `${what} #${index}`);
        compared++;
      }
      assert.ok(compared > 0, `${what}: every copy dropped the box, nothing was compared`);
    });
  }

  await t.step("flip and quarter turns copy pixels exactly", async () => {
    const photo = new Uint8Array(
      await sharp({
        create: {
          width: 37,
          height: 23,
          channels: 3,
          background: "#000000",
          noise: { type: "gaussian", mean: 128, sigma: 50 },
        },
      })
        .png()
        .toBuffer(),
    );
    const src = await raw(photo);
    const flipped = await raw(
      (await augment(photo, [], { recipe: png([{ op: "hflip", p: 1 }]), imageId: "x", index: 0 }))
        .bytes,
    );
    const turned = await raw(
      (await augment(photo, [], {
        recipe: png([{ op: "rot90", p: 1, turns: [1] }]),
        imageId: "x",
        index: 0,
      })).bytes,
    );
    assert.deepEqual([turned.width, turned.height], [23, 37]);
    for (let y = 0; y < 23; y++) {
      for (let x = 0; x < 37; x++) {
        for (let k = 0; k < 3; k++) {
          const s = src.data[(y * 37 + x) * 3 + k];
          assert.equal(flipped.data[(y * 37 + (36 - x)) * 3 + k], s, `flip at ${x},${y}`);
          // Clockwise: source (x, y) lands at (H - 1 - y, x).
          assert.equal(turned.data[(x * 23 + (22 - y)) * 3 + k], s, `turn at ${x},${y}`);
        }
      }
    }
  });

  await t.step("polygons follow exactly and rotated rectangles keep a valid rotation", () => {
    const poly: [number, number][] = [[10, 10], [30, 10], [30, 20]];
    const { kept } = transformAnnotations(
      [{ label: "p", bbox: [10, 10, 20, 10], polygon: poly }, {
        label: "r",
        bbox: [0, 0, 1, 1],
        polygon: [[50, 50], [60, 50], [60, 55], [50, 55]],
        rotation: 0.0001,
      }],
      rotate90(1, 100, 80),
      80,
      100,
      0.3,
    );
    assert.deepEqual(kept[0].polygon, [[70, 10], [70, 30], [60, 30]]);
    assert.deepEqual(kept[0].bbox, [60, 10, 10, 20]);
    assert.ok(Math.abs((kept[1].rotation ?? NaN) - 90.0001) < 1e-9);
    const mirrored = transformAnnotations(
      [{
        label: "r",
        bbox: [50, 50, 10, 5],
        polygon: [[50, 50], [60, 50], [60, 55], [50, 55]],
        rotation: 10,
      }],
      flipHorizontal(100),
      100,
      100,
      0.3,
    );
    assert.equal(
      mirrored.kept[0].rotation,
      null,
      "a mirror image of a rotated rectangle is no longer one LS can express",
    );
  });

  await t.step("minimum visible area: drop below, clip above", () => {
    const box: AnnotationInput = { label: "a", bbox: [0, 0, 10, 10] };
    const gone = transformAnnotations([box], translate(-8, 0), 100, 100, 0.3);
    assert.deepEqual(gone.kept, []);
    assert.deepEqual(gone.dropped.map((d) => [d.index, d.label, Math.round(d.visible * 100)]), [[
      0,
      "a",
      20,
    ]]);
    const cut = transformAnnotations([box], translate(-5, 0), 100, 100, 0.3);
    assert.deepEqual(cut.kept[0].bbox, [0, 0, 5, 10]);
    const tri = transformAnnotations(
      [{ label: "t", bbox: [0, 0, 10, 10], polygon: [[0, 0], [10, 0], [0, 10]] }],
      translate(-5, 0),
      100,
      100,
      0.2,
    );
    // A quarter of the triangle is left: kept with minVisible 0.2 (it would go at 0.3).
    assert.equal(polygonArea(tri.kept[0].polygon ?? []), 12.5);
    assert.deepEqual(tri.kept[0].bbox, [0, 0, 5, 5]);
  });
});

Deno.test("augment: reproducibility", async (t) => {
  const photo = new Uint8Array(
    await sharp({
      create: {
        width: 160,
        height: 120,
        channels: 3,
        background: "#000000",
        noise: { type: "gaussian", mean: 120, sigma: 40 },
      },
    })
      .jpeg({ quality: 90 })
      .toBuffer(),
  );
  const anns: AnnotationInput[] = [
    { label: "a", bbox: [20, 20, 60, 50] },
    { label: "b", bbox: [90, 40, 50, 60], polygon: [[90, 40], [140, 40], [115, 100]] },
  ];
  const everything: RecipeInput = {
    name: "everything",
    ops: [
      { op: "hflip" },
      { op: "vflip" },
      { op: "rot90" },
      { op: "rotate", p: 0.7 },
      { op: "random_resized_crop", size: [128, 96] },
      { op: "affine" },
      { op: "color", p: 1 },
      { op: "blur", p: 0.7 },
      { op: "noise", p: 1 },
      { op: "jpeg", p: 0.7 },
    ],
  };

  await t.step("same seed ⇒ byte-identical output, also from stored (JSON) params", async () => {
    for (let index = 0; index < 4; index++) {
      const a = await augment(photo, anns, { recipe: everything, imageId: "img_r", index });
      const b = await augment(photo, anns, { recipe: everything, imageId: "img_r", index });
      assert.equal(a.seed, seedFrom("img_r", "everything", index));
      assert.deepEqual(a.bytes, b.bytes, `index ${index}: two runs differ`);
      assert.deepEqual(a.annotations, b.annotations);
      const stored = JSON.parse(JSON.stringify(a.params));
      const again = await renderAugmentation(photo, anns, stored);
      assert.deepEqual(again.bytes, a.bytes, `index ${index}: regenerated from params differs`);
      assert.deepEqual(again.annotations, a.annotations);
      assert.deepEqual([a.width, a.height], [a.params.output.width, a.params.output.height]);
      assert.ok(a.params.ops.some((op) => op.op === "noise"), "noise (p=1) must be in the params");
    }
  });

  await t.step("different index or explicit seed ⇒ different copy", async () => {
    const a = await augment(photo, anns, { recipe: everything, imageId: "img_r", index: 0 });
    const b = await augment(photo, anns, { recipe: everything, imageId: "img_r", index: 1 });
    assert.notDeepEqual(a.params.ops, b.params.ops);
    assert.notDeepEqual(a.bytes, b.bytes);
    const s = await augment(photo, anns, {
      recipe: everything,
      imageId: "img_r",
      index: 0,
      seed: 12345,
    });
    assert.equal(s.params.seed, 12345);
    assert.deepEqual(
      s.params,
      sampleAugmentParams(parseRecipe(everything), 12345, { width: 160, height: 120 }),
    );
  });

  await t.step("params record the matrix the ops imply", () => {
    const p = sampleAugmentParams(parseRecipe(everything), 99, { width: 160, height: 120 });
    const geo = geometryOf(p.ops, 160, 120);
    assert.deepEqual(p.matrix, geo.matrix);
    assert.deepEqual(p.output, { width: geo.width, height: geo.height });
  });

  await t.step(
    "an empty recipe re-encodes without moving anything; greyscale becomes RGB",
    async () => {
      const grey = new Uint8Array(
        await sharp({ create: { width: 30, height: 20, channels: 3, background: "#808080" } })
          .greyscale().png().toBuffer(),
      );
      const out = await augment(grey, [{ label: "a", bbox: [1, 2, 3, 4] }], {
        recipe: png([]),
        imageId: "g",
        index: 0,
      });
      assert.deepEqual(out.annotations, [{ label: "a", bbox: [1, 2, 3, 4] }]);
      const meta = await sharp(out.bytes).metadata();
      assert.deepEqual([meta.width, meta.height, meta.channels], [30, 20, 3]);
    },
  );

  await t.step(
    "bad recipes, bad params, wrong input and non-allowlisted bytes are refused",
    async () => {
      assert.throws(
        () => parseRecipe({ name: "x", ops: [{ op: "twirl" }] }),
        (e: unknown) => e instanceof SluiceError && e.code === "invalid_recipe",
      );
      assert.throws(
        () => parseRecipe({ name: "x", ops: [{ op: "blur", sigma: [2, 1] }] }),
        (e: unknown) => e instanceof SluiceError && /ops\.0\.sigma/.test(e.message),
      );
      const good =
        (await augment(photo, anns, { recipe: everything, imageId: "img_r", index: 0 })).params;
      const broken = { ...good, ops: [{ op: "hflip", extra: 1 }] } as unknown as AugmentParams;
      await assert.rejects(
        renderAugmentation(photo, anns, broken),
        (e: unknown) => e instanceof SluiceError && e.code === "invalid_augment_params",
      );
      const other = new Uint8Array(await sharp(photo).resize(80, 60).jpeg().toBuffer());
      await assert.rejects(
        renderAugmentation(other, anns, good),
        (e: unknown) => e instanceof SluiceError && e.code === "augment_input_mismatch",
      );
      const svg = new TextEncoder().encode(
        '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>',
      );
      await assert.rejects(
        augment(svg, [], { recipe: everything, imageId: "s", index: 0 }),
        (e: unknown) => e instanceof ImageError && e.code === "unsupported_format",
      );
    },
  );
});

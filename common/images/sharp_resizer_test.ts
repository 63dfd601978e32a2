import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import type { BBox } from "../manifest/mod.ts";
import {
  decode,
  encode,
  fillRect,
  findColouredBox,
  orientBox,
  orientPoint,
  pixel,
  texturedGrey,
} from "./_test_images.ts";
import { ImageDecodeError } from "./resizer.ts";
import { type SharpFactory, SharpResizer } from "./sharp_resizer.ts";
import { parseVariantSpecs, VARIANT_MODES, type VariantSpecInput } from "./variant_spec.ts";
import { boxToVariant, planVariant, pointToVariant } from "./variant_transform.ts";

const RED: [number, number, number] = [230, 20, 20];
const GREEN: [number, number, number] = [20, 220, 20];

function assertBoxNear(found: BBox | null, expected: BBox | null, tol: number, what: string) {
  assert.ok(
    found && expected,
    `${what}: expected ${JSON.stringify(expected)}, found ${JSON.stringify(found)}`,
  );
  const edges = (b: BBox) => [b[0], b[1], b[0] + b[2], b[1] + b[3]];
  const f = edges(found), e = edges(expected);
  for (let i = 0; i < 4; i++) {
    assert.ok(
      Math.abs(f[i] - e[i]) <= tol,
      `${what}: edge ${["left", "top", "right", "bottom"][i]} expected ${
        e[i].toFixed(2)
      } ± ${tol}, ` +
        `found ${f[i].toFixed(2)} (box ${JSON.stringify(found.map((v) => +v.toFixed(2)))})`,
    );
  }
}

Deno.test("SharpResizer", async (t) => {
  const resizer = new SharpResizer();

  await t.step(
    "each mode has its planned size; letterbox pads with the background colour",
    async () => {
      const src = await encode(fillRect(texturedGrey(400, 200), [0, 0, 400, 200], RED), "png");
      const specs = parseVariantSpecs([
        { name: "lb", width: 100, height: 100, mode: "letterbox", format: "png" },
        {
          name: "lbc",
          width: 100,
          height: 100,
          mode: "letterbox",
          format: "png",
          background: "#ff00ff",
        },
        { name: "fit", width: 100, height: 100, mode: "fit", format: "png" },
        { name: "cover", width: 100, height: 100, mode: "cover", format: "png" },
        { name: "stretch", width: 30, height: 90, mode: "stretch", format: "png" },
        { name: "tall", width: 100, height: 300, mode: "letterbox", format: "png" },
      ]);
      const out = await resizer.render(src, specs);
      const sizes = out.map((v) => [v.spec.name, v.width, v.height]);
      assert.deepEqual(sizes, [["lb", 100, 100], ["lbc", 100, 100], ["fit", 100, 50], [
        "cover",
        100,
        100,
      ], [
        "stretch",
        30,
        90,
      ], ["tall", 100, 300]]);
      for (const v of out) {
        const img = await decode(v.bytes);
        assert.deepEqual([img.width, img.height], [v.width, v.height], v.spec.name);
        assert.deepEqual(v.transform, planVariant(400, 200, v.spec), v.spec.name);
      }
      const lb = await decode(out[0].bytes);
      // 400×200 into 100×100: content 100×50, 25 px of padding above and below.
      for (const [x, y] of [[50, 0], [50, 24], [0, 10], [99, 99], [50, 75]]) {
        assert.deepEqual(pixel(lb, x, y), [114, 114, 114], `pad pixel (${x}, ${y})`);
      }
      assert.deepEqual(pixel(lb, 50, 50), RED, "content pixel");
      assert.deepEqual(
        pixel(await decode(out[1].bytes), 50, 10),
        [255, 0, 255],
        "custom background",
      );
      const tall = await decode(out[5].bytes);
      assert.deepEqual(pixel(tall, 50, 124), [114, 114, 114]);
      assert.deepEqual(pixel(tall, 50, 126), RED);
      // No padding anywhere in fit, cover and stretch outputs.
      for (const v of out.slice(2, 5)) {
        const img = await decode(v.bytes);
        for (const [x, y] of [[0, 0], [img.width - 1, img.height - 1]]) {
          assert.deepEqual(pixel(img, x, y), RED, `${v.spec.name} corner`);
        }
      }
    },
  );

  await t.step(
    "cover crops the centre: a marker drawn at the source centre is found at the centre",
    async () => {
      const img = fillRect(texturedGrey(900, 300), [440, 140, 20, 20], GREEN);
      fillRect(img, [780, 40, 30, 30], RED); // inside the crop window's right part
      const src = await encode(img);
      const [v] = await resizer.render(
        src,
        parseVariantSpecs([{ name: "c", width: 150, height: 150, mode: "cover", format: "png" }]),
      );
      const out = await decode(v.bytes);
      const centre = findColouredBox(out, "green");
      assert.ok(centre);
      assert.ok(
        Math.abs(centre[0] + centre[2] / 2 - 75) <= 1 &&
          Math.abs(centre[1] + centre[3] / 2 - 75) <= 1,
        `${centre}`,
      );
      // The red square is cut off: 900×300 → 450×150, window x 150..300 in content = 300..600 in source.
      assert.equal(findColouredBox(out, "red"), null);
      const [px, py] = pointToVariant(v.transform, [450, 150]);
      assert.ok(Math.abs(px - 75) <= 0.5 && Math.abs(py - 75) <= 0.5);
    },
  );

  await t.step(
    "a box drawn on the image lands where boxToVariant says (±0.25 px), every mode",
    async () => {
      // Measured: ≤ 0.13 px from these JPEG sources, shrinking (down to 0.05×) or enlarging (1.9×).
      const sources: [number, number, BBox][] = [
        [1603, 1201, [1000, 300, 240, 180]],
        [1201, 1603, [150, 900, 300, 420]],
        [2048, 1536, [512, 512, 512, 256]],
        [333, 777, [100, 200, 90, 150]],
      ];
      for (const [w, h, box] of sources) {
        const src = await encode(fillRect(texturedGrey(w, h), box, RED));
        const specs = parseVariantSpecs(
          VARIANT_MODES.flatMap((mode) => [
            { name: `${mode}-640`, width: 640, height: 640, mode, format: "png" as const },
            { name: `${mode}-300x200`, width: 300, height: 200, mode, format: "png" as const },
          ]),
        );
        for (const v of await resizer.render(src, specs)) {
          const found = findColouredBox(await decode(v.bytes), "red");
          assertBoxNear(found, boxToVariant(v.transform, box), 0.25, `${w}×${h} ${v.spec.name}`);
        }
      }
    },
  );

  await t.step(
    "enlarging keeps pixel centres on the transform: no half-pixel shift (±0.1 / ±0.2 px)",
    async () => {
      // libvips' resize enlarges with its output shifted by +½ px (a 2× box at 20.5..60.5);
      // these would fail with it. PNG sources, so the drawn edges are exact.
      const twice = await encode(fillRect(texturedGrey(50, 50), [10, 10, 20, 20], RED), "png");
      const [lb, st] = await resizer.render(
        twice,
        parseVariantSpecs([
          { name: "lb", width: 100, height: 100, mode: "letterbox", format: "png" },
          { name: "st", width: 150, height: 100, mode: "stretch", format: "png" },
        ]),
      );
      assertBoxNear(findColouredBox(await decode(lb.bytes), "red"), [20, 20, 40, 40], 0.1, "2×");
      assertBoxNear(findColouredBox(await decode(st.bytes), "red"), [30, 20, 60, 40], 0.1, "3×2×");
      const cases: [number, number, BBox, VariantSpecInput[]][] = [
        [203, 151, [41, 30, 77, 61], [
          { name: "lb-640", width: 640, height: 640, mode: "letterbox" },
          { name: "cover-300x200", width: 300, height: 200, mode: "cover" },
        ]],
        [50, 50, [10, 10, 20, 20], [{ name: "cover-640", width: 640, height: 640, mode: "cover" }]],
        // One axis grows (1.9×), the other shrinks (0.82×).
        [333, 777, [100, 200, 90, 150], [
          { name: "st-640", width: 640, height: 640, mode: "stretch" },
        ]],
        // Enlarged from a decode that other, larger-source variants shrank first.
        [900, 120, [300, 30, 200, 50], [
          { name: "fit-800", width: 800, height: 800, mode: "fit" },
          { name: "lb-480", width: 480, height: 480, mode: "letterbox" },
        ]],
      ];
      for (const [w, h, box, specs] of cases) {
        const src = await encode(fillRect(texturedGrey(w, h), box, RED), "png");
        const out = await resizer.render(
          src,
          parseVariantSpecs(specs.map((s) => ({ ...s, format: "png" as const }))),
        );
        for (const v of out) {
          const found = findColouredBox(await decode(v.bytes), "red");
          assertBoxNear(found, boxToVariant(v.transform, box), 0.2, `${w}×${h} ${v.spec.name}`);
        }
      }
    },
  );

  await t.step("enlarged edges are the image's own pixels, not blended with a fill", async () => {
    const flat = await sharp({
      create: { width: 9, height: 7, channels: 3, background: { r: 37, g: 140, b: 201 } },
    }).png().toBuffer();
    const [v] = await resizer.render(
      flat,
      parseVariantSpecs([{ name: "s", width: 40, height: 33, mode: "stretch", format: "png" }]),
    );
    const img = await decode(v.bytes);
    const off = [];
    for (let i = 0; i < img.width * img.height; i++) {
      const p = [img.data[i * 3], img.data[i * 3 + 1], img.data[i * 3 + 2]];
      if (p[0] !== 37 || p[1] !== 140 || p[2] !== 201) off.push([i % img.width, p]);
    }
    assert.deepEqual(off, [], "every pixel of an enlarged flat image keeps its colour");
  });

  await t.step("EXIF orientation is applied exactly once, for all 8 orientations", async () => {
    const W = 600, H = 400;
    const box: BBox = [60, 40, 120, 80]; // near the stored top-left corner
    const pixels = fillRect(texturedGrey(W, H), box, RED);
    for (let o = 1; o <= 8; o++) {
      const src = await encode(pixels, "jpeg", { orientation: o });
      const [v] = await resizer.render(
        src,
        parseVariantSpecs([{ name: "f", width: 300, height: 300, mode: "fit", format: "png" }]),
      );
      const upright = o >= 5 ? [H, W] : [W, H];
      assert.deepEqual([v.transform.srcWidth, v.transform.srcHeight], upright, `orientation ${o}`);
      const expected = boxToVariant(v.transform, orientBox(o, W, H, box));
      assertBoxNear(findColouredBox(await decode(v.bytes), "red"), expected, 1, `orientation ${o}`);
      const meta = await sharp(v.bytes).metadata();
      assert.ok(
        meta.orientation === undefined || meta.orientation === 1,
        `variant carries no rotation (${o})`,
      );
      // Sanity of the helper itself: orientation 6 moves the stored top-left corner to the top-right.
      if (o === 6) assert.deepEqual(orientPoint(6, W, H, [0, 0]), [H, 0]);
    }
  });

  await t.step("all variants come from one decode of the original", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-resizer-"));
    try {
      const path = join(dir, "a.jpg");
      await writeFile(path, await encode(texturedGrey(1200, 900)));
      const bytes = await Deno.readFile(path);
      for (const input of [path, bytes]) {
        let fromOriginal = 0, fromRaw = 0;
        const rawSizes = new Set<string>();
        const factory: SharpFactory = (i, o) => {
          if (i === input) fromOriginal++;
          else if (o?.raw) {
            fromRaw++;
            rawSizes.add(`${o.raw.width}×${o.raw.height}`);
          }
          return sharp(i, o);
        };
        const counted = new SharpResizer({ sharpFactory: factory });
        const specs = parseVariantSpecs([
          { name: "a", width: 1000, height: 1000, mode: "fit" },
          { name: "b", width: 640, height: 640, mode: "letterbox", format: "webp" },
          { name: "c", width: 320, height: 320, mode: "cover", format: "png" },
          { name: "d", width: 100, height: 50, mode: "stretch" },
        ]);
        const out = await counted.render(input, specs);
        assert.equal(out.length, 4);
        assert.equal(fromOriginal, 1, `original opened once (${typeof input})`);
        assert.equal(fromRaw, 4, "one raw-derived pipeline per variant");
        // The one decode is shrunk on load to the largest content (1000×750), not kept at 1200×900.
        assert.deepEqual([...rawSizes], ["1000×750"]);
      }
      // Enlarging takes extra raw passes, never a second decode of the original.
      let opened = 0;
      const enlarging = new SharpResizer({
        sharpFactory: (i, o) => {
          if (i === bytes) opened++;
          return sharp(i, o);
        },
      });
      const big = await enlarging.render(
        bytes,
        parseVariantSpecs([
          { name: "a", width: 640, height: 640, mode: "fit" },
          { name: "b", width: 2400, height: 2400, mode: "letterbox" },
          { name: "c", width: 3000, height: 500, mode: "stretch" },
        ]),
      );
      assert.deepEqual(big.map((v) => [v.width, v.height]), [[640, 480], [2400, 2400], [
        3000,
        500,
      ]]);
      assert.equal(opened, 1, "original opened once when some variants are enlarged");
      // Path and bytes give identical variants.
      const spec = parseVariantSpecs([{ name: "a", width: 500, height: 500, mode: "letterbox" }]);
      const [a] = await resizer.render(path, spec);
      const [b] = await resizer.render(bytes, spec);
      assert.equal(a.sha256, b.sha256);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  await t.step("jpeg, png, webp and avif outputs are valid images of the right size", async () => {
    const src = await encode(fillRect(texturedGrey(800, 600), [100, 100, 200, 100], RED));
    const specs = parseVariantSpecs(
      (["jpeg", "png", "webp", "avif"] as const).map((format): VariantSpecInput => ({
        name: format,
        width: 320,
        height: 240,
        mode: "cover",
        format,
        quality: 70,
      })),
    );
    const magic: Record<string, (b: Uint8Array) => boolean> = {
      jpeg: (b) => b[0] === 0xff && b[1] === 0xd8,
      png: (b) => b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47,
      webp: (b) => new TextDecoder().decode(b.subarray(8, 12)) === "WEBP",
      avif: (b) => new TextDecoder().decode(b.subarray(4, 12)) === "ftypavif",
    };
    for (const v of await resizer.render(src, specs)) {
      assert.equal(v.format, v.spec.format);
      assert.ok(magic[v.format](v.bytes), `${v.format} signature`);
      const meta = await sharp(v.bytes).metadata();
      assert.equal(meta.format, v.format === "avif" ? "heif" : v.format);
      assert.deepEqual([meta.width, meta.height], [320, 240]);
      const img = await decode(v.bytes);
      const found = findColouredBox(img, "red");
      assertBoxNear(found, boxToVariant(v.transform, [100, 100, 200, 100]), 1.5, v.format);
      assert.match(v.sha256, /^[0-9a-f]{64}$/);
    }
  });

  await t.step("alpha, greyscale and 16-bit inputs become opaque 8-bit RGB", async () => {
    const rgba = await sharp({
      create: {
        width: 64,
        height: 32,
        channels: 4,
        background: { r: 0, g: 200, b: 0, alpha: 0.5 },
      },
    })
      .png().toBuffer();
    const grey = await sharp(texturedGrey(64, 32).data, {
      raw: { width: 64, height: 32, channels: 3 },
    })
      .toColourspace("b-w").jpeg().toBuffer();
    const deep = await sharp(texturedGrey(64, 32).data, {
      raw: { width: 64, height: 32, channels: 3 },
    })
      .toColourspace("rgb16").png().toBuffer();
    assert.equal((await sharp(grey).metadata()).channels, 1);
    assert.equal((await sharp(deep).metadata()).depth, "ushort");
    const spec = parseVariantSpecs([{
      name: "p",
      width: 32,
      height: 32,
      mode: "letterbox",
      format: "png",
    }]);
    for (const [name, src] of [["rgba", rgba], ["grey", grey], ["16-bit", deep]] as const) {
      const [v] = await resizer.render(src, spec);
      const meta = await sharp(v.bytes).metadata();
      assert.deepEqual([meta.channels, meta.depth, meta.hasAlpha], [3, "uchar", false], name);
    }
    const [v] = await resizer.render(rgba, spec);
    const [r, g, b] = pixel(await decode(v.bytes), 16, 16);
    assert.ok(
      r < 5 && Math.abs(g - 100) <= 2 && b < 5,
      `half-transparent green on black, found ${[r, g, b]}`,
    );
  });

  await t.step("small sources: fit is not enlarged, letterbox and cover are", async () => {
    const src = await encode(texturedGrey(50, 40));
    const out = await resizer.render(
      src,
      parseVariantSpecs([
        { name: "fit", width: 640, height: 640, mode: "fit" },
        { name: "lb", width: 640, height: 640, mode: "letterbox" },
        { name: "cv", width: 64, height: 64, mode: "cover" },
      ]),
    );
    assert.deepEqual(out.map((v) => [v.width, v.height]), [[50, 40], [640, 640], [64, 64]]);
  });

  await t.step("undecodable input throws ImageDecodeError (code decode_failed)", async () => {
    const spec = parseVariantSpecs([{ name: "a", width: 10, height: 10 }]);
    for (
      const input of [
        new TextEncoder().encode("not an image at all"),
        (await encode(texturedGrey(64, 64))).slice(0, 300),
      ]
    ) {
      await assert.rejects(() => resizer.render(input, spec), (e: unknown) => {
        assert.ok(e instanceof ImageDecodeError, String(e));
        assert.equal(e.code, "decode_failed");
        assert.match(e.message, /expected a decodable image/);
        return true;
      });
    }
    await assert.rejects(() => resizer.render("/nonexistent/x.jpg", spec), ImageDecodeError);
  });

  await t.step("options are validated", () => {
    assert.throws(() => new SharpResizer({ threads: 0 }), /threads/);
  });

  await resizer.close();
});

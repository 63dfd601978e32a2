import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import zlib from "node:zlib";
import sharp from "sharp";
import {
  ImageError,
  type ImageErrorCode,
  inspectImage,
  normalizeOrientation,
  sniffFormat,
} from "./verify.ts";

const LIMITS = { maxBytes: 10_000_000, maxPixels: 50_000_000 };

async function solid(
  width: number,
  height: number,
  format: "jpeg" | "png" | "webp" | "tiff",
  alpha = false,
) {
  const img = sharp({
    create: {
      width,
      height,
      channels: alpha ? 4 : 3,
      background: { r: 40, g: 120, b: 200, alpha: alpha ? 0.5 : 1 },
    },
  });
  return new Uint8Array(await img[format]().toBuffer());
}

/** A photo-like JPEG (noise), so that truncation and corruption hit real entropy-coded data. */
async function noisyJpeg(width = 320, height = 240): Promise<Uint8Array> {
  // Seeded noise, so the bytes (and what a given corruption does to them) are the same every
  // run. With sharp's unseeded `noise`, 6 of 400 damaged copies decoded without a warning: their
  // 0xFF run ended on a stuffed 0x00 or another 0xFF, which a JPEG decoder cannot tell from data.
  let a = 0x5eed;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pixels = new Uint8Array(width * height * 3);
  for (let i = 0; i < pixels.length; i++) {
    // Roughly gaussian around 128 (sum of three uniforms), clipped to a byte.
    const g = (next() + next() + next() - 1.5) * 2 * 40;
    pixels[i] = Math.max(0, Math.min(255, Math.round(128 + g)));
  }
  const buf = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
  return new Uint8Array(buf);
}

async function refused(
  promise: Promise<unknown>,
  code: ImageErrorCode,
  message?: RegExp,
): Promise<ImageError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ImageError, `expected ImageError, found ${err}`);
    assert.equal(err.code, code, `expected ${code}, found ${err.code}: ${err.message}`);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ImageError ${code}, but the image was accepted`);
}

/** A real, valid 1-bit PNG of width × height zeros: a few KB on disk, width × height pixels decoded. */
function pngBomb(width: number, height: number): Uint8Array {
  const row = 1 + Math.ceil(width / 8);
  const idat = zlib.deflateSync(new Uint8Array(row * height), { level: 9 });
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, zlib.crc32(out.subarray(4, 8 + data.length)) >>> 0);
    return out;
  };
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(idat)),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

Deno.test("inspectImage", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-verify-"));
  try {
    await t.step("accepts the four allowlisted formats and reports them", async () => {
      for (const format of ["jpeg", "png", "webp", "tiff"] as const) {
        const info = await inspectImage(await solid(64, 32, format), LIMITS);
        assert.deepEqual({ ...info, size: 0 }, {
          format,
          width: 64,
          height: 32,
          orientation: 1,
          hasAlpha: false,
          size: 0,
          decodeWarning: null,
        });
      }
      const rgba = await inspectImage(await solid(10, 10, "png", true), LIMITS);
      assert.equal(rgba.hasAlpha, true);
    });

    await t.step("reads from a path too, and names the item in errors", async () => {
      const path = join(dir, "ok.png");
      const bytes = await solid(20, 10, "png");
      await writeFile(path, bytes);
      const info = await inspectImage(path, LIMITS);
      assert.equal(info.size, bytes.length);
      assert.equal(info.width, 20);
      const empty = join(dir, "empty.jpg");
      await writeFile(empty, new Uint8Array());
      await refused(
        inspectImage(empty, LIMITS),
        "empty_object",
        /empty\.jpg: expected image bytes, found an empty object/,
      );
    });

    await t.step("0 bytes, too many bytes", async () => {
      await refused(
        inspectImage(new Uint8Array(), LIMITS, { name: "raw/a.jpg" }),
        "empty_object",
        /^raw\/a\.jpg: /,
      );
      const big = await solid(64, 64, "png");
      await refused(
        inspectImage(big, { maxBytes: big.length - 1, maxPixels: 1e6 }),
        "too_large",
        /exceeds the limit/,
      );
      await inspectImage(big, { maxBytes: big.length, maxPixels: 64 * 64 });
    });

    await t.step("text named .jpg, SVG, GIF, PDF, HEIF are refused by magic bytes", async () => {
      const text = join(dir, "notes.jpg");
      await writeFile(text, "this is not a picture\n");
      await refused(
        inspectImage(text, LIMITS),
        "unsupported_format",
        /notes\.jpg: expected JPEG, PNG, WebP or TIFF/,
      );

      const svg = new TextEncoder().encode(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="red"/></svg>',
      );
      // sharp WOULD decode this SVG: the refusal has to come from the allowlist, before sharp.
      assert.equal((await sharp(svg).metadata()).format, "svg");
      await refused(
        inspectImage(svg, LIMITS, { name: "x.svg" }),
        "unsupported_format",
        /found SVG\/XML/,
      );
      const xml = new TextEncoder().encode(
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
      );
      await refused(inspectImage(xml, LIMITS), "unsupported_format", /SVG/);

      const gif = new Uint8Array(
        await sharp({ create: { width: 4, height: 4, channels: 3, background: "#fff" } }).gif()
          .toBuffer(),
      );
      await refused(inspectImage(gif, LIMITS), "unsupported_format", /found GIF/);
      await refused(
        inspectImage(new TextEncoder().encode("%PDF-1.7\n"), LIMITS),
        "unsupported_format",
        /found PDF/,
      );
      const heif = new Uint8Array([
        0,
        0,
        0,
        0x18,
        ...new TextEncoder().encode("ftypheic"),
        0,
        0,
        0,
        0,
      ]);
      await refused(inspectImage(heif, LIMITS), "unsupported_format", /HEIF/);
    });

    await t.step("a 20000×20000 PNG bomb is refused from its header", async () => {
      const bomb = pngBomb(20000, 20000);
      assert.ok(bomb.length < 100_000, `bomb should be tiny, is ${bomb.length} bytes`);
      const meta = await sharp(bomb, { limitInputPixels: false }).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ["png", 20000, 20000]);
      await refused(
        inspectImage(bomb, { maxBytes: 1_000_000, maxPixels: 100_000_000 }),
        "too_many_pixels",
        /20000×20000 = 400000000 pixels exceeds the limit of 100000000/,
      );
    });

    await t.step("corrupt header and corrupt scan data", async () => {
      const garbage = new Uint8Array(2048);
      garbage.set([0xff, 0xd8, 0xff, 0xe0]);
      for (let i = 4; i < garbage.length; i++) garbage[i] = (i * 7919) & 0xff;
      await refused(inspectImage(garbage, LIMITS), "corrupt_image", /unreadable jpeg header/);

      const jpeg = await noisyJpeg();
      const damaged = jpeg.slice();
      damaged.fill(0xff, Math.floor(jpeg.length / 2), Math.floor(jpeg.length / 2) + 200);
      await refused(
        inspectImage(damaged, LIMITS, { failOn: "warning" }),
        "corrupt_image",
        /does not decode fully/,
      );
    });

    await t.step("truncated JPEG and PNG are caught by the full decode", async () => {
      const jpeg = await noisyJpeg();
      const png = new Uint8Array(
        await sharp({
          create: {
            width: 200,
            height: 150,
            channels: 3,
            background: "#000000",
            noise: { type: "gaussian", mean: 128, sigma: 30 },
          },
        })
          .png()
          .toBuffer(),
      );
      for (const [name, bytes] of [["jpeg", jpeg], ["png", png]] as const) {
        const cut = bytes.slice(0, Math.floor(bytes.length * 0.6));
        // The header alone is fine: only decoding every pixel finds the missing data.
        assert.equal((await inspectImage(cut, LIMITS, { decode: false })).format, name);
        await refused(
          inspectImage(cut, LIMITS, { failOn: "truncated" }),
          "corrupt_image",
          /does not decode fully/,
        );
        await refused(inspectImage(cut, LIMITS), "corrupt_image");
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("EXIF orientation", async (t) => {
  // Stored pixels: 60×30, a red 10×10 marker in the stored top-left corner.
  const stored = await sharp({
    create: { width: 60, height: 30, channels: 3, background: "#ffffff" },
  })
    .composite([{
      input: await sharp({ create: { width: 10, height: 10, channels: 3, background: "#ff0000" } })
        .png().toBuffer(),
      left: 0,
      top: 0,
    }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const bytes = new Uint8Array(stored);

  await t.step("inspect reports size after orientation (6 swaps)", async () => {
    const info = await inspectImage(bytes, LIMITS);
    assert.deepEqual([info.width, info.height, info.orientation], [30, 60, 6]);
  });

  await t.step(
    "normalizeOrientation applies it: pixels turned 90° clockwise, tag gone",
    async () => {
      const upright = await normalizeOrientation(bytes);
      assert.notEqual(upright, bytes);
      const meta = await sharp(upright).metadata();
      assert.deepEqual([meta.width, meta.height, meta.orientation ?? 1], [30, 60, 1]);
      const { data, info } = await sharp(upright).raw().toBuffer({ resolveWithObject: true });
      const px = (x: number, y: number) =>
        Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
      // Orientation 6 displays the stored top-left at the top-right.
      const [r, g, b] = px(25, 4);
      assert.ok(r > 200 && g < 60 && b < 60, `expected red at the top-right, found ${r},${g},${b}`);
      const [r2, g2, b2] = px(4, 4);
      assert.ok(
        r2 > 200 && g2 > 200 && b2 > 200,
        `expected white at the top-left, found ${r2},${g2},${b2}`,
      );
      assert.equal((await inspectImage(upright, LIMITS)).orientation, 1);
    },
  );

  await t.step("orientation 1 or none: same bytes, or only the EXIF block removed", async () => {
    const plain = await solid(8, 8, "jpeg");
    assert.equal(await normalizeOrientation(plain), plain);
    const one = new Uint8Array(
      await sharp(plain).withMetadata({ orientation: 1 }).jpeg().toBuffer(),
    );
    assert.equal(await normalizeOrientation(one, { keepMetadata: true }), one);
    // By default the EXIF block goes, losslessly: the very same pixels.
    const stripped = await normalizeOrientation(one);
    assert.ok(stripped.byteLength < one.byteLength);
    assert.equal((await sharp(stripped).metadata()).exif, undefined);
    assert.deepEqual(
      await sharp(stripped).raw().toBuffer(),
      await sharp(one).raw().toBuffer(),
    );
  });

  await t.step("sniffFormat", () => {
    assert.equal(sniffFormat(new Uint8Array([0x49, 0x49, 42, 0])), "tiff");
    assert.equal(sniffFormat(new Uint8Array([0x4d, 0x4d, 0, 42])), "tiff");
    assert.equal(sniffFormat(new Uint8Array([0xff, 0xd8])), null);
    assert.equal(sniffFormat(new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 ")), "webp");
    assert.equal(sniffFormat(new TextEncoder().encode("RIFF\0\0\0\0WAVEfmt ")), null);
  });
});

Deno.test("inspectImage refuses truncated images while other decodes run at the same time", async () => {
  const noisy = async (format: "png" | "jpeg") => {
    const img = sharp({
      create: {
        width: 90,
        height: 60,
        channels: 3,
        background: "#000000",
        noise: { type: "gaussian", mean: 128, sigma: 30 },
      },
    });
    return new Uint8Array(await (format === "png" ? img.png() : img.jpeg()).toBuffer());
  };
  // sharp's stats() lost about one loader error in six under this load; 32 cut files at 4 at a
  // time (next to 4 good ones) made the old check accept at least one almost every run.
  let accepted = 0;
  for (let round = 0; round < 8; round++) {
    const whole = await Promise.all([noisy("png"), noisy("jpeg"), noisy("png"), noisy("jpeg")]);
    const cut = whole.map((b, k) => b.slice(0, Math.floor(b.length * (0.3 + 0.15 * k))));
    const results = await Promise.allSettled([
      ...cut.map((b, k) => inspectImage(b, LIMITS, { name: `cut-${round}-${k}` })),
      ...whole.map((b, k) => inspectImage(b, LIMITS, { name: `whole-${round}-${k}` })),
    ]);
    results.forEach((r, k) => {
      if (k < 4) {
        if (r.status === "fulfilled") accepted++;
        else {
          assert.ok(r.reason instanceof ImageError);
          assert.equal(r.reason.code, "corrupt_image", r.reason.message);
        }
      } else {
        assert.equal(r.status, "fulfilled", "every whole image passes");
      }
    });
  }
  assert.equal(accepted, 0, `${accepted} of 32 truncated images were accepted`);
});

Deno.test("published images carry no EXIF/GPS, rotated or not, unless kept on purpose", async (t) => {
  const exif = {
    IFD0: { Copyright: "Ann Example", Artist: "Ann Example" },
    IFD3: { GPSLatitudeRef: "N", GPSLatitude: "51/1 30/1 0/1" },
  };
  const base = sharp({
    create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 30 } },
  });
  const cases: [string, Uint8Array][] = [];
  for (const orientation of [1, 6]) {
    for (const format of ["jpeg", "png", "webp"] as const) {
      const buf = await base.clone().withExif(exif).withMetadata({ orientation })
        .toFormat(format).toBuffer();
      cases.push([`${format}, orientation ${orientation}`, new Uint8Array(buf)]);
    }
  }
  for (const [label, bytes] of cases) {
    await t.step(`${label}: stripped by default, kept when asked`, async () => {
      const before = await sharp(bytes).metadata();
      assert.ok(before.exif, `the fixture has EXIF (${label})`);
      assert.ok(new TextDecoder("latin1").decode(before.exif).includes("Ann Example"));
      const out = await normalizeOrientation(bytes);
      const after = await sharp(out).metadata();
      assert.equal(after.exif, undefined, `EXIF left in ${label}`);
      assert.equal(after.xmp, undefined);
      assert.ok(!new TextDecoder("latin1").decode(out).includes("Ann Example"));
      // Same upright picture either way.
      const upright = before.orientation === 6 ? [48, 64] : [64, 48];
      assert.deepEqual([after.width, after.height], upright);
      const kept = await sharp(await normalizeOrientation(bytes, { keepMetadata: true }))
        .metadata();
      assert.ok(kept.exif, `keepMetadata keeps EXIF (${label})`);
      assert.ok(new TextDecoder("latin1").decode(kept.exif).includes("Ann Example"));
    });
  }
  await t.step("an image without personal metadata comes back as the same bytes", async () => {
    const plain = new Uint8Array(await base.clone().jpeg().toBuffer());
    assert.equal(await normalizeOrientation(plain), plain);
  });
});

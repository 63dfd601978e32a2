import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import zlib from "node:zlib";
import sharp from "sharp";
import { letterboxRgb } from "./letterbox_tensor.ts";
import { ImageDecodeError } from "./resizer.ts";
import { SharpResizer } from "./sharp_resizer.ts";
import { parseVariantSpecs } from "./variant_spec.ts";

const SVG = new TextEncoder().encode(
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>',
);

/** A tiny valid PNG whose header says width × height (zeros, 1 bit). */
function pngBomb(width: number, height: number): Uint8Array {
  const idat = zlib.deflateSync(new Uint8Array((1 + Math.ceil(width / 8)) * height), { level: 9 });
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
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr[8] = 1;
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

function refused(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ImageDecodeError, String(err));
    assert.match(err.message, pattern);
    return true;
  };
}

Deno.test("one decode policy on every decode path after ingest", async (t) => {
  const gif = new Uint8Array(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: "#f00" } }).gif()
      .toBuffer(),
  );
  const bomb = pngBomb(30000, 30000);
  const dir = await mkdtemp(join(tmpdir(), "sluice-decode-policy-"));
  const resizer = new SharpResizer();
  const specs = parseVariantSpecs([{ name: "v", width: 32, height: 32, mode: "letterbox" }]);
  try {
    for (
      const [label, bytes, pattern] of [
        ["SVG", SVG, /format svg, not one of jpeg, png, webp, tiff/],
        ["GIF", gif, /format gif, not one of/],
        ["a 30000×30000 PNG bomb", bomb, /30000×30000 pixels, over the limit|exceeds pixel limit/],
      ] as const
    ) {
      await t.step(`normalize's render path refuses ${label}`, async () => {
        await assert.rejects(resizer.render(bytes, specs), refused(pattern));
      });
      await t.step(`infer's letterbox (--input / @list) refuses ${label} from a file`, async () => {
        const path = join(dir, label.replace(/\W+/g, "_"));
        await writeFile(path, bytes);
        await assert.rejects(letterboxRgb(path, 64), refused(pattern));
      });
    }
    await t.step("allowed formats still render", async () => {
      const png = new Uint8Array(
        await sharp({ create: { width: 40, height: 20, channels: 3, background: "#0f0" } }).png()
          .toBuffer(),
      );
      const [v] = await resizer.render(png, specs);
      assert.equal((await sharp(v.bytes).metadata()).width, 32);
    });
  } finally {
    await resizer.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * The `Resizer` contract: what every resizer (sharp on the CPU, the torch worker on a GPU or,
 * for tests, its CPU device) must do, run as steps of one test per implementation.
 *
 * - each spec is rendered, in order, at the size and with the transform `planVariant` plans
 *   for the EXIF-oriented source; the bytes decode to that size in the spec's format, and
 *   `sha256` is the hash of the bytes;
 * - a file path and the same bytes give the same variants;
 * - EXIF orientation is applied (a rotated JPEG renders upright);
 * - a coloured box lands where `boxToVariant` says, within a pixel or two;
 * - undecodable input fails with `ImageDecodeError` (`decode_failed`); the resizer goes on;
 * - `close()` is idempotent.
 *
 * @example
 * ```ts
 * Deno.test("sharp resizer contract", (t) => resizerContract(t, () => new SharpResizer()));
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import type { BBox } from "../../../common/manifest/mod.ts";
import {
  decode,
  encode,
  fillRect,
  findColouredBox,
  orientBox,
  texturedGrey,
} from "../../../common/images/_test_images.ts";
import { ImageDecodeError, type Resizer } from "../../../common/images/resizer.ts";
import { parseVariantSpecs, VARIANT_MODES } from "../../../common/images/variant_spec.ts";
import { boxToVariant, planVariant } from "../../../common/images/variant_transform.ts";

/** Every mode at a square and a wide box, in three formats. */
const SPECS = parseVariantSpecs([
  ...VARIANT_MODES.map((mode) => ({
    name: `${mode}-256`,
    width: 256,
    height: 256,
    mode,
    format: "png" as const,
  })),
  ...VARIANT_MODES.map((mode) => ({
    name: `${mode}-200x120`,
    width: 200,
    height: 120,
    mode,
    format: "jpeg" as const,
  })),
  { name: "webp-fit", width: 160, height: 160, mode: "fit" as const, format: "webp" as const },
]);

function assertNear(found: BBox | null, expected: BBox | null, tol: number, what: string) {
  assert.ok(found && expected, `${what}: expected ${expected}, found ${found}`);
  for (let i = 0; i < 4; i++) {
    assert.ok(
      Math.abs(found[i] - expected[i]) <= tol,
      `${what}: [${i}] expected ${expected[i].toFixed(2)}, found ${found[i].toFixed(2)}`,
    );
  }
}

/**
 * Runs the contract against the resizer `open` returns (closed at the end).
 *
 * @example
 * ```ts
 * Deno.test("gpu resizer contract", (t) => resizerContract(t, () => GpuResizer.start({ device: "cpu" })));
 * ```
 */
export async function resizerContract(
  t: Deno.TestContext,
  open: () => Resizer | Promise<Resizer>,
): Promise<void> {
  const resizer = await open();
  const dir = await Deno.makeTempDir({ prefix: "sluice-resizer-contract-" });
  try {
    const box: BBox = [300, 120, 160, 90];
    const source = await encode(fillRect(texturedGrey(803, 601), box, [230, 20, 20]), "png");

    await t.step("each spec in order, at the planned size and transform, hashed", async () => {
      const out = await resizer.render(source, SPECS);
      assert.deepEqual(out.map((v) => v.spec.name), SPECS.map((s) => s.name));
      for (const [i, v] of out.entries()) {
        const spec = SPECS[i];
        assert.deepEqual(v.transform, planVariant(803, 601, spec), spec.name);
        assert.deepEqual([v.width, v.height], [v.transform.width, v.transform.height]);
        assert.equal(v.format, spec.format);
        const meta = await sharp(v.bytes).metadata();
        assert.equal(meta.format, spec.format, `${spec.name}: encoded format`);
        assert.deepEqual([meta.width, meta.height], [v.width, v.height], spec.name);
        assert.equal(v.sha256, createHash("sha256").update(v.bytes).digest("hex"));
      }
    });

    await t.step("a box lands where boxToVariant says", async () => {
      const out = await resizer.render(source, SPECS.filter((s) => s.format === "png"));
      for (const v of out) {
        const expected = boxToVariant(v.transform, box);
        assertNear(findColouredBox(await decode(v.bytes), "red"), expected, 2, v.spec.name);
      }
    });

    await t.step("a file path and its bytes give the same variants", async () => {
      const path = join(dir, "source.png");
      await Deno.writeFile(path, source);
      const specs = SPECS.filter((s) => s.format === "png");
      const fromPath = await resizer.render(path, specs);
      const fromBytes = await resizer.render(source, specs);
      assert.deepEqual(fromPath.map((v) => v.sha256), fromBytes.map((v) => v.sha256));
    });

    await t.step("EXIF orientation is applied before planning", async () => {
      // Stored 400×300 with orientation 6 (rotate 90° clockwise): upright it is 300×400.
      const stored: BBox = [40, 30, 100, 60];
      const rotated = await encode(
        fillRect(texturedGrey(400, 300), stored, [230, 20, 20]),
        "jpeg",
        {
          orientation: 6,
        },
      );
      const spec = parseVariantSpecs([
        { name: "o", width: 150, height: 200, mode: "stretch", format: "png" },
      ]);
      const [v] = await resizer.render(rotated, spec);
      assert.deepEqual([v.transform.srcWidth, v.transform.srcHeight], [300, 400]);
      const upright = orientBox(6, 400, 300, stored);
      assertNear(
        findColouredBox(await decode(v.bytes), "red"),
        boxToVariant(v.transform, upright),
        3,
        "rotated box",
      );
    });

    await t.step("undecodable input is ImageDecodeError; the resizer goes on", async () => {
      for (const bad of [new TextEncoder().encode("not an image"), source.slice(0, 40)]) {
        await assert.rejects(
          () => resizer.render(bad, SPECS.slice(0, 1)),
          (e: unknown) => e instanceof ImageDecodeError && e.code === "decode_failed",
        );
      }
      const [ok] = await resizer.render(source, SPECS.slice(0, 1));
      assert.equal(ok.width, 256);
    });
  } finally {
    await resizer.close();
    await resizer.close(); // idempotent
    await Deno.remove(dir, { recursive: true });
  }
}

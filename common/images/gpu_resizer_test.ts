/**
 * The GPU resizer's worker, run for real with torch. On machines without CUDA the same worker
 * runs with `device: "cpu"`: protocol, orientation, crop/pad and transforms are all exercised;
 * only the device differs. Skipped (with the reason) when no python3 with torch is installed.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import type { BBox } from "../manifest/mod.ts";
import {
  decode,
  encode,
  fillRect,
  findColouredBox,
  orientBox,
  texturedGrey,
} from "./_test_images.ts";
import { GpuResizer, listNvidiaGpus, probeGpu } from "./gpu_resizer.ts";
import { ImageDecodeError, RenderError, ResizerUnavailableError } from "./resizer.ts";
import { SharpResizer } from "./sharp_resizer.ts";
import { parseVariantSpecs, VARIANT_MODES } from "./variant_spec.ts";
import { boxToVariant } from "./variant_transform.ts";
import { skipUnless } from "../../tests/harness/requirement.ts";

// SLUICE_TEST_PYTHON points elsewhere only to prove that CI fails without torch.
const PYTHON = Deno.env.get("SLUICE_TEST_PYTHON") ?? "/usr/bin/python3";
let torchCheck: Deno.CommandOutput | null = null;
try {
  torchCheck = await new Deno.Command(PYTHON, {
    args: ["-c", "import torch, torchvision"],
    stdout: "null",
    stderr: "null",
  }).output();
} catch {
  torchCheck = null; // no such interpreter
}
const noTorch = skipUnless(
  "gpu_resizer_test worker tests",
  torchCheck?.success ? null : `${PYTHON} cannot import torch + torchvision`,
);

function assertBoxNear(found: BBox | null, expected: BBox | null, tol: number, what: string) {
  assert.ok(
    found && expected,
    `${what}: expected ${JSON.stringify(expected)}, found ${JSON.stringify(found)}`,
  );
  const f = [found[0], found[1], found[0] + found[2], found[1] + found[3]];
  const e = [expected[0], expected[1], expected[0] + expected[2], expected[1] + expected[3]];
  for (let i = 0; i < 4; i++) {
    assert.ok(
      Math.abs(f[i] - e[i]) <= tol,
      `${what}: edge ${i} expected ${e[i].toFixed(2)}, found ${f[i].toFixed(2)}`,
    );
  }
}

Deno.test({
  name: "GPU resizer worker (torch, device cpu here)",
  ignore: noTorch,
  async fn(t) {
    const gpu = await GpuResizer.start({ python: PYTHON, device: "cpu" });
    const cpu = new SharpResizer();
    try {
      assert.equal(gpu.name, "gpu:cpu");
      assert.match(gpu.versions.torch, /^\d+\.\d+/);

      await t.step(
        "same sizes and transforms as the CPU resizer; boxes land where boxToVariant says",
        async () => {
          const box: BBox = [900, 250, 300, 200];
          const src = await encode(fillRect(texturedGrey(1603, 1201), box, [230, 20, 20]));
          const specs = parseVariantSpecs(
            VARIANT_MODES.flatMap((mode) => [
              { name: `${mode}-640`, width: 640, height: 640, mode, format: "png" as const },
              { name: `${mode}-300x200`, width: 300, height: 200, mode, format: "png" as const },
            ]),
          );
          const g = await gpu.render(src, specs);
          const c = await cpu.render(src, specs);
          for (let i = 0; i < specs.length; i++) {
            assert.deepEqual(g[i].transform, c[i].transform, specs[i].name);
            const gi = await decode(g[i].bytes), ci = await decode(c[i].bytes);
            assert.deepEqual([gi.width, gi.height], [ci.width, ci.height]);
            assertBoxNear(
              findColouredBox(gi, "red"),
              boxToVariant(g[i].transform, box),
              1,
              `gpu ${specs[i].name}`,
            );
            // Different resampling kernels, same picture: mean absolute difference stays small.
            let diff = 0;
            for (let k = 0; k < gi.data.length; k++) diff += Math.abs(gi.data[k] - ci.data[k]);
            assert.ok(
              diff / gi.data.length < 6,
              `${specs[i].name}: mean |gpu - cpu| = ${diff / gi.data.length}`,
            );
          }
          // Letterbox padding has the spec's colour.
          const lb = await decode(g[2].bytes);
          assert.deepEqual(Array.from(lb.data.subarray(0, 3)), [114, 114, 114]);
        },
      );

      await t.step(
        "enlarging: worker and CPU both put drawn edges on the transform (±0.25 px)",
        async () => {
          const box: BBox = [41, 30, 77, 61];
          const pixels = fillRect(texturedGrey(203, 151), box, [230, 20, 20]);
          const specs = parseVariantSpecs([
            { name: "lb", width: 640, height: 640, mode: "letterbox", format: "png" },
            { name: "cv", width: 300, height: 200, mode: "cover", format: "png" },
          ]);
          for (const format of ["jpeg", "png"] as const) {
            const src = await encode(pixels, format);
            const g = await gpu.render(src, specs), c = await cpu.render(src, specs);
            for (let i = 0; i < specs.length; i++) {
              const expected = boxToVariant(g[i].transform, box);
              const what = `${format} ${specs[i].name}`;
              assertBoxNear(findColouredBox(await decode(g[i].bytes), "red"), expected, 0.25, what);
              assertBoxNear(findColouredBox(await decode(c[i].bytes), "red"), expected, 0.25, what);
            }
          }
        },
      );

      await t.step("EXIF orientation applied once on the device, all 8 orientations", async () => {
        const W = 400, H = 240;
        const box: BBox = [40, 30, 100, 60];
        const pixels = fillRect(texturedGrey(W, H), box, [230, 20, 20]);
        const spec = parseVariantSpecs([{
          name: "f",
          width: 200,
          height: 200,
          mode: "fit",
          format: "png",
        }]);
        for (let o = 1; o <= 8; o++) {
          const [v] = await gpu.render(await encode(pixels, "jpeg", { orientation: o }), spec);
          const found = findColouredBox(await decode(v.bytes), "red");
          assertBoxNear(
            found,
            boxToVariant(v.transform, orientBox(o, W, H, box)),
            1,
            `orientation ${o}`,
          );
        }
      });

      await t.step(
        "non-JPEG input is decoded once by sharp and resized by the worker",
        async () => {
          const src = await encode(
            fillRect(texturedGrey(500, 300), [100, 100, 100, 50], [230, 20, 20]),
            "png",
          );
          const [v] = await gpu.render(
            src,
            parseVariantSpecs([{
              name: "c",
              width: 120,
              height: 120,
              mode: "cover",
              format: "webp",
            }]),
          );
          assert.equal((await sharp(v.bytes).metadata()).format, "webp");
          assertBoxNear(
            findColouredBox(await decode(v.bytes), "red"),
            boxToVariant(v.transform, [100, 100, 100, 50]),
            1.5,
            "png",
          );
        },
      );

      await t.step("concurrent renders are matched to their replies", async () => {
        const inputs = await Promise.all(
          [100, 150, 200, 250].map((w) => encode(texturedGrey(w, 100))),
        );
        const spec = parseVariantSpecs([{ name: "s", width: 64, height: 64, mode: "fit" }]);
        const out = await Promise.all(inputs.map((b) => gpu.render(b, spec)));
        assert.deepEqual(out.map(([v]) => [v.transform.srcWidth, v.width, v.height]), [
          [100, 64, 64],
          [150, 64, 43],
          [200, 64, 32],
          [250, 64, 26],
        ]);
      });

      await t.step(
        "undecodable input: ImageDecodeError, and the worker keeps serving",
        async () => {
          const spec = parseVariantSpecs([{ name: "s", width: 64, height: 64 }]);
          await assert.rejects(
            () => gpu.render(new TextEncoder().encode("nope"), spec),
            ImageDecodeError,
          );
          // A JPEG whose header reads but whose data is cut: the worker refuses it, sharp's fallback too.
          const cut = (await encode(texturedGrey(300, 200))).slice(0, 700);
          await assert.rejects(() => gpu.render(cut, spec), (e: unknown) => {
            assert.ok(e instanceof ImageDecodeError, String(e));
            return true;
          });
          const [v] = await gpu.render(await encode(texturedGrey(80, 80)), spec);
          assert.equal(v.width, 64);
        },
      );
    } finally {
      await gpu.close();
      await cpu.close();
    }
    await gpu.close(); // idempotent
    await assert.rejects(
      () =>
        gpu.render(
          new Uint8Array([0xff, 0xd8, 0xff, 0]),
          parseVariantSpecs([{ name: "s", width: 1, height: 1 }]),
        ),
      RenderError,
    );
  },
});

Deno.test("GPU worker start-up failures say why", async (t) => {
  await t.step("a missing python", async () => {
    await assert.rejects(
      () => GpuResizer.start({ python: "/nonexistent/python3" }),
      (e: unknown) => {
        assert.ok(e instanceof ResizerUnavailableError);
        assert.equal(e.code, "resizer_unavailable");
        assert.match(e.message, /could not start \/nonexistent\/python3/);
        return true;
      },
    );
  });
  await t.step({
    name: "a device torch cannot use",
    ignore: noTorch,
    fn: async () => {
      await assert.rejects(
        () => GpuResizer.start({ python: PYTHON, device: "nosuchdevice" }),
        (e: unknown) => {
          assert.ok(e instanceof ResizerUnavailableError);
          assert.match(e.message, /device nosuchdevice\): not usable: RuntimeError/);
          return true;
        },
      );
    },
  });
  await t.step("nvidia-smi missing or failing", async () => {
    assert.deepEqual(await listNvidiaGpus("/nonexistent/nvidia-smi"), {
      available: false,
      reason: "/nonexistent/nvidia-smi not found",
    });
    const failing = await listNvidiaGpus("false");
    assert.equal(failing.available, false);
    assert.match(failing.reason, /^false -L failed: exit code 1$/);
    const dir = await Deno.makeTempDir({ prefix: "sluice-smi-" });
    try {
      const hanging = `${dir}/nvidia-smi`;
      await Deno.writeTextFile(hanging, "#!/bin/sh\nexec sleep 30\n", { mode: 0o755 });
      const hung = await listNvidiaGpus(hanging, 300);
      assert.deepEqual(hung, {
        available: false,
        reason: `${hanging} -L did not answer within 300 ms`,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    const probe = await probeGpu({ nvidiaSmi: "/nonexistent/nvidia-smi" });
    assert.equal(probe.available, false);
  });
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeDetections, DetectorOutputError, type DetectorOutputs } from "./decode.ts";

const PYTHON = "/usr/bin/python3";
const DECODE_PY = new URL("../../stages/train/trainer/decode.py", import.meta.url).pathname;
const CI = Deno.env.get("CI") === "true";

async function pythonHas(modules: string): Promise<boolean> {
  try {
    const r = await new Deno.Command(PYTHON, {
      args: ["-c", `import ${modules}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}
const hasNumpy = await pythonHas("numpy");
if (!hasNumpy && !CI) console.warn(`skipping Python parity: ${PYTHON} with numpy not found`);

function tensor(data: Float32Array, dims: number[]) {
  return { data, dims };
}

/** One image, `c` classes, h × w map with everything zero except what `set` writes. */
function outputs(
  c: number,
  h: number,
  w: number,
  set: (hm: Float32Array, size: Float32Array, off: Float32Array) => void,
): DetectorOutputs {
  const hm = new Float32Array(c * h * w), size = new Float32Array(2 * h * w);
  const off = new Float32Array(2 * h * w);
  set(hm, size, off);
  return {
    heatmap: tensor(hm, [1, c, h, w]),
    size: tensor(size, [1, 2, h, w]),
    offset: tensor(off, [1, 2, h, w]),
  };
}

Deno.test("decodeDetections", async (t) => {
  const h = 8, w = 8, plane = h * w;
  const at = (y: number, x: number) => y * w + x;

  await t.step("a single peak becomes a box in input pixels", () => {
    const out = outputs(2, h, w, (hm, size, off) => {
      hm[plane + at(3, 5)] = 0.9;
      size[at(3, 5)] = 10;
      size[plane + at(3, 5)] = 6;
      off[at(3, 5)] = 0.25;
      off[plane + at(3, 5)] = 0.5;
    });
    const [dets] = decodeDetections(out);
    assert.deepEqual(dets, [{ classId: 1, score: Math.fround(0.9), bbox: [16, 11, 10, 6] }]);
  });

  await t.step("only 3×3 maxima count; equal neighbours are both peaks", () => {
    const out = outputs(1, h, w, (hm, size) => {
      hm[at(2, 2)] = 0.8;
      hm[at(2, 3)] = 0.5; // beside a higher cell: not a peak
      hm[at(6, 1)] = 0.6;
      hm[at(6, 2)] = 0.6; // plateau: both cells survive the max-pool test
      size.fill(4);
    });
    const [dets] = decodeDetections(out, { nmsIou: 1 });
    assert.deepEqual(dets.map((d) => d.score), [
      0.800000011920929,
      0.6000000238418579,
      0.6000000238418579,
    ]);
    // Ties keep flat-index order: (6,1) before (6,2).
    assert.deepEqual(dets.slice(1).map((d) => d.bbox[0]), [2, 6]); // centres 4 and 8, width 4
  });

  await t.step("NMS is per class", () => {
    const out = outputs(2, h, w, (hm, size) => {
      hm[at(4, 4)] = 0.9; // class 0
      hm[at(4, 5)] = 0.0; // keeps (4,4) and (4,6) separate peaks
      hm[at(4, 6)] = 0.7; // class 0, heavily overlapping the first: suppressed
      hm[plane + at(4, 6)] = 0.6; // class 1 at the same place: kept
      size.fill(24);
    });
    const [dets] = decodeDetections(out);
    assert.deepEqual(dets.map((d) => [d.classId, d.score]), [[0, Math.fround(0.9)], [
      1,
      Math.fround(0.6),
    ]]);
    const [loose] = decodeDetections(out, { nmsIou: 0.9 });
    assert.equal(loose.length, 3);
  });

  await t.step("threshold, top-k and clipping", () => {
    const out = outputs(1, h, w, (hm, size) => {
      hm[at(0, 0)] = 0.95;
      hm[at(4, 4)] = 0.5;
      hm[at(6, 6)] = 0.2;
      size.fill(12);
    });
    const [all] = decodeDetections(out);
    assert.equal(all.length, 3);
    // The corner box is clipped to the image: centre (0, 0), 12 × 12 → [0, 0, 6, 6].
    assert.deepEqual(all[0].bbox, [0, 0, 6, 6]);
    assert.deepEqual(decodeDetections(out, { scoreThreshold: 0.3 })[0].length, 2);
    assert.deepEqual(decodeDetections(out, { topK: 1 })[0].map((d) => d.score), [
      Math.fround(0.95),
    ]);
    assert.deepEqual(decodeDetections(out, { preNmsTopK: 2 })[0].length, 2);
  });

  await t.step("wrong shapes are refused with what was expected", () => {
    const out = outputs(1, h, w, () => {});
    const bad = { ...out, size: tensor(new Float32Array(2 * 4 * 4), [1, 2, 4, 4]) };
    assert.throws(() => decodeDetections(bad), (e: unknown) => {
      assert.ok(e instanceof DetectorOutputError);
      assert.equal(e.code, "invalid_model_output");
      assert.match(e.message, /size: expected dims \[1,2,8,8\], found \[1,2,4,4\]/);
      return true;
    });
  });
});

/** Smooth random maps with blobs, plateaus and noise, like a half-trained detector's. */
function randomOutputs(n: number, c: number, h: number, w: number, seed: number) {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const hm = new Float32Array(n * c * h * w), size = new Float32Array(n * 2 * h * w);
  const off = new Float32Array(n * 2 * h * w);
  for (let i = 0; i < hm.length; i++) hm[i] = rnd() * 0.08;
  for (let b = 0; b < n * c * 6; b++) {
    const base = Math.floor(rnd() * n * c) * h * w;
    const cy = rnd() * h, cx = rnd() * w, amp = rnd(), sig = 0.6 + rnd() * 2;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const g = amp * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sig * sig));
        hm[base + y * w + x] = Math.max(hm[base + y * w + x], g);
      }
    }
  }
  hm[3] = hm[4] = 0.7; // an exact tie on a plateau
  for (let i = 0; i < size.length; i++) size[i] = 2 + rnd() * 40;
  for (let i = 0; i < off.length; i++) off[i] = rnd() * 1.2 - 0.1;
  return { hm, size, off };
}

Deno.test({
  name: "decodeDetections matches the Python reference decoder exactly",
  ignore: !hasNumpy && !CI,
  fn: async () => {
    if (!hasNumpy) throw new Error(`CI=true but ${PYTHON} with numpy is missing`);
    const [n, c, h, w] = [3, 3, 20, 20];
    const { hm, size, off } = randomOutputs(n, c, h, w, 12345);
    const dir = await Deno.makeTempDir({ prefix: "sluice-decode-" });
    try {
      const blobs: [string, Float32Array, number[]][] = [
        ["heatmap", hm, [n, c, h, w]],
        ["size", size, [n, 2, h, w]],
        ["offset", off, [n, 2, h, w]],
      ];
      const tensors: Record<string, { dims: number[]; offset: number; dtype: string }> = {};
      const bytes = new Uint8Array(blobs.reduce((a, b) => a + b[1].byteLength, 0));
      let at = 0;
      for (const [name, data, dims] of blobs) {
        // Float32Array is little-endian on every platform Deno runs on.
        bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
        tensors[name] = { dims, offset: at, dtype: "float32" };
        at += data.byteLength;
      }
      await Deno.writeFile(join(dir, "t.bin"), bytes);
      await Deno.writeTextFile(join(dir, "t.json"), JSON.stringify({ tensors }));
      for (const opts of [{}, { scoreThreshold: 0.3, nmsIou: 0.3, topK: 7 }]) {
        const args = [DECODE_PY, "--tensors", join(dir, "t.json")];
        if ("topK" in opts) {
          args.push("--score-threshold", "0.3", "--nms-iou", "0.3", "--top-k", "7");
        }
        const r = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "piped" })
          .output();
        assert.ok(r.success, new TextDecoder().decode(r.stderr));
        const py: { class_id: number; score: number; bbox: number[] }[][] = JSON.parse(
          new TextDecoder().decode(r.stdout),
        );
        const ts = decodeDetections({
          heatmap: { data: hm, dims: [n, c, h, w] },
          size: { data: size, dims: [n, 2, h, w] },
          offset: { data: off, dims: [n, 2, h, w] },
        }, opts);
        const asPy = ts.map((img) =>
          img.map((d) => ({ class_id: d.classId, score: d.score, bbox: d.bbox }))
        );
        assert.ok(asPy.flat().length > 10, "the random maps should produce plenty of boxes");
        assert.deepEqual(asPy, py);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

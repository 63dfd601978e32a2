import assert from "node:assert/strict";
import { join } from "node:path";
import { type GroundTruth, meanAveragePrecision, type Prediction } from "./mean_ap.ts";

const PYTHON = "/usr/bin/python3";
const MEAN_AP_PY = new URL("../../stages/train/trainer/mean_ap.py", import.meta.url).pathname;
const CI = Deno.env.get("CI") === "true";

const hasPython = await (async () => {
  try {
    return (await new Deno.Command(PYTHON, { args: ["-c", "import json"], stdout: "null" })
      .output())
      .success;
  } catch {
    return false;
  }
})();
if (!hasPython && !CI) console.warn(`skipping the Python cross-check: ${PYTHON} not found`);

type Box = [number, number, number, number];

function gt(boxes: [number, number, Box][], categories = [1, 2]): GroundTruth {
  const images = [...new Set(boxes.map((b) => b[0]))].map((id) => ({ id }));
  return {
    images,
    annotations: boxes.map(([image_id, category_id, bbox]) => ({ image_id, category_id, bbox })),
    categories: categories.map((id) => ({ id, name: `c${id}` })),
  };
}

function det(image_id: number, category_id: number, bbox: Box, score: number): Prediction {
  return { image_id, category_id, bbox, score };
}

const close = (a: number, b: number, msg?: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${msg ?? ""} expected ${b}, found ${a}`);

Deno.test("meanAveragePrecision (hand-checked cases)", async (t) => {
  const A: Box = [10, 10, 40, 40], B: Box = [100, 100, 30, 60];

  await t.step("perfect predictions score 1", () => {
    const g = gt([[1, 1, A], [1, 2, B], [2, 1, B]]);
    const r = meanAveragePrecision(g, [det(1, 1, A, 0.9), det(1, 2, B, 0.8), det(2, 1, B, 0.7)]);
    close(r.map50, 1);
    close(r.map50_95, 1);
    assert.equal(r.apDefinition, "coco-101-point");
  });

  await t.step("one miss: recall 0.5 at precision 1 is 51 of 101 recall points", () => {
    const g = gt([[1, 1, A], [2, 1, B]], [1]);
    const r = meanAveragePrecision(g, [det(1, 1, A, 0.9)]);
    close(r.map50, 51 / 101);
  });

  await t.step("a false positive ranked above the only hit halves AP", () => {
    const g = gt([[1, 1, A]], [1]);
    const r = meanAveragePrecision(g, [det(1, 1, B, 0.9), det(1, 1, A, 0.8)]);
    close(r.map50, 0.5);
  });

  await t.step("a duplicate counts as a false positive", () => {
    const g = gt([[1, 1, A], [2, 1, B]], [1]);
    // Hit, duplicate (FP), hit: precision 1 up to recall 0.5, then 2/3.
    const r = meanAveragePrecision(g, [det(1, 1, A, 0.9), det(1, 1, A, 0.8), det(2, 1, B, 0.7)]);
    close(r.map50, (51 + 50 * (2 / 3)) / 101);
    // Below every hit, a duplicate changes nothing.
    const late = meanAveragePrecision(g, [det(1, 1, A, 0.9), det(2, 1, B, 0.8), det(1, 1, A, 0.1)]);
    close(late.map50, 1);
  });

  await t.step("class confusion: right box, wrong class", () => {
    const g = gt([[1, 1, A], [1, 2, B]]);
    // A is called class 2 (a false positive of class 2 above its true hit); class 1 has nothing.
    const r = meanAveragePrecision(g, [det(1, 2, A, 0.9), det(1, 2, B, 0.8)]);
    assert.deepEqual(r.perClass.map((c) => c.ap50), [0, 0.5]);
    close(r.map50, 0.25);
  });

  await t.step("IoU 0.62 passes 0.50, 0.55, 0.60 and fails above", () => {
    const g = gt([[1, 1, [0, 0, 100, 100]]], [1]);
    const r = meanAveragePrecision(g, [det(1, 1, [0, 0, 100, 62], 0.9)]);
    close(r.map50, 1);
    close(r.map50_95, 0.3);
  });

  await t.step("categories without ground truth are left out; unknown images ignored", () => {
    const g = gt([[1, 1, A]], [1, 2, 3]);
    const r = meanAveragePrecision(g, [det(1, 1, A, 0.9), det(1, 3, B, 0.5), det(99, 1, B, 0.99)]);
    close(r.map50, 1);
    assert.deepEqual(r.perClass.map((c) => c.ap50 === null ? null : Math.round(c.ap50)), [
      1,
      null,
      null,
    ]);
  });

  await t.step("maxDets keeps only the best-scored detections per image and class", () => {
    const g = gt([[1, 1, A]], [1]);
    const r = meanAveragePrecision(g, [det(1, 1, B, 0.9), det(1, 1, A, 0.8)], { maxDets: 1 });
    close(r.map50, 0);
  });
});

/** A messy but deterministic set: jittered hits, misses, duplicates, wrong classes, ties. */
function randomCase(seed: number): { gt: GroundTruth; preds: Prediction[] } {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const images = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, file_name: `${i}.png` }));
  const annotations: GroundTruth["annotations"] = [];
  const preds: Prediction[] = [];
  for (const img of images) {
    const n = Math.floor(rnd() * 5);
    for (let k = 0; k < n; k++) {
      const bbox: Box = [rnd() * 250, rnd() * 250, 20 + rnd() * 80, 20 + rnd() * 80];
      const cat = 1 + Math.floor(rnd() * 3);
      annotations.push({ image_id: img.id, category_id: cat, bbox });
      const copies = rnd() < 0.15 ? 0 : rnd() < 0.2 ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        const j = () => (rnd() - 0.5) * 0.3 * bbox[2];
        preds.push({
          image_id: img.id,
          category_id: rnd() < 0.1 ? 1 + Math.floor(rnd() * 3) : cat,
          bbox: [bbox[0] + j(), bbox[1] + j(), bbox[2] * (0.8 + rnd() * 0.4), bbox[3] + j()],
          // Coarse scores so exact ties happen and the ordering rules matter.
          score: Math.round(rnd() * 20) / 20,
        });
      }
    }
    for (let k = 0; k < Math.floor(rnd() * 3); k++) {
      preds.push({
        image_id: img.id,
        category_id: 1 + Math.floor(rnd() * 3),
        bbox: [rnd() * 250, rnd() * 250, 10 + rnd() * 60, 10 + rnd() * 60],
        score: rnd(),
      });
    }
  }
  const categories = [1, 2, 3, 4].map((id) => ({ id, name: `c${id}` })); // 4 has no ground truth
  return { gt: { images, annotations, categories }, preds };
}

Deno.test({
  name: "meanAveragePrecision agrees with the trainer's Python mean_ap.py",
  ignore: !hasPython && !CI,
  fn: async () => {
    if (!hasPython) throw new Error(`CI=true but ${PYTHON} is missing`);
    const dir = await Deno.makeTempDir({ prefix: "sluice-map-" });
    try {
      for (const seed of [1, 2, 3]) {
        const { gt, preds } = randomCase(seed);
        await Deno.writeTextFile(join(dir, "gt.json"), JSON.stringify(gt));
        await Deno.writeTextFile(join(dir, "preds.json"), JSON.stringify(preds));
        const out = await new Deno.Command(PYTHON, {
          args: [
            MEAN_AP_PY,
            "--gt",
            join(dir, "gt.json"),
            "--predictions",
            join(dir, "preds.json"),
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
        const py = JSON.parse(new TextDecoder().decode(out.stdout));
        const ts = meanAveragePrecision(gt, preds);
        assert.ok(ts.map50 > 0.2 && ts.map50 < 0.95, `a non-trivial case, found ${ts.map50}`);
        assert.ok(
          Math.abs(ts.map50 - py.map50) < 1e-6,
          `map50 TS ${ts.map50} vs Python ${py.map50}`,
        );
        assert.ok(Math.abs(ts.map50_95 - py.map50_95) < 1e-6);
        assert.equal(py.ap_definition, ts.apDefinition);
        ts.perClass.forEach((c, i) => {
          const p = py.per_class[i];
          assert.equal(c.categoryId, p.category_id);
          assert.equal(c.numGt, p.num_gt);
          if (c.ap50 === null) assert.equal(p.ap50, null);
          else assert.ok(Math.abs(c.ap50 - p.ap50) < 1e-6 && Math.abs((c.ap ?? 0) - p.ap) < 1e-6);
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

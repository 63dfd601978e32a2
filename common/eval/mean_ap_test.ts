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
      for (const seed of [1, 2, 3, 4]) {
        const { gt, preds } = randomCase(seed);
        if (seed >= 3) {
          // Crowd regions on every 5th image, some with an explicit COCO area.
          gt.images.filter((_, i) => i % 5 === 0).forEach((img, i) => {
            gt.annotations.push({
              image_id: img.id,
              category_id: 1 + (i % 3),
              bbox: [20 + i, 30, 120, 90],
              iscrowd: 1,
              ...(i % 2 ? { area: 5000 } : {}),
            });
          });
        }
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
        const pyStats: Record<string, number> = {
          ap: py.stats.ap,
          ap50: py.stats.ap50,
          ap75: py.stats.ap75,
          apSmall: py.stats.ap_small,
          apMedium: py.stats.ap_medium,
          apLarge: py.stats.ap_large,
          ar1: py.stats.ar1,
          ar10: py.stats.ar10,
          ar100: py.stats.ar100,
          arSmall: py.stats.ar_small,
          arMedium: py.stats.ar_medium,
          arLarge: py.stats.ar_large,
        };
        for (const [k, v] of Object.entries(ts.stats)) {
          assert.ok(
            Math.abs(v - pyStats[k]) < 1e-9,
            `seed ${seed} ${k}: TS ${v} vs Python ${pyStats[k]}`,
          );
        }
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

/** Runs the trainer's mean_ap.py on a case; null when python3 is absent outside CI. */
async function pythonEval(g: GroundTruth, preds: Prediction[]) {
  if (!hasPython) {
    if (CI) throw new Error(`CI=true but ${PYTHON} is missing`);
    return null;
  }
  const dir = await Deno.makeTempDir({ prefix: "sluice-map-" });
  try {
    await Deno.writeTextFile(join(dir, "gt.json"), JSON.stringify(g));
    await Deno.writeTextFile(join(dir, "p.json"), JSON.stringify(preds));
    const out = await new Deno.Command(PYTHON, {
      args: [MEAN_AP_PY, "--gt", join(dir, "gt.json"), "--predictions", join(dir, "p.json")],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("COCOeval rules: crowd regions, area ranges, maxDets (hand-computed)", async (t) => {
  await t.step(
    "5 annotations (one crowd), 7 detections: 0.750, not 0.700 as a false positive",
    async () => {
      // Class 1: two boxes, both found. Class 2: two boxes and a 100x100 crowd region.
      const crowd: Box = [100, 100, 100, 100];
      const g: GroundTruth = {
        images: [{ id: 1 }],
        categories: [{ id: 1 }, { id: 2 }],
        annotations: [
          { image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] },
          { image_id: 1, category_id: 1, bbox: [40, 0, 20, 20] },
          { image_id: 1, category_id: 2, bbox: [0, 40, 20, 20] },
          { image_id: 1, category_id: 2, bbox: [40, 40, 20, 20] },
          { image_id: 1, category_id: 2, bbox: crowd, iscrowd: 1 },
        ],
      };
      const preds = [
        det(1, 1, [0, 0, 20, 20], 0.9),
        det(1, 1, [40, 0, 20, 20], 0.8),
        // Inside the crowd region: standard IoU 400 / 10000 = 0.04, crowd IoU 400 / 400 = 1.
        det(1, 2, [150, 150, 20, 20], 0.95),
        det(1, 2, [300, 300, 20, 20], 0.9), // false positive
        det(1, 2, [0, 40, 20, 20], 0.85),
        det(1, 2, [300, 0, 20, 20], 0.7), // false positive
        det(1, 2, [40, 40, 20, 20], 0.6),
      ];
      const r = meanAveragePrecision(g, preds);
      // Class 1: AP 1. Class 2 (2 boxes; the crowd match is neither TP nor FP): FP, TP, FP, TP →
      // precision 0, 1/2, 1/3, 1/2 → monotone 1/2 everywhere, recall reaches 1: AP = 0.5.
      // Mean (1 + 0.5) / 2 = 0.75 at every IoU threshold (exact boxes).
      close(r.map50, 0.75);
      close(r.map50_95, 0.75);
      assert.deepEqual(r.perClass.map((c) => [c.numGt, c.ap50]), [[2, 1], [2, 0.5]]);
      const py = await pythonEval(g, preds);
      if (py) {
        close(py.map50, 0.75, "the trainer's mean_ap.py");
        close(py.map50_95, 0.75, "the trainer's mean_ap.py");
      }
      // Had the crowd detection been a false positive: FP, FP, TP, FP, TP → 2/5 everywhere → 0.7.
    },
  );

  await t.step("one crowd region absorbs any number of detections", () => {
    const g: GroundTruth = {
      images: [{ id: 1 }],
      categories: [{ id: 1 }],
      annotations: [
        { image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] },
        { image_id: 1, category_id: 1, bbox: [100, 100, 100, 100], iscrowd: 1 },
      ],
    };
    const r = meanAveragePrecision(g, [
      det(1, 1, [110, 110, 30, 30], 0.95),
      det(1, 1, [150, 150, 30, 30], 0.9),
      det(1, 1, [120, 160, 10, 10], 0.85),
      det(1, 1, [0, 0, 20, 20], 0.8),
    ]);
    close(r.map50, 1, "three detections on the crowd region are ignored, the box is found");
    assert.equal(r.perClass[0].numGt, 1, "the crowd region is not a box to find");
  });

  await t.step("a detection prefers a regular box over a crowd region it also covers", () => {
    const g: GroundTruth = {
      images: [{ id: 1 }],
      categories: [{ id: 1 }],
      annotations: [
        { image_id: 1, category_id: 1, bbox: [0, 0, 200, 200], iscrowd: 1 },
        { image_id: 1, category_id: 1, bbox: [10, 10, 20, 20] },
      ],
    };
    // IoU 1 with the box and 1 with the crowd region: the regular box comes first and wins.
    const r = meanAveragePrecision(g, [det(1, 1, [10, 10, 20, 20], 0.9)]);
    close(r.map50, 1);
    close(r.stats.ar100, 1);
  });

  await t.step("area ranges and maxDets: AP/AR small, medium, large; AR@1/10/100", async () => {
    const g: GroundTruth = {
      images: [{ id: 1 }],
      categories: [{ id: 1 }],
      annotations: [
        { image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] }, // small (400)
        { image_id: 1, category_id: 1, bbox: [100, 0, 50, 50] }, // medium (2500)
        { image_id: 1, category_id: 1, bbox: [200, 0, 120, 120] }, // large (14400)
      ],
    };
    const preds = [
      det(1, 1, [200, 0, 120, 120], 0.9), // large, hit
      det(1, 1, [0, 0, 20, 20], 0.8), // small, hit
      det(1, 1, [400, 400, 50, 50], 0.7), // medium-sized false positive
      det(1, 1, [100, 0, 50, 50], 0.6), // medium, hit
    ];
    const r = meanAveragePrecision(g, preds);
    // All areas: TP, TP, FP, TP → recall 1/3, 2/3, 2/3, 1; precision monotone 1, 1, 3/4, 3/4.
    // Recall points 0..0.33 (34) and 0.34..0.66 (33) at 1, 0.67..1 (34) at 3/4 → 92.5 / 101.
    close(r.stats.ap, 92.5 / 101);
    close(r.stats.ap50, 92.5 / 101);
    close(r.stats.ap75, 92.5 / 101);
    // Small: only the small box counts; hits on the others are ignored, the medium-sized false
    // positive lies outside the range → TP only → 1.
    close(r.stats.apSmall, 1);
    // Medium: the large and small hits are ignored; the false positive (2500) counts → FP, TP.
    close(r.stats.apMedium, 0.5);
    close(r.stats.apLarge, 1);
    close(r.stats.ar1, 1 / 3, "one detection per image finds one of three");
    close(r.stats.ar10, 1);
    close(r.stats.ar100, 1);
    close(r.stats.arSmall, 1);
    close(r.stats.arMedium, 1);
    close(r.stats.arLarge, 1);
    const py = await pythonEval(g, preds);
    if (py) {
      close(py.stats.ap, 92.5 / 101);
      close(py.stats.ap_medium, 0.5);
      close(py.stats.ar1, 1 / 3);
    }
  });

  await t.step("a range without ground truth is -1, as COCOeval reports it", () => {
    const g = gt([[1, 1, [0, 0, 40, 40]]], [1]); // medium only
    const r = meanAveragePrecision(g, [det(1, 1, [0, 0, 40, 40], 0.9)]);
    assert.equal(r.stats.apSmall, -1);
    assert.equal(r.stats.apLarge, -1);
    close(r.stats.apMedium, 1);
  });

  await t.step("the annotation's area decides its range, not the box", () => {
    const g: GroundTruth = {
      images: [{ id: 1 }],
      categories: [{ id: 1 }],
      annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 40, 40], area: 900 }],
    };
    const r = meanAveragePrecision(g, [det(1, 1, [0, 0, 40, 40], 0.9)]);
    // Area 900 < 32²: a small box (its 40x40 bbox would be medium). A detection matched to it is
    // a hit whatever its own size; in the medium range the box is ignored, so is the match.
    close(r.stats.apSmall, 1);
    assert.equal(r.stats.apMedium, -1);
    assert.equal(r.stats.apLarge, -1);
  });
});

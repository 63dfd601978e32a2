import assert from "node:assert/strict";
import type { BBox } from "../manifest/mod.ts";
import { Prng } from "./prng.ts";
import { VARIANT_MODES, type VariantMode } from "./variant_spec.ts";
import {
  annotationsToVariant,
  boxFromVariant,
  boxToVariant,
  contentOffset,
  contentSize,
  planVariant,
  pointFromVariant,
  pointToVariant,
  VariantGeometryError,
  visibleRegion,
} from "./variant_transform.ts";

function near(actual: number, expected: number, tol: number, what: string) {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: expected ${expected} ± ${tol}, found ${actual}`,
  );
}

Deno.test("planVariant", async (t) => {
  await t.step("fit: inside, aspect kept, no padding, never enlarged", () => {
    const a = planVariant(4000, 3000, { width: 1280, height: 1280, mode: "fit" });
    assert.deepEqual([a.width, a.height, a.scaleX, a.scaleY, a.padX, a.padY], [
      1280,
      960,
      0.32,
      0.32,
      0,
      0,
    ]);
    const b = planVariant(800, 600, { width: 1280, height: 1280, mode: "fit" });
    assert.deepEqual([b.width, b.height, b.scaleX], [800, 600, 1]);
    const c = planVariant(3001, 4003, { width: 1280, height: 1280, mode: "fit" });
    assert.deepEqual([c.width, c.height], [960, 1280]);
    assert.equal(c.scaleX, 960 / 3001); // exact per axis: rounding is part of the transform
    assert.equal(c.scaleY, 1280 / 4003);
  });

  await t.step("letterbox: exact size, centred padding, odd pixel right/bottom", () => {
    const a = planVariant(4000, 3000, { width: 640, height: 640, mode: "letterbox" });
    assert.deepEqual([a.width, a.height, a.padX, a.padY, a.scaleX, a.scaleY], [
      640,
      640,
      0,
      80,
      0.16,
      0.16,
    ]);
    const b = planVariant(301, 100, { width: 100, height: 100, mode: "letterbox" });
    assert.deepEqual(contentSize(b), { width: 100, height: 33 });
    assert.deepEqual([b.padY, 100 - 33 - b.padY], [33, 34]);
    const up = planVariant(100, 50, { width: 640, height: 640, mode: "letterbox" });
    assert.deepEqual([up.scaleX, up.padY], [6.4, 160]);
  });

  await t.step("letterbox: the odd pixel goes right on the x axis and bottom on the y axis", () => {
    // A tall source pads left/right: 67 spare columns, 33 left and 34 right.
    const tall = planVariant(100, 301, { width: 100, height: 100, mode: "letterbox" });
    assert.deepEqual(contentSize(tall), { width: 33, height: 100 });
    assert.deepEqual([tall.padX, 100 - 33 - tall.padX, tall.padY], [33, 34, 0]);
    // 5 spare columns of a 3-wide target slot: 2 left, 3 right; same rule for rows.
    const x = planVariant(1, 2, { width: 7, height: 4, mode: "letterbox" });
    assert.deepEqual([contentSize(x).width, x.padX, x.padY], [2, 2, 0]);
    const y = planVariant(2, 1, { width: 4, height: 7, mode: "letterbox" });
    assert.deepEqual([contentSize(y).height, y.padY, y.padX], [2, 2, 0]);
  });

  await t.step("cover: exact size, centred whole-pixel crop", () => {
    const a = planVariant(4000, 3000, { width: 320, height: 320, mode: "cover" });
    assert.deepEqual(contentSize(a), { width: 427, height: 320 });
    assert.deepEqual(contentOffset(a), { left: 53, top: 0 });
    assert.equal(a.cropX, 53 / (427 / 4000));
    near(pointToVariant(a, [2000, 1500])[0], 160, 0.5, "centre x");
  });

  await t.step("stretch: independent scales", () => {
    const a = planVariant(400, 100, { width: 100, height: 200, mode: "stretch" });
    assert.deepEqual([a.width, a.height, a.scaleX, a.scaleY], [100, 200, 0.25, 2]);
  });

  await t.step("invalid sizes and modes are refused", () => {
    assert.throws(
      () => planVariant(0, 10, { width: 1, height: 1, mode: "fit" }),
      VariantGeometryError,
    );
    assert.throws(
      () => planVariant(10, 10.5, { width: 1, height: 1, mode: "fit" }),
      /source height: expected an integer/,
    );
    assert.throws(
      () => planVariant(10, 10, { width: 1, height: 1, mode: "zoom" as VariantMode }),
      /variant mode/,
    );
  });
});

Deno.test("transform properties over random sizes and aspects", async (t) => {
  const rng = new Prng(20261123);
  const cases = Array.from({ length: 400 }, () => ({
    srcW: Math.round(rng.logUniform(1, 9000)),
    srcH: Math.round(rng.logUniform(1, 9000)),
    width: Math.round(rng.logUniform(1, 2000)),
    height: Math.round(rng.logUniform(1, 2000)),
    mode: rng.pick(VARIANT_MODES),
  }));

  await t.step("geometry invariants for every mode", () => {
    for (const c of cases) {
      const tr = planVariant(c.srcW, c.srcH, c);
      const what = JSON.stringify(c);
      const cs = contentSize(tr);
      if (c.mode === "fit") {
        assert.ok(tr.width <= c.width && tr.height <= c.height, what);
        assert.deepEqual([tr.width, tr.height], [cs.width, cs.height], what);
      } else {
        assert.deepEqual([tr.width, tr.height], [c.width, c.height], what);
      }
      if (c.mode === "letterbox") {
        assert.ok(cs.width <= c.width && cs.height <= c.height, what);
        assert.ok(Math.abs(tr.padX - (c.width - cs.width - tr.padX)) <= 1, what);
        assert.ok(Math.abs(tr.padY - (c.height - cs.height - tr.padY)) <= 1, what);
        assert.ok(
          cs.width === c.width || cs.height === c.height,
          `letterbox touches one side: ${what}`,
        );
      }
      if (c.mode === "cover") {
        assert.ok(cs.width >= c.width && cs.height >= c.height, what);
        const o = contentOffset(tr);
        assert.ok(Number.isInteger(o.left) && Number.isInteger(o.top), what);
        assert.ok(Math.abs(o.left - (cs.width - c.width - o.left)) <= 1, what);
        // The source centre lands in the output centre (within half a pixel of rounding).
        const [cx, cy] = pointToVariant(tr, [c.srcW / 2, c.srcH / 2]);
        near(cx, c.width / 2, 0.5 + 1e-9, `centre x ${what}`);
        near(cy, c.height / 2, 0.5 + 1e-9, `centre y ${what}`);
      }
      // The whole source maps onto the whole content: corners land on the content edges.
      const [x0, y0] = pointToVariant(tr, [0, 0]);
      const [x1, y1] = pointToVariant(tr, [c.srcW, c.srcH]);
      near(x1 - x0, cs.width, 1e-6, `content width ${what}`);
      near(y1 - y0, cs.height, 1e-6, `content height ${what}`);
    }
  });

  await t.step("points and boxes map into the variant and back within 0.5 px", () => {
    let boxes = 0;
    for (const c of cases) {
      const tr = planVariant(c.srcW, c.srcH, c);
      const [vx, vy, vw, vh] = visibleRegion(tr);
      for (let i = 0; i < 5; i++) {
        // A box inside the visible part of the source (for cover, inside the crop window).
        const [sx0, sy0] = pointFromVariant(tr, [vx, vy]);
        const [sx1, sy1] = pointFromVariant(tr, [vx + vw, vy + vh]);
        const bx = rng.uniform(sx0, sx1), by = rng.uniform(sy0, sy1);
        const bw = rng.uniform(0, sx1 - bx), bh = rng.uniform(0, sy1 - by);
        if (!(bw > 1e-6 && bh > 1e-6)) continue;
        const box: BBox = [bx, by, bw, bh];
        const v = boxToVariant(tr, box, { minVisible: 0.999 });
        assert.ok(v, `visible box dropped: ${JSON.stringify({ c, box })}`);
        const back = boxFromVariant(tr, v);
        assert.ok(back);
        for (let k = 0; k < 4; k++) {
          near(back[k], box[k], 0.5, `box[${k}] ${JSON.stringify({ c, box, v, back })}`);
        }
        const p = pointFromVariant(tr, pointToVariant(tr, [bx, by]));
        near(p[0], bx, 1e-6, "point x");
        near(p[1], by, 1e-6, "point y");
        boxes++;
      }
    }
    assert.ok(boxes > 1000, `expected many boxes to be checked, found ${boxes}`);
  });
});

Deno.test("boxes cut by a cover crop", async (t) => {
  // 400×200 → 200×200 cover: scale max(200/400, 200/200) = 1, centred crop of 100 px each side.
  const tr = planVariant(400, 200, { width: 200, height: 200, mode: "cover" });
  assert.deepEqual([tr.scaleX, tr.cropX, tr.cropY], [1, 100, 0]);

  await t.step("mostly visible boxes are clipped to the crop", () => {
    assert.deepEqual(boxToVariant(tr, [50, 0, 100, 100]), [0, 0, 50, 100]);
    assert.deepEqual(boxToVariant(tr, [280, 10, 40, 20]), [180, 10, 20, 20]);
  });

  await t.step("boxes below the minimum visible fraction are dropped (default 0.3)", () => {
    assert.equal(boxToVariant(tr, [0, 0, 110, 100]), null); // 9% visible
    assert.deepEqual(boxToVariant(tr, [0, 0, 110, 100], { minVisible: 0.05 }), [0, 0, 10, 100]);
    assert.equal(boxToVariant(tr, [0, 0, 50, 50]), null); // entirely cropped away
    assert.throws(
      () => boxToVariant(tr, [0, 0, 1, 1], { minVisible: 2 }),
      /minVisible: expected a fraction/,
    );
  });

  await t.step("letterbox padding maps back outside the image and is cut away", () => {
    const lb = planVariant(200, 100, { width: 100, height: 100, mode: "letterbox" });
    assert.deepEqual(boxFromVariant(lb, [0, 0, 100, 100]), [0, 0, 200, 100]);
    assert.equal(boxFromVariant(lb, [0, 0, 100, 20]), null);
  });

  await t.step("annotations: polygons follow boxes, dropped indices reported", () => {
    const r = annotationsToVariant(tr, [
      { label: "a", bbox: [50, 0, 100, 100], polygon: [[50, 0], [150, 0], [150, 100], [50, 100]] },
      { label: "b", bbox: [0, 0, 20, 20] },
      { label: "c", bbox: [150, 50, 10, 10] },
    ]);
    assert.deepEqual(r.dropped, [1]);
    assert.deepEqual(r.kept.map((k) => k.label), ["a", "c"]);
    assert.deepEqual(r.kept[0].bbox, [0, 0, 50, 100]);
    assert.deepEqual(r.kept[0].polygon, [[0, 0], [50, 0], [50, 100], [0, 100]]);
    assert.deepEqual(r.kept[1].bbox, [50, 50, 10, 10]);
  });
});

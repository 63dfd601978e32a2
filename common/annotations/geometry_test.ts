import assert from "node:assert/strict";
import { Prng } from "../images/prng.ts";
import {
  type Affine,
  applyToPoint,
  type BBox,
  boxArea,
  boxToCorners,
  clipBox,
  clipPolygon,
  compose,
  determinant,
  envelope,
  flipHorizontal,
  flipVertical,
  GeometryError,
  invert,
  type Point,
  polygonArea,
  rotate,
  rotate90,
  scale,
  shear,
  signedPolygonArea,
  transformBox,
  transformPolygon,
  translate,
  visibleFraction,
} from "./geometry.ts";

const CASES = 500;

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: expected ${expected} ± ${tol}, found ${actual}`,
  );
}

function randomBox(rng: Prng, size = 1000): BBox {
  return [
    rng.uniform(-size, size),
    rng.uniform(-size, size),
    rng.uniform(0.01, size),
    rng.uniform(0.01, size),
  ];
}

function randomMatrix(rng: Prng): Affine {
  const m = compose(
    rotate(rng.uniform(-180, 180), rng.uniform(-100, 100), rng.uniform(-100, 100)),
    scale(rng.uniform(0.2, 5), rng.uniform(0.2, 5)),
    shear(rng.uniform(-30, 30), rng.uniform(-30, 30)),
    translate(rng.uniform(-500, 500), rng.uniform(-500, 500)),
  );
  return rng.chance(0.5) ? compose(m, flipHorizontal(rng.uniform(1, 2000))) : m;
}

Deno.test("geometry: boxes and polygons", async (t) => {
  await t.step("corners and envelope round-trip", () => {
    const box: BBox = [3, 4, 10, 20];
    assert.deepEqual(boxToCorners(box), [[3, 4], [13, 4], [13, 24], [3, 24]]);
    assert.deepEqual(envelope(boxToCorners(box)), box);
    assert.throws(() => envelope([]), GeometryError);
  });

  await t.step("shoelace area: square, triangle, orientation sign, degenerate", () => {
    assert.equal(polygonArea([[0, 0], [4, 0], [4, 3], [0, 3]]), 12);
    assert.equal(polygonArea([[0, 0], [4, 0], [0, 3]]), 6);
    // Clockwise on screen (y down) is positive; reversing flips the sign but not the area.
    const cw: Point[] = [[0, 0], [1, 0], [1, 1], [0, 1]];
    assert.equal(signedPolygonArea(cw), 1);
    assert.equal(signedPolygonArea([...cw].reverse()), -1);
    assert.equal(polygonArea([[0, 0], [1, 1]]), 0);
    // Concave "L": 3×3 square minus a 2×2 corner = 5.
    assert.equal(polygonArea([[0, 0], [3, 0], [3, 1], [1, 1], [1, 3], [0, 3]]), 5);
  });

  await t.step("clip to image bounds and visible fraction", () => {
    assert.deepEqual(clipBox([-5, 10, 20, 20], 100, 100), [0, 10, 15, 20]);
    assert.equal(clipBox([200, 200, 5, 5], 100, 100), null);
    assert.equal(visibleFraction([-50, 0, 100, 10], 100, 100), 0.5);
    assert.equal(visibleFraction([10, 10, 10, 10], 100, 100), 1);
    assert.equal(visibleFraction([10, 10, 0, 10], 100, 100), 0);
    assert.equal(visibleFraction([NaN, 10, 5, 10], 100, 100), 0);
  });

  await t.step("polygon clipping matches box clipping for rectangles", () => {
    const rng = new Prng(7);
    for (let i = 0; i < CASES; i++) {
      const box = randomBox(rng, 150);
      const clipped = clipPolygon(boxToCorners(box), 100, 80);
      const expected = clipBox(box, 100, 80);
      if (!expected) {
        assert.ok(polygonArea(clipped) < 1e-9, `case ${i}: expected nothing left of ${box}`);
        continue;
      }
      close(polygonArea(clipped), boxArea(expected), 1e-6, `case ${i} area`);
      const env = envelope(clipped);
      for (let k = 0; k < 4; k++) close(env[k], expected[k], 1e-9, `case ${i} envelope[${k}]`);
    }
  });

  await t.step("clipped polygon vertices stay inside the window", () => {
    const rng = new Prng(11);
    for (let i = 0; i < CASES; i++) {
      const n = rng.int(3, 9);
      const poly: Point[] = Array.from(
        { length: n },
        () => [rng.uniform(-50, 150), rng.uniform(-50, 150)],
      );
      const clipped = clipPolygon(poly, 100, 100);
      for (const [x, y] of clipped) {
        assert.ok(
          x >= -1e-9 && x <= 100 + 1e-9 && y >= -1e-9 && y <= 100 + 1e-9,
          `case ${i}: ${x},${y}`,
        );
      }
    }
  });
});

Deno.test("geometry: affine matrices (seeded property tests)", async (t) => {
  await t.step("basic matrices do what they say", () => {
    assert.deepEqual(applyToPoint(translate(3, 4), [1, 1]), [4, 5]);
    assert.deepEqual(applyToPoint(compose(translate(1, 0), scale(2)), [0, 0]), [2, 0]);
    const r = applyToPoint(rotate(90), [1, 0]);
    close(r[0], 0, 1e-12, "rotate x");
    close(r[1], 1, 1e-12, "rotate y (clockwise on screen = downwards)");
    assert.deepEqual(transformBox(flipHorizontal(100), [10, 0, 20, 5]), [70, 0, 20, 5]);
    assert.deepEqual(transformBox(flipVertical(100), [0, 10, 5, 20]), [0, 70, 5, 20]);
    assert.deepEqual(applyToPoint(rotate90(1, 40, 20), [0, 0]), [20, 0]);
    assert.deepEqual(transformBox(rotate90(1, 40, 20), [0, 0, 40, 20]), [0, 0, 20, 40]);
    assert.deepEqual(transformBox(rotate90(2, 40, 20), [0, 0, 10, 5]), [30, 15, 10, 5]);
    assert.deepEqual(transformBox(rotate90(3, 40, 20), [0, 0, 10, 5]), [0, 30, 5, 10]);
    assert.ok(determinant(flipHorizontal(10)) < 0);
    assert.throws(() => invert([1, 2, 0, 2, 4, 0]), GeometryError);
  });

  await t.step("flip twice is the identity", () => {
    const rng = new Prng(1);
    for (let i = 0; i < CASES; i++) {
      const w = rng.uniform(1, 5000), h = rng.uniform(1, 5000);
      const box = randomBox(rng);
      for (const flip of [flipHorizontal(w), flipVertical(h)]) {
        const back = transformBox(compose(flip, flip), box);
        for (let k = 0; k < 4; k++) close(back[k], box[k], 1e-9, `case ${i} [${k}]`);
      }
      const q = transformBox(compose(rotate90(1, w, h), rotate90(3, h, w)), box);
      for (let k = 0; k < 4; k++) close(q[k], box[k], 1e-9, `quarter turns case ${i} [${k}]`);
    }
  });

  await t.step("rotated box envelope contains every rotated corner, and is tight", () => {
    const rng = new Prng(2);
    for (let i = 0; i < CASES; i++) {
      const box = randomBox(rng);
      const m = rotate(rng.uniform(-360, 360), rng.uniform(-500, 500), rng.uniform(-500, 500));
      const env = transformBox(m, box);
      const corners = transformPolygon(m, boxToCorners(box));
      const eps = 1e-9 * 4000;
      for (const [x, y] of corners) {
        assert.ok(
          x >= env[0] - eps && x <= env[0] + env[2] + eps && y >= env[1] - eps &&
            y <= env[1] + env[3] + eps,
          `case ${i}: corner ${x},${y} outside ${env}`,
        );
      }
      // Tight: every side of the envelope touches a corner.
      const xs = corners.map((p) => p[0]), ys = corners.map((p) => p[1]);
      close(Math.min(...xs), env[0], eps, "left");
      close(Math.max(...ys), env[1] + env[3], eps, "bottom");
      // Rotation preserves the polygon's area; the envelope never has less.
      close(polygonArea(corners), boxArea(box), 1e-6 * boxArea(box), "area preserved");
      assert.ok(boxArea(env) >= boxArea(box) * (1 - 1e-9));
    }
  });

  await t.step("invert ∘ apply ≈ identity for random matrices and points", () => {
    const rng = new Prng(3);
    for (let i = 0; i < CASES; i++) {
      const m = randomMatrix(rng);
      const inv = invert(m);
      const p: Point = [rng.uniform(-1e3, 1e3), rng.uniform(-1e3, 1e3)];
      const back = applyToPoint(inv, applyToPoint(m, p));
      close(back[0], p[0], 1e-6, `case ${i} x`);
      close(back[1], p[1], 1e-6, `case ${i} y`);
      const id = compose(m, inv);
      [1, 0, 0, 0, 1, 0].forEach((v, k) => close(id[k], v, 1e-9, `case ${i} m·m⁻¹[${k}]`));
    }
  });

  await t.step("compose applies in order and matches sequential application", () => {
    const rng = new Prng(4);
    for (let i = 0; i < CASES; i++) {
      const a = randomMatrix(rng), b = randomMatrix(rng), c = randomMatrix(rng);
      const p: Point = [rng.uniform(-100, 100), rng.uniform(-100, 100)];
      const seq = applyToPoint(c, applyToPoint(b, applyToPoint(a, p)));
      const once = applyToPoint(compose(a, b, c), p);
      const tol = 1e-9 * Math.max(1, Math.abs(seq[0]), Math.abs(seq[1]));
      close(once[0], seq[0], tol * 100, `case ${i} x`);
      close(once[1], seq[1], tol * 100, `case ${i} y`);
    }
  });

  await t.step("polygon transform is exact: area scales by |det|", () => {
    const rng = new Prng(5);
    for (let i = 0; i < CASES; i++) {
      const m = randomMatrix(rng);
      const poly: Point[] = Array.from(
        { length: rng.int(3, 8) },
        () => [rng.uniform(0, 100), rng.uniform(0, 100)],
      );
      const a0 = polygonArea(poly), a1 = polygonArea(transformPolygon(m, poly));
      close(a1, a0 * Math.abs(determinant(m)), 1e-6 * Math.max(1, a1), `case ${i}`);
    }
  });
});

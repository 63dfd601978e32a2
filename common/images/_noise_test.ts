import assert from "node:assert/strict";
import { addGaussianNoise, inverseNormalCdf } from "./_noise.ts";

Deno.test("Gaussian noise", async (t) => {
  await t.step("inverse normal CDF against known quantiles", () => {
    for (
      const [p, z] of [[0.5, 0], [0.975, 1.959963985], [0.025, -1.959963985], [0.8413447461, 1], [
        1e-6,
        -4.753424309,
      ]]
    ) {
      assert.ok(
        Math.abs(inverseNormalCdf(p) - z) < 1e-6,
        `Φ⁻¹(${p}) = ${inverseNormalCdf(p)}, expected ${z}`,
      );
    }
  });

  await t.step("has the requested spread, zero mean, and is seeded", () => {
    const flat = new Uint8Array(300_001).fill(128);
    for (const std of [2, 10, 25]) {
      const out = addGaussianNoise(flat, std, 99);
      let sum = 0, sq = 0;
      for (const v of out) {
        sum += v - 128;
        sq += (v - 128) ** 2;
      }
      const mean = sum / out.length, sd = Math.sqrt(sq / out.length - mean * mean);
      assert.ok(Math.abs(mean) < 0.1, `std ${std}: mean ${mean}`);
      // Rounding to integers adds 1/12 to the variance.
      assert.ok(
        Math.abs(sd - Math.sqrt(std * std + 1 / 12)) < 0.03 * std,
        `std ${std}: measured ${sd}`,
      );
    }
    assert.deepEqual(addGaussianNoise(flat, 5, 1), addGaussianNoise(flat, 5, 1));
    assert.notDeepEqual(addGaussianNoise(flat, 5, 1), addGaussianNoise(flat, 5, 2));
  });

  await t.step("clamps to 0..255", () => {
    const edges = new Uint8Array(10_000);
    for (let i = 0; i < edges.length; i++) edges[i] = i % 2 ? 255 : 0;
    const out = addGaussianNoise(edges, 40, 5);
    let low = 0, high = 0;
    out.forEach((v, i) => {
      if (i % 2 === 0 && v === 0) low++;
      if (i % 2 === 1 && v === 255) high++;
    });
    // About half of each side is pushed past the edge and must be clamped there.
    assert.ok(low > 2000 && high > 2000, `clamped ${low} low, ${high} high`);
  });
});

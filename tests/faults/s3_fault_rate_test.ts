/**
 * Fault case: ingest AND normalize of 30 images with every S3 request of the workers going
 * through a fault proxy that injects 503 SlowDown, connection resets, cut bodies and slow
 * bodies on 10 % and 30 % of requests. Two ingest workers (`sluice-ingest once`) and two
 * normalize workers (`sluice-normalize run`) on a PostgreSQL manifest, 3 s leases. Each case
 * ends with the audit (`tests/support/pipeline_audit.ts`): every source → one image → one
 * variant per spec; every object PUT exactly once (the proxy counts successful PUTs per key);
 * no orphan objects; nothing pending, leased or failed; staging empty.
 */
import assert from "node:assert/strict";
import { postgresAvailability } from "../harness/postgres.ts";
import { s3Availability } from "../harness/s3.ts";
import { formatAudit } from "../support/pipeline_audit.ts";
import { drivePipeline, openPipelineEnv } from "./_pipeline.ts";

const s3 = await s3Availability();
const IMAGES = 30;

for (const rate of [0.1, 0.3]) {
  Deno.test({
    name: `faults: ingest + normalize through an S3 fault proxy at ${rate * 100} %: audit holds`,
    ignore: !s3.ok || !postgresAvailability().ok,
    fn: async () => {
      const t0 = performance.now();
      await using env = await openPipelineEnv({ images: IMAGES, seed: rate * 100 });
      env.proxy.setRate(rate);
      const run = await drivePipeline(env, { maxAttempts: 10 });
      env.proxy.setRate(0);
      const a = run.audit;
      const faults = Object.values(env.proxy.faults).reduce((x, y) => x + y, 0);
      console.log(
        `S3 ${rate * 100} % audit: ${formatAudit(a)}; requests ` +
          `${JSON.stringify(env.proxy.requests)}, faults ${JSON.stringify(env.proxy.faults)}; ` +
          `ingest workers ${JSON.stringify(run.ingestSummaries)}; ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      assert.deepEqual(a.problems, []);
      assert.equal(a.variants, IMAGES * a.specs.length);
      assert.ok(faults > 0, "expected the proxy to inject faults");
      if (rate >= 0.3) {
        // ~80 GETs at 30 %: every kind is injected (each kind on a GET ~6 times on average).
        for (const [kind, n] of Object.entries(env.proxy.faults)) {
          assert.ok(n > 0, `expected ${kind} injected at ${rate * 100} %, found none`);
        }
      }
    },
  });
}

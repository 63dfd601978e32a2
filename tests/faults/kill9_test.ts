/**
 * Fault case: kill -9 mid-batch and restart, through ingest AND normalize. Two ingest workers
 * (`sluice-ingest once`) and two normalize workers (`sluice-normalize run`) share a PostgreSQL
 * manifest and the S3 emulator (behind the request-counting proxy, no faults injected); one
 * worker of each stage is killed with SIGKILL once a quarter of its stage is done and restarted
 * under the same worker id. The killed worker's leases (3 s) run out and its items are claimed
 * again. Audit (`tests/support/pipeline_audit.ts`): every source → one image → one variant per
 * spec; every object PUT exactly once; no orphan objects; nothing pending, leased or failed;
 * no item needed more than two attempts; staging empty.
 */
import assert from "node:assert/strict";
import { postgresAvailability } from "../harness/postgres.ts";
import { s3Availability } from "../harness/s3.ts";
import { formatAudit } from "../support/pipeline_audit.ts";
import { drivePipeline, openPipelineEnv } from "./_pipeline.ts";

const IMAGES = 60;
const s3 = await s3Availability();

Deno.test({
  name: "faults: kill -9 an ingest and a normalize worker mid-batch, restart: audit holds",
  ignore: !postgresAvailability().ok || !s3.ok,
  fn: async () => {
    const t0 = performance.now();
    await using env = await openPipelineEnv({ images: IMAGES });
    const run = await drivePipeline(env, { kill: true });
    const a = run.audit;
    console.log(
      `kill -9 audit: kills ${JSON.stringify(run.kills)}; ${formatAudit(a)}; ` +
        `requests ${JSON.stringify(env.proxy.requests)}; ingest workers ` +
        `${JSON.stringify(run.ingestSummaries)}; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    assert.deepEqual(a.problems, []);
    assert.equal(run.kills.length, 2);
    for (const k of run.kills) {
      assert.ok(k.doneAtKill < IMAGES, `${k.id}: expected the kill mid-batch, found all done`);
      assert.ok(k.leasedAtKill > 0, `${k.id}: expected it killed holding leases`);
    }
    for (const stage of ["ingest", "normalize"]) {
      const q = a.queues[stage];
      assert.ok(
        q.maxAttempts <= 2,
        `${stage}: expected at most 2 attempts, found ${q.maxAttempts}`,
      );
    }
    assert.equal(a.variants, IMAGES * a.specs.length);
  },
});

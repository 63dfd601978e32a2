/**
 * Fault case: ingest of 30 images with every S3 request going through a fault proxy that
 * injects 503 SlowDown, connection resets, cut bodies and slow bodies on 10 % and 30 % of
 * requests. Each case ends with the audit: every source ingested, every dataset object written
 * exactly once (the proxy counts successful PUTs per key), no orphan objects, nothing left
 * pending, leased or failed, staging empty.
 */
import { uriOfRecorded } from "../../common/objectstore/recorded_key.ts";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { S3ObjectStore } from "../../common/objectstore/s3.ts";
import { createIngestStage } from "../../stages/ingest/stage.ts";
import { makeImage, openTestEnv } from "../../stages/ingest/_test_env.ts";
import { s3Availability, startS3Server } from "../harness/s3.ts";
import { startS3FaultProxy } from "../harness/s3_fault_proxy.ts";

const s3 = await s3Availability();
const IMAGES = 30;

for (const rate of [0.1, 0.3]) {
  Deno.test({
    name: `faults: ingest through an S3 fault proxy at ${rate * 100} %: audit holds`,
    ignore: !s3.ok,
    fn: async () => {
      const t0 = performance.now();
      const server = await startS3Server();
      const proxy = await startS3FaultProxy(server.endpoint, { seed: rate * 100 });
      const env = await openTestEnv({ ...server, endpoint: proxy.endpoint }, {
        worker: { maxAttempts: 10, concurrency: 3 },
      });
      const stage = createIngestStage(env.config, { ...env });
      const direct = S3ObjectStore.fromUrl(`s3://${env.dataBucket}`, {
        endpoint: server.endpoint,
        region: server.region,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
      });
      try {
        for (let i = 0; i < IMAGES; i++) {
          await env.put(`img_${i}.jpg`, await makeImage({ rgb: [i * 8, 255 - i * 8, 40] }));
        }
        proxy.setRate(rate);
        const summary = await stage.runOnce({ progress: false });
        proxy.setRate(0);

        // Audit.
        const counts = (await env.manifest.workCounts("ingest")).ingest ?? {};
        assert.equal(
          counts.done,
          IMAGES,
          `expected every item done, found ${JSON.stringify(counts)}`,
        );
        assert.equal((counts.pending ?? 0) + (counts.leased ?? 0) + (counts.failed ?? 0), 0);
        const images = await env.manifest.listImages({ limit: 1000 });
        const ingested = images.filter((i) => i.status === "ingested");
        assert.equal(ingested.length, IMAGES, `sources ${IMAGES} vs images ${ingested.length}`);
        const dataPuts = [...proxy.puts].filter(([k]) => k.startsWith(env.dataBucket + "/"));
        const twice = dataPuts.filter(([, n]) => n !== 1);
        assert.deepEqual(twice, [], "expected every dataset object written exactly once");
        // The manifest records keys relative to the store (or, for older rows, absolute URIs).
        const referenced = new Set(
          ingested.map((i) => uriOfRecorded(env.objectStore, i.datasetUri!)),
        );
        const stored: string[] = [];
        for await (const o of direct.list()) stored.push(direct.uriFor(o.key));
        const orphans = stored.filter((u) => !referenced.has(u));
        assert.deepEqual(orphans, [], "expected no orphan objects");
        assert.equal(stored.length, IMAGES, `expected ${IMAGES} dataset objects`);
        const left = await readdir(env.staging.workerDir).catch(() => []);
        assert.deepEqual(left, [], "expected staging empty");
        console.log(
          `S3 ${rate * 100} % audit: ${IMAGES} sources, ${ingested.length} images, ` +
            `${stored.length} objects each written once, 0 orphans, 0 pending/leased/failed, ` +
            `staging empty; requests ${JSON.stringify(proxy.requests)}, faults ` +
            `${JSON.stringify(proxy.faults)}, worker ` +
            `${JSON.stringify(summary.worker)}; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
      } finally {
        await stage.close();
        await direct.close();
        await env.close();
        await proxy.stop();
        await server.stop();
      }
    },
  });
}

/**
 * Issue 12 items 2 and 6, through a fault proxy in front of the S3 emulator:
 * - a GET body dropped mid-transfer is resumed with a ranged GET (the bytes read are identical
 *   and the item is not retried); when it keeps failing the error is named
 *   (`download_interrupted`, with the key and the bytes), not `internal`;
 * - a staging write refused by the free-space guard cancels the S3 body, so the connection is
 *   given back (the proxy sees no body left open).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3ObjectStore } from "../../common/objectstore/s3.ts";
import { SluiceError } from "../../common/errors/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { openStaging } from "../../common/staging/mod.ts";
import { StagingFullError } from "../../common/staging/errors.ts";
import { s3Availability, type S3TestServer, startS3Server } from "../harness/s3.ts";
import {
  type FaultProxyOptions,
  type S3FaultProxy,
  startS3FaultProxy,
} from "../harness/s3_fault_proxy.ts";

const s3 = await s3Availability();

async function withProxy(
  fn: (env: { direct: S3ObjectStore; viaProxy: S3ObjectStore; proxy: S3FaultProxy }) => Promise<
    void
  >,
  proxyOpts: FaultProxyOptions = {},
) {
  const server: S3TestServer = await startS3Server();
  const proxy = await startS3FaultProxy(server.endpoint, proxyOpts);
  const creds = {
    region: server.region,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
  };
  const bucket = `faults-${crypto.randomUUID().slice(0, 8)}`;
  await server.createBucket(bucket);
  const direct = S3ObjectStore.fromUrl(`s3://${bucket}`, { ...creds, endpoint: server.endpoint });
  const viaProxy = S3ObjectStore.fromUrl(`s3://${bucket}`, {
    ...creds,
    endpoint: proxy.endpoint,
    maxAttempts: 3,
    retryBaseDelayMs: 5,
  });
  try {
    await fn({ direct, viaProxy, proxy });
  } finally {
    await viaProxy.close();
    await direct.close();
    await proxy.stop();
    await server.stop();
  }
}

function payload(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7919 + (i >> 8)) & 0xff;
  return b;
}

Deno.test({
  name: "S3 get: a body dropped mid-transfer is resumed with a ranged GET, bytes identical",
  ignore: !s3.ok,
  fn: () =>
    withProxy(async ({ direct, viaProxy, proxy }) => {
      const data = payload(600_000);
      await direct.put("big.bin", data);
      proxy.cutNextGet(200_000);
      const body = await viaProxy.get("big.bin");
      const got = new Uint8Array(await new Response(body).arrayBuffer());
      assert.equal(got.byteLength, data.byteLength);
      assert.ok(got.every((v, i) => v === data[i]), "expected identical bytes after the resume");
      assert.equal(proxy.faults.cut_body, 1);
      assert.equal(proxy.ranges.length, 1, `expected one ranged GET, found ${proxy.ranges}`);
      assert.match(proxy.ranges[0], /^bytes=\d+-$/);
      assert.ok(Number(proxy.ranges[0].slice(6, -1)) > 0, "expected the resume to skip bytes");
      assert.equal(proxy.requests.GET, 2);
    }),
});

Deno.test({
  name: "S3 get: a body that keeps dropping fails as download_interrupted, naming key and bytes",
  ignore: !s3.ok,
  fn: () =>
    withProxy(async ({ direct, viaProxy, proxy }) => {
      await direct.put("flaky.bin", payload(300_000));
      proxy.cutNextGet(100_000);
      const body = await viaProxy.get("flaky.bin");
      // Every later request (the resumes) is refused.
      proxy.setRate(1);
      const err = await new Response(body).arrayBuffer().then(() => null, (e) => e);
      assert.ok(err instanceof SluiceError, `expected a SluiceError, found ${err}`);
      assert.equal(err.code, "download_interrupted");
      assert.match(err.message, /flaky\.bin/);
      assert.match(err.message, /of 300000 bytes/);
    }, { kinds: ["reset"] }),
});

Deno.test({
  name: "staging: a write refused for space cancels the S3 body (connection given back)",
  ignore: !s3.ok,
  fn: () =>
    withProxy(async ({ direct, viaProxy, proxy }) => {
      await direct.put("img.bin", payload(16 * 1024 * 1024));
      const root = await mkdtemp(join(tmpdir(), "sluice-faults-staging-"));
      const log = createLogger({ stage: "normalize", json: true, level: "error", sink: () => {} });
      // A floor no disk can meet: every publish is refused by the guard.
      const staging = await openStaging({
        root,
        minFreeMb: 1e12,
        stage: "normalize",
        workerId: "w1",
        log,
      });
      try {
        for (let i = 0; i < 5; i++) {
          await using lease = await staging.lease(`item_${i}`);
          const body = await viaProxy.get("img.bin");
          await assert.rejects(lease.publish("input", body), StagingFullError);
        }
        // Let the cancellations reach the proxy.
        for (let i = 0; i < 50 && proxy.openBodies > 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(proxy.openBodies, 0, `expected every body released, ${proxy.openBodies} open`);
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    }),
});

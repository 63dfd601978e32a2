import assert from "node:assert/strict";
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { SluiceError } from "../errors/mod.ts";
import { s3Availability, type S3TestServer, startS3Server } from "../../tests/harness/s3.ts";
import { z } from "zod";
import { loadConfig } from "../config/mod.ts";
import { InvalidKeyError, openObjectStore, s3StoreOptions } from "./mod.ts";
import {
  awsClientOptions,
  parseS3Url,
  s3ClientOptions,
  S3ObjectStore,
  type S3StoreOptions,
} from "./s3.ts";

const MiB = 1024 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();
const s3 = await s3Availability();

function isCode(code: string) {
  return (e: unknown) => e instanceof SluiceError && e.code === code;
}

function storeOpts(server: S3TestServer, extra: S3StoreOptions = {}): S3StoreOptions {
  return {
    endpoint: server.endpoint,
    region: server.region,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    ...extra,
  };
}

Deno.test("parseS3Url", async (t) => {
  const ok: [string, string, string][] = [
    ["s3://bucket", "bucket", ""],
    ["s3://bucket/", "bucket", ""],
    ["s3://bucket/a", "bucket", "a/"],
    ["s3://my.bucket-1/a/b/", "my.bucket-1", "a/b/"],
  ];
  for (const [url, bucket, prefix] of ok) {
    await t.step(url, () => assert.deepEqual(parseS3Url(url), { bucket, prefix }));
  }
  for (const bad of ["s3://", "s3:/b", "http://b/x", "s3://Bucket", "s3://b/../x", "s3://ab"]) {
    await t.step(
      `refuses ${bad}`,
      () => assert.throws(() => parseS3Url(bad), isCode("invalid_url")),
    );
  }
});

Deno.test("S3 options are validated at the edge", async (t) => {
  await t.step("store options", () => {
    const bad: S3StoreOptions[] = [
      { partSize: 1 * MiB },
      { endpoint: "ftp://x" },
      { accessKeyId: "only-half" },
      { maxAttempts: 0 },
      { sessionToken: "token-without-keys" },
      { unknown: true } as S3StoreOptions,
    ];
    for (const opts of bad) {
      assert.throws(() => S3ObjectStore.fromUrl("s3://bucket", opts), isCode("invalid_options"));
    }
  });

  await t.step("s3ClientOptions defaults", () => {
    const withEndpoint = s3ClientOptions({
      endpoint: "http://127.0.0.1:9000",
      region: "eu-west-1",
    });
    assert.equal(withEndpoint.forcePathStyle, true);
    assert.equal(withEndpoint.region, "eu-west-1");
    assert.equal(withEndpoint.requestChecksumCalculation, "WHEN_REQUIRED");
    assert.equal(withEndpoint.responseChecksumValidation, "WHEN_REQUIRED");
    assert.equal(withEndpoint.credentials, undefined, "no keys: the SDK default chain");
    const aws = s3ClientOptions({ accessKeyId: "k", secretAccessKey: "s", maxAttempts: 3 });
    assert.equal(aws.forcePathStyle, false);
    assert.equal(aws.endpoint, undefined);
    assert.deepEqual(aws.credentials, { accessKeyId: "k", secretAccessKey: "s" });
    assert.equal(aws.maxAttempts, 3);
    assert.equal(
      s3ClientOptions({ endpoint: "http://x:1", forcePathStyle: false }).forcePathStyle,
      false,
    );
    assert.deepEqual(
      s3ClientOptions({ accessKeyId: "k", secretAccessKey: "s", sessionToken: "t" }).credentials,
      { accessKeyId: "k", secretAccessKey: "s", sessionToken: "t" },
    );
  });

  await t.step("s3StoreOptions: partSizeMb becomes bytes; conflicts and bad sizes refused", () => {
    assert.deepEqual(s3StoreOptions({ region: "eu-west-1", partSizeMb: 16 }), {
      region: "eu-west-1",
      partSize: 16 * MiB,
    });
    assert.deepEqual(s3StoreOptions({ partSize: 6 * MiB }), { partSize: 6 * MiB });
    assert.deepEqual(s3StoreOptions({ partSize: 8 * MiB, partSizeMb: 8 }), { partSize: 8 * MiB });
    assert.deepEqual(s3StoreOptions(), {});
    assert.throws(
      () => s3StoreOptions({ partSize: 6 * MiB, partSizeMb: 8 }),
      (e: unknown) => isCode("invalid_options")(e) && /partSize.*partSizeMb/.test(String(e)),
    );
    for (const bad of [4, 5.5, 0, Number.NaN, "8" as unknown as number]) {
      assert.throws(
        () => s3StoreOptions({ partSizeMb: bad }),
        (e: unknown) => isCode("invalid_options")(e) && /partSizeMb/.test(String(e)),
        String(bad),
      );
    }
  });
});

Deno.test({
  name: "S3ObjectStore against the emulator",
  ignore: !s3.ok,
  async fn(t) {
    const server = await startS3Server();
    const bucket = `sluice-s3-${crypto.randomUUID().slice(0, 8)}`;
    await server.createBucket(bucket);
    const stores: { close(): Promise<void> }[] = [];
    const open = (url: string, extra?: S3StoreOptions) => {
      const s = S3ObjectStore.fromUrl(url, storeOpts(server, extra));
      stores.push(s);
      return s;
    };
    try {
      await t.step("keys are relative to the URL prefix", async () => {
        const root = open(`s3://${bucket}`);
        const p1 = open(`s3://${bucket}/p1`);
        const p2 = open(`s3://${bucket}/p2/`);
        assert.equal(p1.url, `s3://${bucket}/p1`);
        assert.equal(p2.url, `s3://${bucket}/p2`);
        assert.equal(p1.uriFor("a/b"), `s3://${bucket}/p1/a/b`);
        await p1.put("a/b", enc.encode("in p1"));
        await p2.put("a/b", enc.encode("in p2"));
        await root.put("p1x", enc.encode("beside p1, not in it"));
        assert.equal(dec.decode(await p1.getBytes("a/b")), "in p1");
        assert.equal(dec.decode(await root.getBytes("p1/a/b")), "in p1");
        const p1Keys = [];
        for await (const o of p1.list()) p1Keys.push(o.key);
        assert.deepEqual(p1Keys, ["a/b"]);
        const rootKeys = [];
        for await (const o of root.list()) rootKeys.push(o.key);
        assert.deepEqual(rootKeys, ["p1/a/b", "p1x", "p2/a/b"]);
        await p1.copy("a/b", "c");
        assert.equal(dec.decode(await root.getBytes("p1/c")), "in p1");
      });

      await t.step("openObjectStore dispatches s3:// URLs", async () => {
        const store = await openObjectStore(`s3://${bucket}/p1`, { s3: storeOpts(server) });
        stores.push(store);
        assert.ok(store instanceof S3ObjectStore);
        assert.equal(dec.decode(await store.getBytes("a/b")), "in p1");
      });

      await t.step(
        "the config's s3 section opens a store as is: partSizeMb and sessionToken reach the wire",
        async () => {
          const proxy = flakyHttpProxy(server.endpoint, () => false);
          try {
            const config = await loadConfig({
              stage: "ingest",
              stageSchema: z.object({}),
              cwd: Deno.cwd(),
              env: {
                SLUICE_OBJECT_STORE_URL: `s3://${bucket}/from-config`,
                // A host name, not an IP: the SDK would address it virtual-hosted
                // (bucket.localhost) unless path-style is on, as it is by default here.
                SLUICE_S3_ENDPOINT: proxy.endpoint.replace("127.0.0.1", "localhost"),
                SLUICE_S3_REGION: server.region,
                SLUICE_S3_ACCESS_KEY_ID: server.accessKeyId,
                SLUICE_S3_SECRET_ACCESS_KEY: server.secretAccessKey,
                SLUICE_S3_SESSION_TOKEN: "sts-session-token-123",
                SLUICE_S3_PART_SIZE_MB: "5",
              },
            });
            const store = await openObjectStore(config.objectStore.url, { s3: config.s3 });
            stores.push(store);
            const body = new Uint8Array(11 * MiB).map((_, i) => (i * 13) % 256);
            const info = await store.put("big", body);
            // 11 MiB in 5 MiB parts is three parts (the 8 MiB default would make two).
            assert.match(info.etag, /-3$/);
            assert.deepEqual(await store.getBytes("big"), body);
            assert.ok(proxy.headers.length >= 5, `${proxy.headers.length} requests`);
            for (const h of proxy.headers) {
              assert.equal(h.get("x-amz-security-token"), "sts-session-token-123");
              assert.match(h.get("authorization") ?? "", new RegExp(server.accessKeyId));
            }
            assert.equal(config.s3.forcePathStyle, undefined);
            // Path-style by default with a custom endpoint: the bucket is in the path.
            assert.ok(proxy.seen.every((r) => r.split(" ")[1].startsWith(`/${bucket}/`)));
          } finally {
            await proxy.stop();
          }
        },
      );

      await t.step("a missing bucket is bucket_not_found, not a missing object", async () => {
        const store = open("s3://no-such-bucket-here", { maxAttempts: 1 });
        await assert.rejects(store.getBytes("x"), isCode("bucket_not_found"));
        await assert.rejects(store.put("x", enc.encode("x")), isCode("bucket_not_found"));
      });

      await t.step("awsClientOptions configures an SQS client too", async () => {
        if (!server.sqsEndpoint) return;
        const queueUrl = await server.createQueue("objectstore-events");
        const sqs = new SQSClient(awsClientOptions({
          endpoint: server.sqsEndpoint,
          region: server.region,
          accessKeyId: server.accessKeyId,
          secretAccessKey: server.secretAccessKey,
        }));
        try {
          await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "hi" }));
          const got = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1 }),
          );
          assert.equal(got.Messages?.[0]?.Body, "hi");
        } finally {
          sqs.destroy();
        }
      });
    } finally {
      for (const s of stores) await s.close();
      await server.stop();
    }
  },
});

Deno.test("S3ObjectStore validates keys before any request", async () => {
  // A port nobody listens on: any request would fail with a connection error.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const store = S3ObjectStore.fromUrl("s3://bucket/p", {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: "k",
    secretAccessKey: "s",
    maxAttempts: 1,
  });
  try {
    await assert.rejects(store.getBytes("../x"), InvalidKeyError);
    await assert.rejects(store.put("/abs", enc.encode("x")), InvalidKeyError);
    await assert.rejects(store.head("a/../../b"), InvalidKeyError);
    await assert.rejects(store.delete(""), InvalidKeyError);
    // The same calls with a good key do reach the network, and fail there.
    await assert.rejects(store.getBytes("x"), isCode("object_store_unavailable"));
    await assert.rejects(store.head("x"), isCode("object_store_unavailable"));
  } finally {
    await store.close();
  }
});

Deno.test("S3ObjectStore gives up on a silent server instead of hanging", async () => {
  // Accepts connections and reads requests, never answers.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const draining: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const c of listener) {
      conns.push(c);
      draining.push((async () => {
        const buf = new Uint8Array(4096);
        try {
          while ((await c.read(buf)) !== null) { /* discard */ }
        } catch { /* closed */ }
      })());
    }
  })();
  const store = S3ObjectStore.fromUrl("s3://bucket", {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    accessKeyId: "k",
    secretAccessKey: "s",
    idleTimeoutMs: 200,
    maxAttempts: 2,
    retryBaseDelayMs: 1,
  });
  try {
    await assert.rejects(store.head("x"), isCode("object_store_unavailable"));
    assert.equal(conns.length, 2, "one connection per attempt");
  } finally {
    await store.close();
    listener.close();
    await accepting.catch(() => {});
    for (const c of conns) {
      try {
        c.close();
      } catch { /* already closed by the client */ }
    }
    await Promise.all(draining);
  }
});

/** An HTTP proxy in front of the emulator that answers 503 SlowDown while `fail(req)` says so. */
function flakyHttpProxy(target: string, fail: (req: Request, n: number) => boolean) {
  const seen: string[] = [];
  const headers: Headers[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      const n = seen.push(`${req.method} ${url.pathname}${url.search}`);
      headers.push(new Headers(req.headers));
      const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
      if (fail(req, n)) {
        return new Response(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>` +
            `<Message>Please reduce your request rate.</Message></Error>`,
          { status: 503, headers: { "content-type": "application/xml" } },
        );
      }
      const res = await fetch(target + url.pathname + url.search, {
        method: req.method,
        headers: req.headers,
        body,
      });
      return new Response(res.body, { status: res.status, headers: res.headers });
    },
  );
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    seen,
    headers,
    stop: () => server.shutdown(),
  };
}

/** A TCP proxy that cuts the first `cuts` connections after `afterBytes` of response. */
function cuttingTcpProxy(targetPort: number, cuts: number, afterBytes: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const tasks: Promise<void>[] = [];
  const conns = new Set<Deno.Conn>();
  const pump = async (from: Deno.Conn, to: Deno.Conn, limit: number) => {
    const buf = new Uint8Array(16 * 1024);
    let sent = 0;
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, Math.min(n, limit - sent));
        if (chunk.length) await to.write(chunk);
        sent += chunk.length;
        if (sent >= limit) break;
      }
    } catch {
      // the other side went away
    }
    for (const c of [from, to]) {
      if (conns.delete(c)) c.close();
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const cut = connections++ < cuts;
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      conns.add(client);
      conns.add(upstream);
      tasks.push(pump(client, upstream, Infinity));
      tasks.push(pump(upstream, client, cut ? afterBytes : Infinity));
    }
  })();
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => connections,
    async stop() {
      listener.close();
      await accepting.catch(() => {});
      for (const c of conns) c.close();
      conns.clear();
      await Promise.all(tasks);
    },
  };
}

Deno.test({
  name: "S3ObjectStore retries transient failures",
  ignore: !s3.ok,
  async fn(t) {
    const server = await startS3Server();
    const bucket = `sluice-retry-${crypto.randomUUID().slice(0, 8)}`;
    await server.createBucket(bucket);
    const direct = S3ObjectStore.fromUrl(`s3://${bucket}`, storeOpts(server));
    try {
      await t.step("503 SlowDown twice, then success", async () => {
        const proxy = flakyHttpProxy(server.endpoint, (_req, n) => n <= 2);
        const store = S3ObjectStore.fromUrl(`s3://${bucket}`, {
          ...storeOpts(server, { maxAttempts: 4, retryBaseDelayMs: 5 }),
          endpoint: proxy.endpoint,
        });
        try {
          await store.put("r/a", enc.encode("after retries"));
          assert.equal(proxy.seen.length, 3);
          assert.equal(dec.decode(await direct.getBytes("r/a")), "after retries");
        } finally {
          await store.close();
          await proxy.stop();
        }
      });

      await t.step("with maxAttempts 1 the first 503 is final", async () => {
        const proxy = flakyHttpProxy(server.endpoint, () => true);
        const store = S3ObjectStore.fromUrl(`s3://${bucket}`, {
          ...storeOpts(server, { maxAttempts: 1 }),
          endpoint: proxy.endpoint,
        });
        try {
          await assert.rejects(
            store.getBytes("r/a"),
            (e: unknown) =>
              isCode("object_store_unavailable")(e) && /SlowDown/.test((e as Error).message),
          );
          assert.equal(proxy.seen.length, 1);
        } finally {
          await store.close();
          await proxy.stop();
        }
      });

      await t.step("a failed multipart part is retried alone", async () => {
        let failedParts = 0;
        const proxy = flakyHttpProxy(server.endpoint, (req) => {
          const u = new URL(req.url);
          if (req.method === "PUT" && u.searchParams.get("partNumber") === "2" && failedParts < 2) {
            failedParts++;
            return true;
          }
          return false;
        });
        const store = S3ObjectStore.fromUrl(`s3://${bucket}`, {
          ...storeOpts(server, { maxAttempts: 3, retryBaseDelayMs: 5, partSize: 5 * MiB }),
          endpoint: proxy.endpoint,
        });
        try {
          const body = new Uint8Array(11 * MiB).map((_, i) => i % 251);
          const info = await store.put("r/multi", body);
          assert.match(info.etag, /-3$/);
          assert.equal(failedParts, 2);
          const parts = proxy.seen.filter((s) => s.startsWith("PUT") && s.includes("partNumber"));
          assert.equal(parts.length, 3 + 2, "three parts plus two retries of part 2");
          assert.deepEqual(await direct.getBytes("r/multi"), body);
        } finally {
          await store.close();
          await proxy.stop();
        }
      });

      await t.step("a response cut mid-body is read again", async () => {
        const body = new Uint8Array(2 * MiB).map((_, i) => (i * 7) % 256);
        await direct.put("r/cut", body);
        const port = Number(new URL(server.endpoint).port);
        const proxy = cuttingTcpProxy(port, 1, 256 * 1024);
        const store = S3ObjectStore.fromUrl(`s3://${bucket}`, {
          ...storeOpts(server, { maxAttempts: 3, retryBaseDelayMs: 5 }),
          endpoint: proxy.endpoint,
        });
        try {
          assert.deepEqual(await store.getBytes("r/cut"), body);
          assert.ok(proxy.connections() >= 2, "the first connection was cut, a second one used");
        } finally {
          await store.close();
          await proxy.stop();
        }
      });
    } finally {
      await direct.close();
      await server.stop();
    }
  },
});

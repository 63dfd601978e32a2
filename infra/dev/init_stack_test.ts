import assert from "node:assert/strict";
import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { initStack, optionsFromEnv } from "./init_stack.ts";

const s3ok = await s3Availability();
if (!s3ok.ok) console.log(`SKIP init_stack against S3: ${s3ok.reason}`);

Deno.test("init_stack: settings from the compose environment, refused when wrong", async () => {
  const o = optionsFromEnv({
    SLUICE_S3_ENDPOINT: "http://rustfs:9000",
    AWS_ACCESS_KEY_ID: "k",
    AWS_SECRET_ACCESS_KEY: "s",
    SLUICE_DEV_BUCKETS: "sluice-raw, sluice-dataset",
    SLUICE_DEV_NOTIFY_BUCKET: "sluice-raw",
    SLUICE_DEV_NOTIFY_ARN: "arn:rustfs:sqs:us-east-1:ingest:webhook",
  });
  assert.deepEqual(o.buckets, ["sluice-raw", "sluice-dataset"]);
  assert.equal(o.notify?.queueArn, "arn:rustfs:sqs:us-east-1:ingest:webhook");
  await assert.rejects(
    initStack({ ...o, notify: { bucket: "sluice-raw", queueArn: "http://dev:9101/events" } }),
    /notify\.queueArn: expected a queue ARN/,
  );
  await assert.rejects(initStack({ ...o, buckets: [] }), /buckets/);
});

Deno.test({
  name: "init_stack: creates the buckets once against the S3 test server, idempotently",
  ignore: !s3ok.ok,
  fn: async () => {
    const s3 = await startS3Server();
    try {
      const opts = {
        endpoint: s3.endpoint,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        buckets: ["init-raw", "init-dataset"],
        waitMs: 5_000,
      };
      const first = await initStack(opts, () => {});
      assert.deepEqual(first.created, ["init-raw", "init-dataset"]);
      const second = await initStack(opts, () => {});
      assert.deepEqual(second.created, []);
      assert.deepEqual(second.existing, ["init-raw", "init-dataset"]);
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      try {
        for (const b of opts.buckets) await client.send(new HeadBucketCommand({ Bucket: b }));
      } finally {
        client.destroy();
      }
    } finally {
      await s3.stop();
    }
  },
});

// The S3 emulator accepts but does not keep notification rules (RustFS does; the dev-stack
// workflow runs init against RustFS). Here: the request shape, against a server that keeps the
// last rule it was given and returns it, as S3 does.
Deno.test("init_stack: the notification rule request names the webhook target's ARN", async () => {
  let rule = "";
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    seen.push(`${req.method} ${url.pathname}${url.search}`);
    if (url.searchParams.has("notification")) {
      if (req.method === "PUT") {
        rule = await req.text();
        return new Response(null, { status: 200 });
      }
      return new Response(rule, { headers: { "content-type": "application/xml" } });
    }
    return new Response(null, { status: 200 });
  });
  try {
    const result = await initStack({
      endpoint: `http://127.0.0.1:${server.addr.port}`,
      accessKeyId: "k",
      secretAccessKey: "s",
      buckets: ["sluice-raw"],
      notify: { bucket: "sluice-raw", queueArn: "arn:rustfs:sqs:us-east-1:ingest:webhook" },
      waitMs: 5_000,
    }, () => {});
    assert.deepEqual(result.notification, ["arn:rustfs:sqs:us-east-1:ingest:webhook"]);
    assert.match(rule, /<Queue>arn:rustfs:sqs:us-east-1:ingest:webhook<\/Queue>/);
    assert.match(rule, /<Event>s3:ObjectCreated:\*<\/Event>/);
    assert.match(rule, /<Event>s3:ObjectRemoved:\*<\/Event>/);
    assert.ok(seen.includes("PUT /sluice-raw/?notification="), seen.join("\n"));
  } finally {
    await server.shutdown();
  }
});

Deno.test("init_stack: an endpoint that never answers is reported after the wait", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await assert.rejects(
    initStack({
      endpoint: `http://127.0.0.1:${port}`,
      accessKeyId: "k",
      secretAccessKey: "s",
      buckets: ["b-one"],
      waitMs: 1_500,
    }, () => {}),
    /did not answer within 1500 ms/,
  );
});

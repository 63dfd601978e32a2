import assert from "node:assert/strict";
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Buffer } from "node:buffer";
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { s3Availability, startS3Server } from "./s3.ts";

const s3 = await s3Availability();

Deno.test({
  name: "harness: S3 emulator answers on loopback only",
  ignore: !s3.ok,
  async fn(t) {
    const server = await startS3Server();
    const client = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      credentials: server,
      forcePathStyle: true,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    try {
      await t.step("objects round-trip through a created bucket", async () => {
        await server.createBucket("harness-bucket");
        await server.createBucket("harness-bucket"); // idempotent
        await client.send(
          new PutObjectCommand({ Bucket: "harness-bucket", Key: "a/b.txt", Body: "hello" }),
        );
        const got = await client.send(
          new GetObjectCommand({ Bucket: "harness-bucket", Key: "a/b.txt" }),
        );
        assert.equal(await got.Body?.transformToString(), "hello");
      });

      await t.step("paginated listings follow S3's UTF-8 byte order", async () => {
        // fauxqs alone sorts by locale and pages by `<=`: these keys came back duplicated/lost.
        const keys = ["B", "a", "a-y", "a/x", "\uFFFD", "\u{1F600}", "a b", "a+b", "Z/1", "z"];
        await server.createBucket("harness-order");
        for (const k of keys) {
          await client.send(new PutObjectCommand({ Bucket: "harness-order", Key: k, Body: k }));
        }
        const byteOrder = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        for (const maxKeys of [1, 3, 1000]) {
          const listed: string[] = [];
          let token: string | undefined;
          do {
            const page = await client.send(
              new ListObjectsV2Command({
                Bucket: "harness-order",
                MaxKeys: maxKeys,
                ContinuationToken: token,
              }),
            );
            listed.push(...(page.Contents ?? []).map((o) => o.Key!));
            token = page.NextContinuationToken;
          } while (token);
          assert.deepEqual(listed, byteOrder, `MaxKeys ${maxKeys}`);
        }
        const after = await client.send(
          new ListObjectsV2Command({ Bucket: "harness-order", StartAfter: "a+b" }),
        );
        assert.deepEqual(
          after.Contents?.map((o) => o.Key),
          byteOrder.slice(byteOrder.indexOf("a+b") + 1),
        );
      });

      await t.step("the emulator is not reachable on other interfaces", async (t) => {
        if (!server.emulated) return;
        const url = new URL(server.endpoint);
        assert.equal(url.hostname, "127.0.0.1");
        const others = Deno.networkInterfaces().filter((i) =>
          i.family === "IPv4" && !i.address.startsWith("127.")
        );
        for (const iface of others) {
          await t.step(`refused on ${iface.address}`, async () => {
            await assert.rejects(
              async () => {
                const conn = await Deno.connect({ hostname: iface.address, port: +url.port });
                conn.close();
              },
              (err: unknown) => err instanceof Deno.errors.ConnectionRefused,
            );
          });
        }
      });
    } finally {
      client.destroy();
      await server.stop();
    }
  },
});

Deno.test({
  name: "harness: SQS create, send, long-poll receive, delete",
  ignore: !s3.ok,
  async fn(t) {
    const server = await startS3Server();
    if (!server.sqsEndpoint) {
      await server.stop();
      console.warn("no SQS endpoint on this S3 server (SLUICE_TEST_SQS_ENDPOINT unset): skipped");
      return;
    }
    const sqs = new SQSClient({
      endpoint: server.sqsEndpoint,
      region: server.region,
      credentials: server,
    });
    try {
      const queueUrl = await server.createQueue("harness-events");

      await t.step("a long poll waits for a message sent while it waits", async () => {
        const started = performance.now();
        const receiving = sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            WaitTimeSeconds: 5,
            MaxNumberOfMessages: 1,
            MessageAttributeNames: ["All"],
          }),
        );
        await new Promise((r) => setTimeout(r, 300));
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: JSON.stringify({ key: "raw/a b+c.jpg" }),
            MessageAttributes: { kind: { DataType: "String", StringValue: "s3-event" } },
          }),
        );
        const got = await receiving;
        // Arrived only after the send, so the receive really waited (not a short poll).
        assert.ok(performance.now() - started >= 250);
        assert.equal(got.Messages?.length, 1);
        const msg = got.Messages![0];
        assert.deepEqual(JSON.parse(msg.Body!), { key: "raw/a b+c.jpg" });
        assert.equal(msg.MessageAttributes?.kind?.StringValue, "s3-event");
        assert.ok(msg.ReceiptHandle);

        await sqs.send(
          new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: msg.ReceiptHandle }),
        );
        const attrs = await sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: queueUrl,
            AttributeNames: [
              "ApproximateNumberOfMessages",
              "ApproximateNumberOfMessagesNotVisible",
            ],
          }),
        );
        assert.equal(attrs.Attributes?.ApproximateNumberOfMessages, "0");
        assert.equal(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible, "0");
      });

      await t.step("an empty queue's long poll returns nothing after its wait", async () => {
        const started = performance.now();
        const got = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1 }),
        );
        assert.equal(got.Messages?.length ?? 0, 0);
        assert.ok(performance.now() - started >= 900, "expected the receive to wait ~1 s");
      });

      await t.step("the queue URL alone routes requests (no endpoint override)", async () => {
        const warnings: unknown[] = [];
        const quiet = { debug() {}, info() {}, warn: (m: unknown) => warnings.push(m), error() {} };
        // No endpoint: the SDK must route by the queue URL's own origin (it warns that it does).
        const byUrl = new SQSClient({ region: server.region, credentials: server, logger: quiet });
        try {
          await byUrl.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "x" }));
          const got = await byUrl.send(
            new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1 }),
          );
          assert.equal(got.Messages?.[0]?.Body, "x");
          assert.ok(warnings.length > 0, "expected the SDK to note it used the queue URL's host");
        } finally {
          byUrl.destroy();
        }
      });
    } finally {
      sqs.destroy();
      await server.stop();
    }
  },
});

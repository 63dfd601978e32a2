import assert from "node:assert/strict";
import { join } from "node:path";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { openManifest } from "../../common/manifest/mod.ts";
import { createStageMetrics } from "../../common/metrics/mod.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { createIngestStage } from "./stage.ts";
import { openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();

function awsRecord(bucket: string, eventName: string, key: string, sequencer: string) {
  return {
    eventVersion: "2.1",
    eventSource: "aws:s3",
    awsRegion: "us-east-1",
    eventTime: new Date().toISOString(),
    eventName,
    s3: {
      s3SchemaVersion: "1.0",
      configurationId: "sluice",
      bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
      // AWS form-encodes keys but leaves "/" alone.
      object: {
        key: key.split("/").map((s) => encodeURIComponent(s).replace(/%20/g, "+")).join("/"),
        size: 100,
        eTag: `etag-${sequencer}`,
        sequencer,
      },
    },
  };
}

function sns(message: unknown) {
  return {
    Type: "Notification",
    MessageId: crypto.randomUUID(),
    TopicArn: "arn:aws:sns:us-east-1:123456789012:sluice-raw",
    Subject: "Amazon S3 Notification",
    Message: JSON.stringify(message),
    Timestamp: new Date().toISOString(),
  };
}

function eventBridge(bucket: string, type: string, key: string, sequencer: string) {
  return {
    version: "0",
    id: crypto.randomUUID(),
    "detail-type": type,
    source: "aws.s3",
    account: "123456789012",
    time: new Date().toISOString(),
    region: "us-east-1",
    resources: [`arn:aws:s3:::${bucket}`],
    detail: {
      version: "0",
      bucket: { name: bucket },
      object: { key, size: 100, etag: `etag-${sequencer}`, sequencer },
      "request-id": "R1",
      requester: "123456789012",
      reason: "PutObject",
    },
  };
}

Deno.test({
  name: "SQS: AWS, SNS-wrapped and EventBridge messages recorded, then deleted; TestEvent ignored",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const queueUrl = await server.createQueue(`ingest-${Date.now()}`);
    const env = await openTestEnv(server, {
      settings: {
        sqsQueueUrl: queueUrl,
        sqsEndpoint: server.sqsEndpoint,
        sqsWaitSeconds: 0,
        // Visibility 0: whatever is not deleted is visible to the very next receive.
        sqsVisibilityTimeoutS: 0,
      },
    });
    const stage = createIngestStage(env.config, { ...env });
    const sqs = new SQSClient({
      endpoint: server.sqsEndpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    const send = (body: unknown) =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: typeof body === "string" ? body : JSON.stringify(body),
        }),
      );
    const status = async (key: string) =>
      (await env.manifest.getImageBySource(env.source.uriFor(key)))?.status ?? null;
    const bucket = env.rawBucket;
    try {
      await t.step("every shape is recorded and its message deleted", async () => {
        await send({
          Records: [awsRecord(bucket, "ObjectCreated:Put", "in/plain one.jpg", "0A01")],
        });
        await send(
          sns({ Records: [awsRecord(bucket, "ObjectCreated:Put", "in/via-sns.jpg", "0A02")] }),
        );
        await send(eventBridge(bucket, "Object Created", "in/via eventbridge.png", "0A03"));
        await send({ Service: "Amazon S3", Event: "s3:TestEvent", Bucket: bucket, Time: "t" });
        await send(sns({ Service: "Amazon S3", Event: "s3:TestEvent", Bucket: bucket }));
        await send("this is not an S3 notification");
        let total = { received: 0, deleted: 0, kept: 0, unrecognised: 0, events: 0 };
        for (let i = 0; i < 10 && total.received < 6; i++) {
          const r = await stage.receiveSqs();
          total = {
            received: total.received + r.received,
            deleted: total.deleted + r.deleted,
            kept: total.kept + r.kept,
            unrecognised: total.unrecognised + r.unrecognised,
            events: total.events + r.events,
          };
        }
        assert.deepEqual(total, { received: 6, deleted: 6, kept: 0, unrecognised: 1, events: 3 });
        assert.equal(await status("in/plain one.jpg"), "pending");
        assert.equal(await status("in/via-sns.jpg"), "pending");
        assert.equal(await status("in/via eventbridge.png"), "pending");
        const again = await stage.receiveSqs();
        assert.equal(again.received, 0, "expected every message deleted");
        const text = await env.metrics.metrics();
        assert.match(text, /sluice_ingest_events_total\{source="sqs",result="test_event"\} 2/);
        assert.match(text, /sluice_ingest_sqs_messages_total\{result="unrecognised"\} 1/);
      });

      await t.step("a message delivered twice records nothing new", async () => {
        const pending = async () => (await env.manifest.workCounts("ingest")).ingest.pending;
        const before = await pending();
        const row = await env.manifest.getImageBySource(env.source.uriFor("in/plain one.jpg"));
        const body = {
          Records: [awsRecord(bucket, "ObjectCreated:Put", "in/plain one.jpg", "0A01")],
        };
        await send(body);
        await send(sns(body));
        let handled = 0;
        for (let i = 0; i < 10 && handled < 2; i++) handled += (await stage.receiveSqs()).deleted;
        assert.equal(handled, 2);
        assert.equal(await pending(), before);
        const after = await env.manifest.getImageBySource(env.source.uriFor("in/plain one.jpg"));
        assert.deepEqual(after, row, "the image row is untouched");
        assert.match(
          await env.metrics.metrics(),
          /sluice_ingest_events_total\{source="sqs",result="unchanged"\} 2/,
        );
        assert.match(
          await env.metrics.metrics(),
          /sluice_ingest_event_lag_seconds_count\{source="sqs"\} 5/,
        );
      });

      await t.step("a removal via SNS marks the image deleted", async () => {
        await send(
          sns({ Records: [awsRecord(bucket, "ObjectRemoved:Delete", "in/via-sns.jpg", "0A09")] }),
        );
        const r = await stage.receiveSqs();
        assert.equal(r.deleted, 1);
        assert.equal(await status("in/via-sns.jpg"), "deleted");
      });

      await t.step("a message whose events cannot be recorded stays on the queue", async () => {
        const brokenPath = join(env.dir, "broken.db");
        const broken = await openManifest(`sqlite://${brokenPath}`);
        await broken.close();
        const failing = createIngestStage(env.config, {
          ...env,
          manifest: broken,
          metrics: createStageMetrics("ingest", { processMetrics: false }),
        });
        try {
          await send({ Records: [awsRecord(bucket, "ObjectCreated:Put", "in/retry.jpg", "0B01")] });
          const r = await failing.receiveSqs();
          assert.deepEqual([r.received, r.kept, r.deleted], [1, 1, 0]);
          assert.equal(await status("in/retry.jpg"), null);
          const r2 = await stage.receiveSqs();
          assert.deepEqual([r2.received, r2.deleted, r2.events], [1, 1, 1]);
          assert.equal(await status("in/retry.jpg"), "pending");
        } finally {
          await failing.close();
        }
      });
    } finally {
      sqs.destroy();
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

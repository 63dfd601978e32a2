import assert from "node:assert/strict";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { serveStage } from "../../common/http/mod.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { parseS3Notification } from "./s3_event.ts";
import { createIngestStage } from "./stage.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();

function created(bucket: string, key: string, etag: string, sequencer: string) {
  return {
    EventName: "s3:ObjectCreated:Put",
    Key: `${bucket}/${key}`,
    Records: [{
      eventName: "s3:ObjectCreated:Put",
      eventTime: new Date().toISOString(),
      s3: {
        bucket: { name: bucket },
        object: { key: encodeURIComponent(key), eTag: etag, sequencer },
      },
    }],
  };
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 15_000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "reconciliation finds the object whose event was dropped, and counts it",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const env = await openTestEnv(server);
    const stage = createIngestStage(env.config, { ...env });
    try {
      const keys = ["e/one.jpg", "e/two.jpg", "e/three.jpg"];
      for (const [i, k] of keys.entries()) {
        await env.put(k, await makeImage({ rgb: [40 * i, 100, 200 - 40 * i] }));
      }
      await t.step("events for two of the three objects", async () => {
        for (const [i, k] of keys.slice(0, 2).entries()) {
          const etag = (await env.source.head(k))!.etag;
          const r = await stage.recordEvents(
            parseS3Notification(created(env.rawBucket, k, etag, `0${i}`)),
            "webhook",
          );
          assert.equal(r.accepted, 1);
        }
      });
      await t.step("the reconciling list finds only the third", async () => {
        const r = await stage.discover({ reconcile: true });
        assert.deepEqual([r.created, r.unchanged], [1, 2]);
        const text = await env.metrics.metrics();
        assert.match(text, /sluice_ingest_found_by_reconcile_total 1\n/);
        assert.match(text, /sluice_ingest_objects_seen_total\{via="reconcile"\} 3/);
        assert.equal((await env.manifest.workCounts("ingest")).ingest.pending, 3);
      });
      await t.step("after ingestion, another reconciliation finds nothing", async () => {
        assert.equal((await stage.work({ once: true, progress: false })).done, 3);
        const r = await stage.discover({ reconcile: true });
        assert.deepEqual([r.created, r.changed, r.unchanged], [0, 0, 3]);
        assert.match(await env.metrics.metrics(), /sluice_ingest_found_by_reconcile_total 1\n/);
      });
    } finally {
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "events mode runs webhook, SQS, start-up reconciliation and the worker together",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const queueUrl = await server.createQueue(`events-${Date.now()}`);
    const env = await openTestEnv(server, {
      settings: {
        reconcileIntervalMs: 0,
        // This case posts events without a token.
        insecureWebhook: true,
        sqsQueueUrl: queueUrl,
        sqsEndpoint: server.sqsEndpoint,
        sqsWaitSeconds: 1,
      },
    });
    const sqs = new SQSClient({
      endpoint: server.sqsEndpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    const stage = createIngestStage(env.config, { ...env });
    const shutdown = new AbortController();
    const http = serveStage(stage.handler, {
      hostname: "127.0.0.1",
      port: 0,
      signal: shutdown.signal,
      log: env.log,
    });
    try {
      await env.put("before.jpg", await makeImage({ rgb: [1, 200, 1] }));
      const running = stage.runEvents(shutdown.signal);
      const ingested = async () => (await env.manifest.stats()).images.ingested ?? 0;
      await waitFor(
        "the object that was there before start-up",
        async () => (await ingested()) === 1,
      );
      await env.put("after.jpg", await makeImage({ rgb: [200, 1, 1] }));
      const etag = (await env.source.head("after.jpg"))!.etag;
      const res = await fetch(`http://127.0.0.1:${http.addr.port}/events`, {
        method: "POST",
        body: JSON.stringify(created(env.rawBucket, "after.jpg", etag, "01")),
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      await waitFor("the announced object", async () => (await ingested()) === 2);
      await env.put("queued.jpg", await makeImage({ rgb: [1, 1, 200] }));
      const queuedEtag = (await env.source.head("queued.jpg"))!.etag;
      const aws = created(env.rawBucket, "queued.jpg", queuedEtag, "02");
      // AWS names events without the s3: prefix and sends no MinIO summary fields.
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify({
            Records: aws.Records.map((r) => ({ ...r, eventName: "ObjectCreated:Put" })),
          }),
        }),
      );
      await waitFor("the object announced on SQS", async () => (await ingested()) === 3);
      shutdown.abort();
      await running;
      const counts = (await env.manifest.workCounts("ingest")).ingest;
      assert.equal(counts.done, 3);
      assert.equal(counts.leased ?? 0, 0, "no claim is left behind at shutdown");
    } finally {
      shutdown.abort();
      sqs.destroy();
      await http.finished;
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

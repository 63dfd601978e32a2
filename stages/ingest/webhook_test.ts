import assert from "node:assert/strict";
import { serveStage } from "../../common/http/mod.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { createIngestStage } from "./stage.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();
const TOKEN = "s3cret-token";

/** A RustFS/MinIO notification body: one record, key form-encoded with `/` encoded too. */
function notification(
  bucket: string,
  eventName: string,
  key: string,
  opts: { sequencer?: string; etag?: string; size?: number } = {},
) {
  const encoded = encodeURIComponent(key).replace(/%20/g, "+");
  return {
    EventName: eventName,
    Key: `${bucket}/${key}`,
    Records: [record(bucket, eventName, encoded, opts)],
  };
}

function record(
  bucket: string,
  eventName: string,
  encodedKey: string,
  opts: { sequencer?: string; etag?: string; size?: number } = {},
) {
  return {
    eventVersion: "2.0",
    eventSource: "rustfs:s3",
    awsRegion: "",
    eventTime: new Date().toISOString(),
    eventName,
    userIdentity: { principalId: "rustfsadmin" },
    s3: {
      s3SchemaVersion: "1.0",
      configurationId: "sluice",
      bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
      object: {
        key: encodedKey,
        ...(opts.size !== undefined ? { size: opts.size } : {}),
        ...(opts.etag ? { eTag: opts.etag } : {}),
        ...(opts.sequencer ? { sequencer: opts.sequencer } : {}),
      },
    },
  };
}

Deno.test({
  name: "webhook: MinIO/RustFS bodies over HTTP, bearer token, HEAD /, duplicates, ordering",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const env = await openTestEnv(server, { settings: { webhookToken: TOKEN } });
    const stage = createIngestStage(env.config, { ...env });
    const ac = new AbortController();
    const http = serveStage(stage.handler, {
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      log: env.log,
    });
    const base = `http://127.0.0.1:${http.addr.port}`;
    const post = async (body: unknown, token: string | null = TOKEN) => {
      const res = await fetch(`${base}/events`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const pending = async () => (await env.manifest.workCounts("ingest")).ingest?.pending ?? 0;
    try {
      await t.step("HEAD / answers 200 (RustFS's reachability probe)", async () => {
        const res = await fetch(`${base}/`, { method: "HEAD" });
        await res.body?.cancel();
        assert.equal(res.status, 200);
      });

      const key = "cams/night shot+1.jpg";
      const bytes = await makeImage({ rgb: [10, 120, 220] });
      await env.put(key, bytes);
      const etag = (await env.source.head(key))!.etag;
      const created = notification(env.rawBucket, "s3:ObjectCreated:Put", key, {
        etag,
        size: bytes.byteLength,
        sequencer: "1800000000000001",
      });

      await t.step("a missing or wrong bearer token is refused with 401", async () => {
        const none = await post(created, null);
        assert.equal(none.status, 401);
        assert.equal(none.body.error, "unauthorized");
        const wrong = await post(created, "s3cret-tokeX");
        assert.equal(wrong.status, 401);
        assert.equal(await pending(), 0);
      });

      await t.step("the right token is accepted and the decoded key recorded", async () => {
        const res = await post(created);
        assert.equal(res.status, 200);
        assert.equal(res.body.accepted, 1);
        assert.deepEqual(res.body.results, { created: 1 });
        const row = await env.manifest.getImageBySource(env.source.uriFor(key));
        assert.ok(row, "expected an image row for the decoded key");
        assert.equal(row.sourceKey, key);
        assert.equal(row.sourceSequencer, "1800000000000001");
        assert.equal(await pending(), 1);
        const text = await env.metrics.metrics();
        assert.match(text, /sluice_ingest_event_lag_seconds_count\{source="webhook"\} 1\n/);
        assert.match(text, /sluice_ingest_objects_seen_total\{via="webhook"\} 1\n/);
      });

      await t.step("a duplicate delivery records nothing new", async () => {
        const res = await post(created);
        assert.deepEqual(res.body.results, { unchanged: 1 });
        assert.equal(await pending(), 1);
        const w = await stage.work({ once: true, progress: false });
        assert.equal(w.done, 1);
        const again = await post(created);
        assert.deepEqual(again.body.results, { unchanged: 1 });
        assert.equal(await pending(), 0);
        assert.equal((await env.manifest.stats()).images.ingested, 1);
      });

      await t.step("an event for another bucket is ignored and counted", async () => {
        const res = await post(notification("some-other-bucket", "s3:ObjectCreated:Put", "z.jpg"));
        assert.equal(res.status, 200);
        assert.deepEqual(res.body.results, { wrong_bucket: 1 });
        assert.equal(res.body.accepted, 0);
        const text = await env.metrics.metrics();
        assert.match(
          text,
          /sluice_ingest_events_total\{source="webhook",result="wrong_bucket"\} 1/,
        );
      });

      await t.step(
        "out of order: a remove then an older create leaves the key deleted",
        async () => {
          const k = "late.jpg";
          const uri = env.source.uriFor(k);
          const rm = await post(
            notification(env.rawBucket, "s3:ObjectRemoved:Delete", k, {
              sequencer: "1800000000000005",
            }),
          );
          assert.deepEqual(rm.body.results, { removed: 1 });
          const old = await post(
            notification(env.rawBucket, "s3:ObjectCreated:Put", k, {
              sequencer: "1800000000000004",
              etag: "e-old",
            }),
          );
          assert.deepEqual(old.body.results, { stale: 1 });
          assert.equal((await env.manifest.getImageBySource(uri))!.status, "deleted");
          assert.equal(await pending(), 0);
          const newer = await post(
            notification(env.rawBucket, "s3:ObjectCreated:Put", k, {
              sequencer: "1800000000000006",
              etag: "e-new",
            }),
          );
          assert.deepEqual(newer.body.results, { changed: 1 });
          assert.equal((await env.manifest.getImageBySource(uri))!.status, "pending");
        },
      );

      await t.step("records of one body are applied in sequencer order", async () => {
        const k = "batch.jpg";
        const enc = encodeURIComponent(k);
        const body = {
          EventName: "s3:ObjectRemoved:Delete",
          Key: `${env.rawBucket}/${k}`,
          Records: [
            record(env.rawBucket, "s3:ObjectRemoved:Delete", enc, {
              sequencer: "1800000000000009",
            }),
            record(env.rawBucket, "s3:ObjectCreated:Put", enc, {
              sequencer: "1800000000000008",
              etag: "e1",
            }),
          ],
        };
        const res = await post(body);
        assert.deepEqual(res.body.results, { created: 1, removed: 1 });
        const row = await env.manifest.getImageBySource(env.source.uriFor(k));
        assert.equal(row!.status, "deleted");
        assert.equal(row!.sourceSequencer, "1800000000000009");
      });

      await t.step("a body that is not JSON answers 400", async () => {
        const res = await post("{not json");
        assert.equal(res.status, 400);
        assert.equal(res.body.error, "bad_event");
      });
    } finally {
      ac.abort();
      await http.finished;
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "webhook: no token on a non-loopback bind refuses every event",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    // Without a token the webhook is served only when insecureWebhook says so, and even then only
    // to a loopback bind.
    const env = await openTestEnv(server, { settings: { insecureWebhook: true } });
    try {
      const body = JSON.stringify(notification("b", "s3:ObjectCreated:Put", "a.jpg"));
      const publicStage = createIngestStage(
        { ...env.config, http: { ...env.config.http, hostname: "0.0.0.0" } },
        { ...env },
      );
      const res = await publicStage.handler.fetch(
        new Request("http://x/events", { method: "POST", body }),
      );
      assert.equal(res.status, 403);
      assert.equal((await res.json()).error, "no_webhook_token");
      const counts = (await env.manifest.workCounts("ingest")).ingest;
      assert.equal((counts?.pending ?? 0) + (counts?.done ?? 0), 0, JSON.stringify(counts));

      const localStage = createIngestStage(env.config, { ...env });
      const ok = await localStage.handler.fetch(
        new Request("http://x/events", { method: "POST", body }),
      );
      assert.notEqual(ok.status, 403);
      await ok.body?.cancel();
    } finally {
      await env.close();
      await server.stop();
    }
  },
});

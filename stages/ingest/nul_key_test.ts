/**
 * Issue 12 item 8: an event for a key with a NUL byte (`a.jpg\0evil`) used to be recorded
 * with the key cut at the NUL when read back, so the object `a.jpg` was ingested under it.
 * Now the key is recorded with its control characters escaped, and the item fails as
 * `invalid_key` without reading any object.
 */
import { objectCreatedEvent } from "../../tests/support/s3_event.ts";
import assert from "node:assert/strict";
import { createIngestStage } from "./stage.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";

const s3 = await s3Availability();

Deno.test({
  name: "ingest: a key with a NUL byte is refused as invalid_key; the object before it is not read",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const env = await openTestEnv(server, { settings: { insecureWebhook: true } });
    const stage = createIngestStage(env.config, { ...env });
    try {
      await env.put("a.jpg", await makeImage({ rgb: [10, 200, 30] }));
      const key = "a.jpg\u0000evil.jpg";
      const body = objectCreatedEvent(env.rawBucket, key, { eTag: "abc" });
      const res = await stage.handler.fetch(
        new Request("http://x/events", { method: "POST", body: JSON.stringify(body) }),
      );
      assert.equal(res.status, 200, await res.text());
      await stage.work({ once: true, progress: false });
      const images = [
        ...await env.manifest.listImages({ limit: 100 }),
      ];
      assert.equal(images.length, 1, JSON.stringify(images));
      const [img] = images;
      assert.notEqual(img.sourceKey, "a.jpg", "expected the key not to be cut at the NUL");
      assert.equal(img.sha256, null, "expected no object read for the refused key");
      const [work] = await env.manifest.listWork("ingest", undefined, 10);
      assert.equal(work.state, "failed");
      assert.match(work.lastError ?? "", /^invalid_key/);
    } finally {
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

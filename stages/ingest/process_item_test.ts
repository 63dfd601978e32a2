import assert from "node:assert/strict";
import sharp from "sharp";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { augmentationKeyFor, datasetKeyFor } from "./process_item.ts";
import { parseS3Notification } from "./s3_event.ts";
import { createIngestStage } from "./stage.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();

Deno.test("published keys are content-addressed and stay relative", () => {
  const sha = "ab" + "0".repeat(62);
  assert.equal(datasetKeyFor("images", sha, "jpeg"), `images/ab/${sha}.jpg`);
  assert.equal(datasetKeyFor("data/images/", sha, "tiff"), `data/images/ab/${sha}.tif`);
  assert.equal(
    augmentationKeyFor("augmented", "img_01", "default", 3, 99, "png"),
    "augmented/img_01/default/3-99.png",
  );
  assert.throws(() => augmentationKeyFor("augmented", "img_01", "..", 0, 1, "jpeg"), {
    name: "InvalidKeyError",
  });
});

Deno.test({
  name: "processing: size unknown until streamed, objects gone before processing, removals",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const env = await openTestEnv(server, { settings: { maxBytes: 20_000 } });
    const stage = createIngestStage(env.config, { ...env });
    const announce = (key: string, eventName = "s3:ObjectCreated:Put", sequencer?: string) =>
      stage.recordEvents(
        parseS3Notification({
          Records: [{
            eventName,
            s3: {
              bucket: { name: env.rawBucket },
              // No size and no etag: the limit can only be enforced while streaming.
              object: { key: encodeURIComponent(key), ...(sequencer ? { sequencer } : {}) },
            },
          }],
        }),
        "webhook",
      );
    const row = async (key: string) =>
      (await env.manifest.getImageBySource(env.source.uriFor(key)))!;
    try {
      await t.step(
        "an event without an etag is completed from HEAD; re-listing adds nothing",
        async () => {
          const bytes = await makeImage({ rgb: [5, 99, 5] });
          await env.put("no-etag.jpg", bytes);
          await announce("no-etag.jpg");
          const r = await row("no-etag.jpg");
          assert.equal(r.sourceEtag, (await env.source.head("no-etag.jpg"))!.etag);
          assert.equal(r.size, bytes.byteLength);
          assert.equal((await stage.work({ once: true, progress: false })).done, 1);
          const listed = await stage.discover({ reconcile: true });
          assert.deepEqual(
            [listed.created, listed.changed, listed.unchanged],
            [0, 0, 1],
            "the listing's etag matches the one HEAD filled in",
          );
          assert.equal((await env.manifest.workCounts("ingest")).ingest.pending ?? 0, 0);
          assert.doesNotMatch(
            await env.metrics.metrics(),
            /sluice_ingest_found_by_reconcile_total [1-9]/,
          );
        },
      );

      await t.step(
        "the byte limit holds while streaming an object of unannounced size",
        async () => {
          const big = new Uint8Array(
            await sharp({
              create: {
                width: 300,
                height: 300,
                channels: 3,
                background: "#000",
                noise: { type: "gaussian", mean: 128, sigma: 40 },
              },
            }).png().toBuffer(),
          );
          assert.ok(big.byteLength > 20_000);
          // Announced before it exists: the HEAD that completes an etag-less event finds
          // nothing, so the size stays unknown until the download.
          await announce("big.png");
          assert.equal((await row("big.png")).size, null);
          await env.put("big.png", big);
          const w = await stage.work({ once: true, progress: false });
          assert.equal(w.failed, 1);
          const r = await row("big.png");
          assert.equal(r.status, "failed");
          assert.match(r.error!, /^too_large: big.png: more than 20000 bytes/);
        },
      );

      await t.step("an object removed before it was processed ends up deleted", async () => {
        const normalizing = async () =>
          (await env.manifest.workCounts("normalize")).normalize?.pending ?? 0;
        const before = await normalizing();
        await announce("vanished.jpg");
        const w = await stage.work({ once: true, progress: false });
        assert.equal(w.done, 1);
        const r = await row("vanished.jpg");
        assert.equal(r.status, "deleted");
        assert.match(r.error!, /^not_found/);
        assert.equal(await normalizing(), before, "nothing goes on to normalize");
      });

      await t.step("a removal recorded before processing leaves nothing to do", async () => {
        await env.put("gone.jpg", await makeImage());
        await announce("gone.jpg", "s3:ObjectCreated:Put", "01");
        await announce("gone.jpg", "s3:ObjectRemoved:Delete", "02");
        assert.equal((await row("gone.jpg")).status, "deleted");
        const w = await stage.work({ once: true, progress: false });
        assert.equal(w.done + w.failed, 0, "markSourceDeleted dropped the ingest work item");
      });
    } finally {
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "dedupe: the same bytes under many keys, processed at once, give one ingested image",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const env = await openTestEnv(server, { worker: { concurrency: 4, batchSize: 4 } });
    const stage = createIngestStage(env.config, { ...env });
    try {
      const bytes = await makeImage({ rgb: [77, 11, 180] });
      const keys = Array.from({ length: 8 }, (_, i) => `copies/c${i}.jpg`);
      for (const k of keys) await env.put(k, bytes);
      await env.put("other.jpg", await makeImage({ rgb: [1, 1, 1] }));
      await stage.discover();
      const w = await stage.work({ once: true, progress: false });
      assert.equal(w.done, 9);
      const rows = (await env.manifest.listImages({ limit: 100 }))
        .filter((i) => i.sourceKey.startsWith("copies/"));
      const ingested = rows.filter((r) => r.status === "ingested");
      assert.equal(ingested.length, 1, `expected one ingested copy, found ${ingested.length}`);
      const dups = rows.filter((r) => r.status === "duplicate");
      assert.equal(dups.length, 7);
      for (const d of dups) {
        assert.equal(d.duplicateOf, ingested[0].id);
        assert.equal(d.datasetUri, ingested[0].datasetUri);
      }
      assert.equal((await env.manifest.workCounts("normalize")).normalize.pending, 2);
      const text = await env.metrics.metrics();
      assert.match(text, /sluice_ingest_duplicates_total 7\n/);
      assert.match(
        text,
        new RegExp(`sluice_ingest_bytes_total ${
          8 * bytes.byteLength +
          (await env.source.head("other.jpg"))!.size
        }\\n`),
      );
    } finally {
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

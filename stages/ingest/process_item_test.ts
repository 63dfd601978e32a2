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
          await env.put("big.png", big);
          await announce("big.png");
          assert.equal((await row("big.png")).size, null);
          const w = await stage.work({ once: true, progress: false });
          assert.equal(w.failed, 1);
          const r = await row("big.png");
          assert.equal(r.status, "failed");
          assert.match(r.error!, /^too_large: big.png: more than 20000 bytes/);
        },
      );

      await t.step("an object removed before it was processed ends up deleted", async () => {
        await announce("vanished.jpg");
        const w = await stage.work({ once: true, progress: false });
        assert.equal(w.done, 1);
        const r = await row("vanished.jpg");
        assert.equal(r.status, "deleted");
        assert.match(r.error!, /^not_found/);
        assert.equal((await env.manifest.workCounts("normalize")).normalize?.pending ?? 0, 0);
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

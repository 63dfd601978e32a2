import assert from "node:assert/strict";
import type { S3ObjectStore } from "../../common/objectstore/s3.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { listCheckpointName, readListCheckpoint } from "./discover.ts";
import { createIngestStage } from "./stage.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();

Deno.test({
  name:
    "polling lists page by page, keeps a checkpoint, and never ingests an unchanged object twice",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const env = await openTestEnv(server, { settings: { pageSize: 2 } });
    const stage = createIngestStage(env.config, { ...env });
    let listCalls = 0;
    (env.source as S3ObjectStore).client.middlewareStack.add(
      (next, ctx) => (args) => {
        if (ctx.commandName === "ListObjectsV2Command") listCalls++;
        return next(args);
      },
      { step: "initialize" },
    );
    try {
      const colours: [number, number, number][] = [
        [200, 30, 30],
        [30, 200, 30],
        [30, 30, 200],
        [200, 200, 30],
        [30, 200, 200],
      ];
      for (const [i, rgb] of colours.entries()) {
        await env.put(`cams/img-${i}.jpg`, await makeImage({ rgb }));
      }
      await env.put("cams/notes.txt", new TextEncoder().encode("not an image"));
      const cpName = listCheckpointName(env.source.url, "");

      await t.step("a pass cut short leaves a checkpoint at its last key", async () => {
        const r = await stage.discover({ maxObjects: 3 });
        assert.equal(r.listed, 3);
        assert.equal(r.complete, false);
        assert.equal(r.created, 3);
        const cp = await readListCheckpoint(env.manifest, cpName);
        assert.equal(cp.startAfter, "cams/img-2.jpg");
        assert.equal(cp.passes, 0);
      });

      await t.step("the next call resumes after the checkpoint and finishes the pass", async () => {
        listCalls = 0;
        const r = await stage.discover();
        assert.equal(r.resumedAfter, "cams/img-2.jpg");
        assert.equal(r.listed, 3); // img-3, img-4, notes.txt
        assert.equal(r.seen, 2);
        assert.equal(r.skipped, 1);
        assert.equal(r.created, 2);
        assert.equal(r.complete, true);
        assert.ok(listCalls >= 2, `expected at least 2 ListObjectsV2 pages, found ${listCalls}`);
        const cp = await readListCheckpoint(env.manifest, cpName);
        assert.deepEqual([cp.startAfter, cp.passes], ["", 1]);
        const counts = (await env.manifest.workCounts("ingest")).ingest;
        assert.equal(counts.pending, 5);
      });

      await t.step("the queue drains into ingested images and normalize work", async () => {
        const w = await stage.work({ once: true, progress: false });
        assert.equal(w.done, 5);
        assert.equal(w.failed, 0);
        const stats = await env.manifest.stats();
        assert.equal(stats.images.ingested, 5);
        assert.equal(stats.work.normalize.pending, 5);
      });

      await t.step(
        "a full re-listing (3 pages of 2) changes nothing and queues nothing",
        async () => {
          listCalls = 0;
          const r = await stage.discover();
          assert.equal(r.pass, 2);
          assert.equal(r.resumedAfter, null);
          assert.deepEqual([r.created, r.changed, r.unchanged], [0, 0, 5]);
          assert.ok(listCalls >= 3, `expected at least 3 ListObjectsV2 pages, found ${listCalls}`);
          const counts = (await env.manifest.workCounts("ingest")).ingest;
          assert.equal(counts.pending ?? 0, 0);
          assert.equal(counts.done, 5);
          assert.equal((await stage.work({ once: true, progress: false })).done, 0);
        },
      );

      await t.step("an overwritten object is found changed and ingested again", async () => {
        const before = await env.manifest.listImages({ status: "ingested" });
        const old = before.find((i) => i.sourceKey === "cams/img-2.jpg")!;
        await env.put("cams/img-2.jpg", await makeImage({ rgb: [90, 90, 90], width: 80 }));
        const r = await stage.discover();
        assert.deepEqual([r.created, r.changed, r.unchanged], [0, 1, 4]);
        assert.equal((await stage.work({ once: true, progress: false })).done, 1);
        const now = (await env.manifest.getImage(old.id))!;
        assert.equal(now.status, "ingested");
        assert.notEqual(now.sha256, old.sha256);
        assert.equal(now.width, 80);
      });
    } finally {
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "poll mode lists every pollIntervalMs, ingests what appears and imports annotations",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const env = await openTestEnv(server, {
      settings: { pollIntervalMs: 100, annotations: ["labels/coco.json"] },
    });
    const stage = createIngestStage(env.config, { ...env });
    const shutdown = new AbortController();
    const ingested = async () => (await env.manifest.stats()).images.ingested ?? 0;
    const waitFor = async (what: string, check: () => Promise<boolean>) => {
      const until = Date.now() + 15_000;
      while (!(await check())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    let running: Promise<void> | null = null;
    try {
      await env.put("first.jpg", await makeImage({ width: 40, height: 20, rgb: [9, 9, 200] }));
      const coco = {
        images: [{ id: 1, file_name: "second.jpg", width: 40, height: 20 }],
        categories: [{ id: 1, name: "boat" }],
        annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [2, 2, 10, 5] }],
      };
      await env.put("labels/coco.json", new TextEncoder().encode(JSON.stringify(coco)));
      running = stage.runPoll(shutdown.signal);
      await waitFor("the object present at start-up", async () => (await ingested()) === 1);
      // Appears after the first pass: only a later pass can find it.
      await env.put("second.jpg", await makeImage({ width: 40, height: 20, rgb: [200, 9, 9] }));
      await waitFor("the object that appeared later", async () => (await ingested()) === 2);
      const second = await env.manifest.getImageBySource(env.source.uriFor("second.jpg"));
      // The annotation file's only record matched nothing at first; a later pass retries it.
      await waitFor(
        "the annotation of the later object",
        async () => (await env.manifest.listAnnotations([second!.id])).length === 1,
      );
      const cp = await readListCheckpoint(env.manifest, listCheckpointName(env.source.url, ""));
      assert.ok(cp.passes >= 2, `expected at least 2 listing passes, found ${cp.passes}`);
      shutdown.abort();
      await running;
      running = null;
      const counts = (await env.manifest.workCounts("ingest")).ingest;
      assert.equal(counts.done, 2);
      assert.equal(counts.leased ?? 0, 0, "no claim is left behind at shutdown");
    } finally {
      shutdown.abort();
      await running;
      await stage.close();
      await env.close();
      await server.stop();
    }
  },
});

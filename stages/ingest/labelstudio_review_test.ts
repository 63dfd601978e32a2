/**
 * Reviews come back from Label Studio by themselves: a loopback Label Studio (the webhook and
 * export API shapes of its public docs) talks to the ingest stage's review route, served on
 * 127.0.0.1, over a real SQLite manifest.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStageHandler } from "../../common/http/mod.ts";
import { createStageMetrics } from "../../common/metrics/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import { openSqliteManifest } from "../../common/manifest/sqlite.ts";
import { createLabelStudioWebhookRoute } from "./labelstudio_webhook.ts";
import { LabelStudioExportError, reconcileLabelStudioReviews } from "./labelstudio_reconcile.ts";
import {
  type FakeLabelStudio,
  rect,
  startLabelStudio,
} from "../../tests/support/labelstudio_server.ts";

const TOKEN = "review-hook-secret";
const API_TOKEN = "ls-api-key";
const W = 1000, H = 500;

interface Env {
  manifest: ManifestStore;
  ls: FakeLabelStudio;
  hookUrl: string;
  imageId: string;
  close(): Promise<void>;
}

async function setup(): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-review-"));
  const manifest = await openSqliteManifest(`sqlite://${join(dir, "m.db")}`);
  await manifest.migrate();
  const { image } = await manifest.upsertSourceObject({
    sourceUri: "s3://raw/a.jpg",
    sourceKey: "a.jpg",
  });
  // The model's prediction the review starts from: a cat and a dog.
  await manifest.enqueue("infer:det@3", [image.id]);
  const [claim] = await manifest.claim("infer:det@3", { max: 1, leaseMs: 60_000, owner: "t" });
  await manifest.complete(claim, {
    predictions: [{
      imageId: image.id,
      modelName: "det",
      modelVersion: "3",
      score: 0.8,
      boxes: [
        { label: "cat", bbox: [0, 0, 100, 100], score: 0.9 },
        { label: "dog", bbox: [300, 100, 100, 100], score: 0.6 },
      ],
    }],
  });
  const handler = createStageHandler({
    stage: "ingest",
    metrics: createStageMetrics("ingest_review_test"),
    routes: {
      "POST /labelstudio/webhook": createLabelStudioWebhookRoute({
        token: TOKEN,
        manifest,
        maxBodyBytes: 1 << 20,
      }),
    },
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler.fetch);
  const hookUrl = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/labelstudio/webhook`;
  const ls = startLabelStudio({
    apiToken: API_TOKEN,
    webhookUrl: hookUrl,
    webhookHeaders: { authorization: `Bearer ${TOKEN}` },
  });
  return {
    manifest,
    ls,
    hookUrl,
    imageId: image.id,
    async close() {
      await ls.stop();
      await server.shutdown();
      await manifest.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const reviewLabels = async (m: ManifestStore, id: string) =>
  (await m.listAnnotations([id])).filter((a) => a.source === "review").map((a) => a.label).sort();

function taskData(imageId: string) {
  return {
    image: "s3://raw/a.jpg",
    sluice_image_id: imageId,
    sluice_model: "det",
    sluice_model_version: "3",
  };
}

Deno.test("label studio webhook: refuses requests without the token", async () => {
  const env = await setup();
  try {
    const task = env.ls.addTask(taskData(env.imageId));
    env.ls.deliver = false;
    const a = await env.ls.annotate(task.id, [rect("cat", 0, 0, 100, 100, W, H)]);
    const body = JSON.stringify(env.ls.annotationPayload("ANNOTATION_CREATED", a));
    for (
      const headers of [{}, { authorization: "Bearer wrong" }, { authorization: TOKEN }] as Record<
        string,
        string
      >[]
    ) {
      const res = await fetch(env.hookUrl, { method: "POST", body, headers });
      assert.equal(res.status, 401);
      await res.body?.cancel();
    }
    assert.deepEqual(await env.manifest.listReviews({ includeDeleted: true }), []);
  } finally {
    await env.close();
  }
});

Deno.test("label studio webhook: a review reaches the manifest with its provenance", async () => {
  const env = await setup();
  try {
    const task = env.ls.addTask(taskData(env.imageId));
    // The reviewer keeps the cat, deletes the dog, adds a bird.
    const a = await env.ls.annotate(task.id, [
      rect("cat", 0, 0, 100, 100, W, H),
      rect("bird", 600, 200, 50, 50, W, H),
    ], 42);
    assert.equal(env.ls.deliveries[0].status, 200);
    const [r] = await env.manifest.listReviews();
    assert.equal(r.annotationId, String(a.id));
    assert.equal(r.taskId, String(task.id));
    assert.equal(r.imageId, env.imageId);
    assert.equal(r.reviewer, "42");
    assert.equal(r.reviewedAt, Date.parse(a.updated_at));
    assert.deepEqual([r.modelName, r.modelVersion], ["det", "3"]);
    assert.deepEqual(r.counts, { unchanged: 1, moved: 0, relabelled: 0, deleted: 1, added: 1 });
    assert.deepEqual(r.perClass?.dog, { tp: 0, predicted: 1, reviewed: 0 });
    assert.deepEqual(await reviewLabels(env.manifest, env.imageId), ["bird", "cat"]);

    // The reviewer moves the cat and relabels the bird as a dog.
    await env.ls.update(a.id, [
      rect("cat", 20, 0, 100, 100, W, H),
      rect("dog", 600, 200, 50, 50, W, H),
    ]);
    const [r2] = await env.manifest.listReviews();
    assert.deepEqual(r2.counts, { unchanged: 0, moved: 1, relabelled: 0, deleted: 1, added: 1 });
    assert.deepEqual(await reviewLabels(env.manifest, env.imageId), ["cat", "dog"]);
  } finally {
    await env.close();
  }
});

Deno.test("label studio webhook: redelivery and out-of-order updates change nothing", async () => {
  const env = await setup();
  try {
    const task = env.ls.addTask(taskData(env.imageId));
    const a = await env.ls.annotate(task.id, [rect("cat", 0, 0, 100, 100, W, H)]);
    const first = env.ls.annotationPayload("ANNOTATION_CREATED", a);
    const updated = await env.ls.update(a.id, [rect("dog", 0, 0, 100, 100, W, H)]);
    // The create is delivered again, after the update: older, so ignored.
    const late = await env.ls.send(first);
    assert.equal(late.status, 200);
    assert.deepEqual(late.body, {
      action: "ANNOTATION_CREATED",
      results: [{ annotationId: String(a.id), outcome: "stale" }],
    });
    // The update delivered twice.
    const again = await env.ls.send(env.ls.annotationPayload("ANNOTATION_UPDATED", updated));
    assert.deepEqual(again.body, {
      action: "ANNOTATION_UPDATED",
      results: [{ annotationId: String(a.id), outcome: "duplicate" }],
    });
    assert.deepEqual(await reviewLabels(env.manifest, env.imageId), ["dog"]);
  } finally {
    await env.close();
  }
});

Deno.test("label studio webhook: deleted annotations and tasks leave the manifest for good", async () => {
  const env = await setup();
  try {
    const t1 = env.ls.addTask(taskData(env.imageId));
    const a1 = await env.ls.annotate(t1.id, [rect("cat", 0, 0, 100, 100, W, H)]);
    await env.ls.deleteAnnotation(a1.id);
    assert.deepEqual(env.ls.deliveries.at(-1)?.body, { action: "ANNOTATIONS_DELETED", deleted: 1 });
    assert.deepEqual(await reviewLabels(env.manifest, env.imageId), []);
    // A create delivered after its delete is refused.
    const replay = await env.ls.send(env.ls.annotationPayload("ANNOTATION_CREATED", a1));
    assert.equal((replay.body as { results: { outcome: string }[] }).results[0].outcome, "deleted");

    const t2 = env.ls.addTask(taskData(env.imageId));
    await env.ls.annotate(t2.id, [rect("dog", 0, 0, 100, 100, W, H)]);
    assert.deepEqual(await reviewLabels(env.manifest, env.imageId), ["dog"]);
    await env.ls.deleteTask(t2.id);
    assert.deepEqual(env.ls.deliveries.at(-1)?.body, { action: "TASKS_DELETED", deleted: 1 });
    assert.deepEqual(await reviewLabels(env.manifest, env.imageId), []);
    assert.equal((await env.manifest.listReviews()).length, 0);
  } finally {
    await env.close();
  }
});

Deno.test("label studio webhook: bad payloads are refused with the reason; other actions ignored", async () => {
  const env = await setup();
  try {
    const post = async (body: string) => {
      const res = await fetch(env.hookUrl, {
        method: "POST",
        body,
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      return { status: res.status, body: await res.json() };
    };
    assert.equal((await post("{not json")).status, 400);
    const missing = await post(
      JSON.stringify({ action: "ANNOTATION_CREATED", task: { id: 1, data: {} } }),
    );
    assert.equal(missing.status, 400);
    assert.match(missing.body.message, /annotation/);
    assert.deepEqual(await post(JSON.stringify({ action: "PROJECT_UPDATED", project: {} })), {
      status: 200,
      body: { action: "PROJECT_UPDATED", ignored: true },
    });
    // A task infer did not write (no sluice_image_id) is reported, not recorded.
    const foreign = env.ls.addTask({ image: "s3://raw/b.jpg" });
    await env.ls.annotate(foreign.id, [rect("cat", 0, 0, 10, 10, W, H)]);
    const body = env.ls.deliveries.at(-1)?.body as {
      results: { outcome: string; detail: string }[];
    };
    assert.equal(body.results[0].outcome, "skipped");
    assert.match(body.results[0].detail, /sluice_image_id/);
  } finally {
    await env.close();
  }
});

Deno.test("label studio reconcile: the export API brings back what webhooks missed", async () => {
  const env = await setup();
  try {
    const opts = {
      manifest: env.manifest,
      url: env.ls.url,
      apiToken: API_TOKEN,
      projectId: env.ls.projectId,
    };
    const task = env.ls.addTask(taskData(env.imageId));
    const kept = await env.ls.annotate(task.id, [rect("cat", 0, 0, 100, 100, W, H)]);
    env.ls.deliver = false;
    const missed = await env.ls.annotate(task.id, [rect("dog", 300, 100, 100, 100, W, H)], 9);
    const gone = await env.ls.annotate(task.id, [rect("bird", 0, 0, 10, 10, W, H)]);
    env.ls.deliver = true;
    await env.ls.send(env.ls.annotationPayload("ANNOTATION_CREATED", gone));
    env.ls.deliver = false;
    await env.ls.deleteAnnotation(gone.id); // its delete webhook is missed
    assert.deepEqual(
      (await env.manifest.listReviews()).map((r) => r.annotationId).sort(),
      [String(kept.id), String(gone.id)],
    );

    const s = await reconcileLabelStudioReviews(opts);
    assert.deepEqual(s, {
      tasks: 1,
      recorded: 1,
      duplicate: 1,
      stale: 0,
      deleted: 0,
      skipped: 0,
      removed: 1,
    });
    const rows = await env.manifest.listReviews();
    assert.deepEqual(rows.map((r) => r.annotationId).sort(), [String(kept.id), String(missed.id)]);
    const m = rows.find((r) => r.annotationId === String(missed.id))!;
    assert.equal(m.reviewer, "9");
    assert.deepEqual(m.counts, { unchanged: 1, moved: 0, relabelled: 0, deleted: 1, added: 0 });
    // The newest review of the image wins its annotations.
    assert.deepEqual(await reviewLabels(env.manifest, env.imageId), ["dog"]);

    // A second pass finds nothing new.
    const s2 = await reconcileLabelStudioReviews(opts);
    assert.deepEqual(s2, {
      tasks: 1,
      recorded: 0,
      duplicate: 2,
      stale: 0,
      deleted: 0,
      skipped: 0,
      removed: 0,
    });

    await assert.rejects(
      () => reconcileLabelStudioReviews({ ...opts, apiToken: "wrong" }),
      (err: unknown) =>
        err instanceof LabelStudioExportError && /expected 200, found 401/.test(err.message),
    );
  } finally {
    await env.close();
  }
});

/**
 * The ingest stage wired for reviews: an image ingested from the (emulated) S3 bucket, its task
 * annotated in a loopback Label Studio; the review reaches the manifest through the stage's own
 * HTTP handler, and the events-mode reconciling export picks up a review whose webhook was lost.
 */
import assert from "node:assert/strict";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { rect, startLabelStudio } from "../../tests/support/labelstudio_server.ts";
import { createIngestStage } from "./stage.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();
const TOKEN = "review-webhook-token-0123456789";

Deno.test({
  name: "ingest stage: Label Studio reviews arrive by webhook and by the reconciling export",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const hook = Promise.withResolvers<string>();
    // The Label Studio loopback needs the stage's URL, and the stage needs Label Studio's.
    let hookUrl = "";
    const ls = startLabelStudio({
      apiToken: "ls-key",
      get webhookUrl() {
        return hookUrl;
      },
      webhookHeaders: { authorization: `Bearer ${TOKEN}` },
    });
    const env = await openTestEnv(server, {
      settings: {
        reviewWebhookToken: TOKEN,
        reviewLabelStudioUrl: ls.url,
        reviewApiToken: "ls-key",
        reviewProjectId: ls.projectId,
        reviewReconcileIntervalMs: 1000,
        reconcileIntervalMs: 3_600_000,
      },
    });
    const stage = createIngestStage(env.config, { ...env });
    const http = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: (a) => hook.resolve(`${a.port}`) },
      stage.handler.fetch,
    );
    hookUrl = `http://127.0.0.1:${await hook.promise}/labelstudio/webhook`;
    const shutdown = new AbortController();
    try {
      await env.put("a.jpg", await makeImage({ width: 200, height: 100, rgb: [200, 0, 0] }));
      await stage.runOnce({ progress: false });
      const [image] = await env.manifest.listImages({ status: "ingested" });
      await env.manifest.enqueue("infer:det@3", [image.id]);
      const [claim] = await env.manifest.claim("infer:det@3", {
        max: 1,
        leaseMs: 60_000,
        owner: "t",
      });
      await env.manifest.complete(claim, {
        predictions: [{
          imageId: image.id,
          modelName: "det",
          modelVersion: "3",
          score: 0.9,
          boxes: [{ label: "cat", bbox: [10, 10, 50, 50], score: 0.9 }],
        }],
      });
      const task = ls.addTask({
        image: image.sourceUri,
        sluice_image_id: image.id,
        sluice_model: "det",
        sluice_model_version: "3",
      });

      const a = await ls.annotate(task.id, [rect("cat", 10, 10, 50, 50, 200, 100)]);
      assert.equal(ls.deliveries[0].status, 200);
      assert.deepEqual((await env.manifest.listReviews()).map((r) => r.annotationId), [
        String(a.id),
      ]);

      ls.deliver = false;
      const missed = await ls.annotate(task.id, [rect("dog", 10, 10, 50, 50, 200, 100)]);
      const running = stage.runEvents(shutdown.signal);
      const deadline = Date.now() + 10_000;
      while ((await env.manifest.listReviews()).length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      shutdown.abort();
      await running;
      assert.deepEqual(
        (await env.manifest.listReviews()).map((r) => r.annotationId).sort(),
        [String(a.id), String(missed.id)],
      );
      const labels = (await env.manifest.listAnnotations([image.id]))
        .filter((x) => x.source === "review").map((x) => x.label);
      assert.deepEqual(labels, ["dog"]);
      // Live review metrics on the stage's /metrics: the cat was kept, then relabelled a dog.
      const metricsText = await (await stage.handler.fetch(new Request("http://x/metrics"))).text();
      assert.match(metricsText, /sluice_review_images\{model="det",version="3"\} 2\n/);
      assert.match(metricsText, /sluice_review_acceptance_ratio\{model="det",version="3"\} 0\.5\n/);
    } finally {
      shutdown.abort();
      await http.shutdown();
      await ls.stop();
      await env.close();
      await server.stop();
    }
  },
});

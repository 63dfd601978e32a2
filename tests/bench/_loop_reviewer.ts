/**
 * The review-loop benchmark's simulated reviewer: the generator's ground truth plays the person,
 * and every review travels the production path. Selected tasks (as infer wrote them) are added to
 * a loopback Label Studio (`tests/support/labelstudio_server.ts`), annotated there with the true
 * boxes, and Label Studio's `ANNOTATION_CREATED` webhook is POSTed to the ingest stage's own HTTP
 * handler (`POST /labelstudio/webhook`, bearer token), which records provenance and the review
 * annotations in the manifest.
 *
 * @example
 * ```ts
 * const reviewer = await startReviewer(pipeline, truthByFile);
 * await reviewer.review(selectedTasks);
 * await reviewer.close();
 * ```
 * @module
 */
import { basename } from "node:path";
import type { LabelStudioTask } from "../../common/annotations/labelstudio.ts";
import { SluiceError } from "../../common/errors/mod.ts";
import { openManifest } from "../../common/manifest/mod.ts";
import { IngestSettingsSchema } from "../../stages/ingest/config.ts";
import { type IngestStage, openIngestStage } from "../../stages/ingest/stage.ts";
import { rect, startLabelStudio } from "../support/labelstudio_server.ts";
import type { SyntheticImage } from "../support/synthetic/dataset.ts";
import type { LoopPipeline } from "./_loop_pipeline.ts";

const TOKEN = "loop-bench-review-token-0123456789";

export interface Reviewer {
  /** File name (in the raw bucket) of a Sluice image id, for the images of this home. */
  fileOf(imageId: string): string | undefined;
  /** Reviews the tasks through the webhook; throws unless each one was recorded. */
  review(tasks: readonly LabelStudioTask[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens the home's ingest stage with the review webhook on a loopback port and a loopback Label
 * Studio pointed at it.
 *
 * @example
 * ```ts
 * const r = await startReviewer(home, new Map(pool.images.map((i) => [i.fileName, i])));
 * ```
 */
export async function startReviewer(
  home: LoopPipeline,
  truth: ReadonlyMap<string, SyntheticImage>,
): Promise<Reviewer> {
  const config = await home.config("ingest", IngestSettingsSchema, {
    SLUICE_INGEST_REVIEW_WEBHOOK_TOKEN: TOKEN,
  });
  const stage: IngestStage = await openIngestStage(config, {});
  const listening = Promise.withResolvers<number>();
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => listening.resolve(a.port) },
    stage.handler.fetch,
  );
  const port = await listening.promise;
  const ls = startLabelStudio({
    apiToken: "loop-bench-ls-key",
    webhookUrl: `http://127.0.0.1:${port}/labelstudio/webhook`,
    webhookHeaders: { authorization: `Bearer ${TOKEN}` },
  });
  const files = new Map<string, string>();
  const manifest = await openManifest(config.manifest.url);
  try {
    let rows = await manifest.listImages({ limit: 1000 });
    while (rows.length > 0) {
      for (const row of rows) files.set(row.id, basename(row.sourceKey));
      rows = await manifest.listImages({ afterId: rows.at(-1)!.id, limit: 1000 });
    }
  } finally {
    await manifest.close();
  }
  return {
    fileOf: (id) => files.get(id),
    async review(tasks) {
      for (const t of tasks) {
        const id = t.data.sluice_image_id;
        const file = id === undefined ? undefined : files.get(id);
        const img = file === undefined ? undefined : truth.get(file);
        if (!img) {
          throw new SluiceError(
            "loop_bench",
            `review: expected a generated image for task image ${id}, found none`,
          );
        }
        const task = ls.addTask({ ...t.data }, t.predictions ?? []);
        const result = img.boxes.map((b) =>
          rect(b.label, b.bbox[0], b.bbox[1], b.bbox[2], b.bbox[3], img.width, img.height)
        );
        await ls.annotate(task.id, result);
        const d = ls.deliveries.at(-1)!;
        const outcome = (d.body as { results?: { outcome: string }[] }).results?.[0]?.outcome;
        if (d.status !== 200 || outcome !== "recorded") {
          throw new SluiceError(
            "loop_bench",
            `review of ${file}: expected the webhook to answer 200 "recorded", found ${d.status} ` +
              JSON.stringify(d.body),
          );
        }
      }
    },
    async close() {
      await http.shutdown();
      await ls.stop();
      await stage.close();
    },
  };
}

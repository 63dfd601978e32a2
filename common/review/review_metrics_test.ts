import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { openSqliteManifest } from "../manifest/sqlite.ts";
import { findPromtool, promtoolCheck } from "../metrics/mod.ts";
import { diffReview, type LabelledBox } from "./review_diff.ts";
import { registerReviewMetrics, summarizeReviews } from "./review_metrics.ts";

const box = (label: string, x: number): LabelledBox => ({ label, bbox: [x, 0, 100, 100] });

Deno.test("review metrics: per model version acceptance, precision and recall, promtool-clean", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-review-metrics-"));
  const manifest = await openSqliteManifest(`sqlite://${join(dir, "m.db")}`);
  try {
    await manifest.migrate();
    const ids: string[] = [];
    for (const k of ["a", "b", "c"]) {
      ids.push(
        (await manifest.upsertSourceObject({ sourceUri: `s3://raw/${k}`, sourceKey: k })).image.id,
      );
    }
    const record = async (
      n: number,
      imageId: string,
      version: string,
      p: LabelledBox[],
      r: LabelledBox[],
    ) => {
      const { counts, perClass } = diffReview(p, r);
      await manifest.applyReview({
        annotationId: String(n),
        taskId: String(n),
        imageId,
        reviewer: "r",
        reviewedAt: n,
        modelName: "det",
        modelVersion: version,
        counts,
        perClass,
        boxes: r,
      });
    };
    // v3: image a accepted as is; image b: dog deleted, a cat added.
    await record(1, ids[0], "3", [box("cat", 0)], [box("cat", 0)]);
    await record(2, ids[1], "3", [box("cat", 0), box("dog", 300)], [
      box("cat", 0),
      box("cat", 600),
    ]);
    // v4: the cat relabelled as a dog.
    await record(3, ids[2], "4", [box("cat", 0)], [box("dog", 0)]);
    // A deleted review does not count.
    await record(4, ids[2], "4", [box("cat", 0)], [box("cat", 0)]);
    await manifest.deleteReviews({ annotationIds: ["4"] });

    const [v3, v4] = summarizeReviews(await manifest.listReviews());
    assert.equal(v3.images, 2);
    assert.equal(v3.imagesUnchanged, 1);
    assert.deepEqual(v3.boxes, { unchanged: 2, moved: 0, relabelled: 0, deleted: 1, added: 1 });
    assert.equal(v3.acceptance, 2 / 3);
    assert.deepEqual(v3.perClass, {
      _all: { precision: 2 / 3, recall: 2 / 3 },
      cat: { precision: 1, recall: 2 / 3 },
      dog: { precision: 0, recall: null },
    });
    assert.equal(v4.acceptance, 0);
    assert.deepEqual(v4.perClass._all, { precision: 0, recall: 0 });

    const registry = new Registry();
    registerReviewMetrics(registry, manifest);
    const text = await registry.metrics();
    assert.match(text, /sluice_review_acceptance_ratio\{model="det",version="3"\} 0\.6666/);
    assert.match(text, /sluice_review_precision\{model="det",version="3",class="cat"\} 1\n/);
    assert.match(text, /sluice_review_recall\{model="det",version="4",class="_all"\} 0\n/);
    assert.match(text, /sluice_review_boxes\{model="det",version="3",edit="deleted"\} 1\n/);
    assert.doesNotMatch(text, /class="dog"\} NaN/);

    // A new review shows at the next scrape.
    await record(5, ids[2], "4", [box("cat", 0)], [box("cat", 0)]);
    assert.match(await registry.metrics(), /sluice_review_images\{model="det",version="4"\} 2\n/);

    const promtool = await findPromtool();
    if (promtool === undefined) {
      assert.notEqual(Deno.env.get("CI"), "true", "promtool is required under CI=true");
      console.log("promtool not found: promtool check skipped");
    } else {
      const check = await promtoolCheck(text, promtool);
      assert.ok(check.ok, check.output);
    }
  } finally {
    await manifest.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * Review records (issue 16) against SQLite and a real PostgreSQL: idempotent, out-of-order
 * safe, deletion terminal, and the newest active review mirrored into `annotations`.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ManifestStore, ReviewInput } from "./mod.ts";
import { ImageNotFoundError } from "./errors.ts";
import { openSqliteManifest } from "./sqlite.ts";
import { openPostgresManifest } from "./postgres.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

function review(imageId: string, over: Partial<ReviewInput> = {}): ReviewInput {
  return {
    annotationId: "11",
    taskId: "5",
    imageId,
    reviewer: "ann@example.com",
    reviewedAt: 1_000,
    modelName: "det",
    modelVersion: "3",
    counts: { unchanged: 1, moved: 0, relabelled: 0, deleted: 0, added: 0 },
    perClass: { cat: { tp: 1, predicted: 1, reviewed: 1 } },
    boxes: [{ label: "cat", bbox: [1, 2, 3, 4] }],
    ...over,
  };
}

async function suite(t: Deno.TestContext, open: () => Promise<ManifestStore>): Promise<void> {
  const fresh = async () => {
    const m = await open();
    await m.migrate();
    const { image } = await m.upsertSourceObject({
      sourceUri: "s3://raw/a.jpg",
      sourceKey: "a.jpg",
    });
    return { m, id: image.id };
  };
  const reviewBoxes = async (m: ManifestStore, id: string) =>
    (await m.listAnnotations([id])).filter((a) => a.source === "review").map((a) => a.label);

  await t.step("records, ignores duplicates and stale updates, takes newer ones", async () => {
    const { m, id } = await fresh();
    try {
      assert.equal(await m.applyReview(review(id)), "recorded");
      assert.equal(await m.applyReview(review(id)), "duplicate");
      assert.equal(
        await m.applyReview(
          review(id, { reviewedAt: 2_000, boxes: [{ label: "dog", bbox: [0, 0, 5, 5] }] }),
        ),
        "recorded",
      );
      // An update delivered late (older updated_at) changes nothing.
      assert.equal(await m.applyReview(review(id, { reviewedAt: 1_500 })), "stale");
      const [row] = await m.listReviews({ modelName: "det", modelVersion: "3" });
      assert.equal(row.reviewedAt, 2_000);
      assert.equal(row.reviewer, "ann@example.com");
      assert.deepEqual(row.counts, review(id).counts);
      assert.deepEqual(await reviewBoxes(m, id), ["dog"]);
    } finally {
      await m.close();
    }
  });

  await t.step("deletion is terminal, also when it arrives first", async () => {
    const { m, id } = await fresh();
    try {
      await m.applyReview(review(id));
      assert.equal(await m.deleteReviews({ annotationIds: ["11"] }), 1);
      assert.deepEqual(await reviewBoxes(m, id), []);
      assert.equal(await m.applyReview(review(id, { reviewedAt: 9_000 })), "deleted");
      // Delete of an id never seen, then its (late) create.
      assert.equal(await m.deleteReviews({ annotationIds: ["12"] }), 0);
      assert.equal(await m.applyReview(review(id, { annotationId: "12" })), "deleted");
      assert.equal((await m.listReviews()).length, 0);
      assert.equal((await m.listReviews({ includeDeleted: true })).length, 2);
    } finally {
      await m.close();
    }
  });

  await t.step("task deletion removes its reviews; the next newest review takes over", async () => {
    const { m, id } = await fresh();
    try {
      await m.applyReview(review(id, { annotationId: "1", taskId: "A", reviewedAt: 1 }));
      await m.applyReview(
        review(id, {
          annotationId: "2",
          taskId: "B",
          reviewedAt: 2,
          boxes: [{ label: "dog", bbox: [0, 0, 5, 5] }],
        }),
      );
      assert.deepEqual(await reviewBoxes(m, id), ["dog"]);
      assert.equal(await m.deleteReviews({ taskIds: ["B"] }), 1);
      assert.deepEqual(await reviewBoxes(m, id), ["cat"]);
      assert.equal(await m.applyReview(review(id, { annotationId: "3", taskId: "B" })), "deleted");
    } finally {
      await m.close();
    }
  });

  await t.step("an unknown image is refused, naming it", async () => {
    const { m } = await fresh();
    try {
      await assert.rejects(() => m.applyReview(review("img_missing")), ImageNotFoundError);
    } finally {
      await m.close();
    }
  });
}

Deno.test("manifest reviews: sqlite", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-reviews-"));
  let n = 0;
  try {
    await suite(t, () => openSqliteManifest(`sqlite://${join(dir, `m${n++}.db`)}`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const pg = postgresAvailability();

Deno.test({
  name: "manifest reviews: postgres",
  ignore: !pg.ok,
  async fn(t) {
    const server = await startPostgres();
    try {
      await suite(t, async () => openPostgresManifest(await server.newDatabase()));
    } finally {
      await server.stop();
    }
  },
});

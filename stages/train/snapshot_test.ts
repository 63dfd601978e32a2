import assert from "node:assert/strict";
import { join } from "node:path";
import { recordReviewedEmpty } from "../../common/annotations/reviewed_empty.ts";
import { boxToVariant } from "../../common/images/variant_transform.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { inputSizeFor, recordSnapshot, selectSnapshot } from "./snapshot.ts";
import { splitImages } from "./split.ts";
import { keyOfUri } from "./store_key.ts";
import { openTrainTestEnv } from "./testdata/env.ts";
import { seedTrainingData } from "./testdata/seed_manifest.ts";

const VARIANT = { name: "96", width: 96, height: 96, mode: "letterbox" } as const;

Deno.test("snapshot selection", async (t) => {
  const env = await openTrainTestEnv({ quiet: true });
  try {
    const seeded = await seedTrainingData(env.manifest, env.store, {
      count: 14,
      seed: 5,
      variant: VARIANT,
      unannotated: [1],
      withoutVariant: [2],
    });
    const opts = { variant: "96", valFraction: 0.25 };
    const snap = await selectSnapshot(env.manifest, env.store, opts);

    await t.step("only annotated images with the variant; the rest excluded with a reason", () => {
      assert.equal(snap.images.length, 12);
      const unannotated = seeded.images.find((i) => !i.annotated)!;
      const noVariant = seeded.images.find((i) => !i.hasVariant)!;
      assert.deepEqual(
        snap.excluded,
        [
          { imageId: unannotated.imageId, reason: "no_annotations" },
          { imageId: noVariant.imageId, reason: "no_variant" },
        ].sort((a, b) => (a.imageId < b.imageId ? -1 : 1)),
      );
      const ids = snap.images.map((i) => i.imageId);
      assert.deepEqual(ids, [...ids].sort(), "image id order");
    });

    await t.step("boxes are in variant pixels, through each variant's stored transform", () => {
      for (const img of snap.images) {
        const src = seeded.images.find((s) => s.imageId === img.imageId)!;
        assert.equal(img.key, src.variantKey);
        assert.equal(img.annotations.length + img.dropped, src.source.boxes.length);
        for (const [i, a] of img.annotations.entries()) {
          const expected = boxToVariant(img.variant.transform, src.source.boxes[i].bbox);
          assert.deepEqual(a.bbox, expected);
          assert.equal(a.label, src.source.boxes[i].label);
          for (const v of a.bbox) assert.ok(v >= 0 && v <= 96, `inside the 96 px variant: ${v}`);
        }
      }
      assert.equal(snap.inputSize, 96);
      assert.equal(inputSizeFor([{ width: 100, height: 60 }]), 128);
    });

    await t.step("the split follows the image ids' hashes", () => {
      const expected = splitImages(snap.images.map((i) => i.imageId), 0.25);
      assert.deepEqual(
        snap.images.filter((i) => i.split === "val").map((i) => i.imageId),
        expected.val,
      );
      assert.equal(snap.spec.counts.val, expected.val.length);
      assert.ok(expected.val.length >= 1 && expected.train.length >= 1);
    });

    await t.step("labels keep the manifest's category ids", async () => {
      const known = new Map((await env.manifest.listLabels()).map((l) => [l.name, l.id]));
      for (const [name, id] of snap.labels) assert.equal(id, known.get(name));
    });

    await t.step("same data, same id; recorded once; changed boxes, new id", async () => {
      const again = await selectSnapshot(env.manifest, env.store, opts);
      assert.equal(again.id, snap.id);
      const row = await recordSnapshot(env.manifest, snap);
      const row2 = await recordSnapshot(env.manifest, again);
      assert.equal(row2.createdAt, row.createdAt);
      const stored = await env.manifest.getSnapshot(snap.id);
      assert.deepEqual(
        stored?.items,
        snap.images.map((i) => ({ imageId: i.imageId, split: i.split })),
      );
      assert.deepEqual(stored?.spec, snap.spec);
      const first = snap.images[0];
      await env.manifest.replaceAnnotations(first.imageId, "coco", [
        { label: "circle", bbox: [1, 1, 10, 10] },
      ]);
      const changed = await selectSnapshot(env.manifest, env.store, opts);
      assert.notEqual(changed.id, snap.id);
      const other = await selectSnapshot(env.manifest, env.store, { ...opts, valFraction: 0.5 });
      assert.notEqual(other.id, changed.id);
    });

    await t.step(
      "an image reviewed as empty is a negative; reviewed again with boxes, a positive",
      async () => {
        const unannotated = seeded.images.find((i) => !i.annotated)!;
        const review = (
          annotationId: string,
          at: number,
          boxes: { label: string; bbox: [number, number, number, number] }[],
        ) =>
          env.manifest.applyReview({
            annotationId,
            taskId: "t1",
            imageId: unannotated.imageId,
            reviewer: "ann@example.com",
            reviewedAt: at,
            modelName: null,
            modelVersion: null,
            counts: null,
            perClass: null,
            boxes,
          });
        assert.equal(await review("a1", 1000, []), "recorded");
        const withNegative = await selectSnapshot(env.manifest, env.store, opts);
        const neg = withNegative.images.find((i) => i.imageId === unannotated.imageId);
        assert.ok(neg, "the reviewed-empty image is in the snapshot");
        assert.deepEqual(neg.annotations, []);
        assert.equal(withNegative.images.length, snap.images.length + 1);
        assert.ok(!withNegative.excluded.some((e) => e.imageId === unannotated.imageId));
        assert.notEqual(withNegative.id, snap.id);
        // A newer review of the same image with a box: it trains as a positive.
        assert.equal(
          await review("a2", 2000, [{ label: "circle", bbox: [2, 2, 20, 20] }]),
          "recorded",
        );
        const positive = (await selectSnapshot(env.manifest, env.store, opts)).images
          .find((i) => i.imageId === unannotated.imageId);
        assert.equal(positive?.annotations.length, 1);
        // Both reviews deleted: unannotated again, excluded with its reason.
        await env.manifest.deleteReviews({ annotationIds: ["a1", "a2"] });
        const after = await selectSnapshot(env.manifest, env.store, opts);
        assert.deepEqual(
          after.excluded.find((e) => e.imageId === unannotated.imageId),
          { imageId: unannotated.imageId, reason: "no_annotations" },
        );
      },
    );

    await t.step(
      "an image an import recorded as labelled-empty is a negative; its boxes imported later, a positive",
      async () => {
        const unannotated = seeded.images.find((i) => !i.annotated)!;
        const before = await selectSnapshot(env.manifest, env.store, opts);
        assert.ok(before.excluded.some((e) => e.imageId === unannotated.imageId));
        // What `import-annotations` records for a COCO image listed without annotations.
        await recordReviewedEmpty(env.manifest, "coco", {
          empty: [unannotated.imageId],
          labelled: [],
        });
        const withNegative = await selectSnapshot(env.manifest, env.store, opts);
        const neg = withNegative.images.find((i) => i.imageId === unannotated.imageId);
        assert.ok(neg, "the imported-empty image is in the snapshot");
        assert.deepEqual(neg.annotations, []);
        assert.equal(withNegative.images.length, before.images.length + 1);
        assert.equal(withNegative.spec.rules, "sluice-snapshot/3");
        // A later import gives it boxes: it trains as a positive, and is no longer recorded empty.
        await env.manifest.replaceAnnotations(unannotated.imageId, "coco", [
          { label: "circle", bbox: [3, 3, 30, 30] },
        ]);
        await recordReviewedEmpty(env.manifest, "coco", {
          empty: [],
          labelled: [unannotated.imageId],
        });
        const positive = (await selectSnapshot(env.manifest, env.store, opts)).images
          .find((i) => i.imageId === unannotated.imageId);
        assert.equal(positive?.annotations.length, 1);
        await env.manifest.replaceAnnotations(unannotated.imageId, "coco", []);
        const after = await selectSnapshot(env.manifest, env.store, opts);
        assert.ok(after.excluded.some((e) => e.imageId === unannotated.imageId));
      },
    );

    await t.step(
      "variants in another store are not read; no image left is a named error",
      async () => {
        const elsewhere = await openObjectStore(join(env.dir, "elsewhere"));
        try {
          // Rows recorded as absolute URIs of another store are not resolved against this one.
          const absolute = env.store.uriFor(seeded.images[0].variantKey!);
          assert.equal(keyOfUri(elsewhere, absolute), null);
          await assert.rejects(
            selectSnapshot(env.manifest, elsewhere, opts),
            (err: Error & { code?: string }) =>
              err.code === "empty_dataset" && /variant_outside_store/.test(err.message),
          );
          await assert.rejects(
            selectSnapshot(env.manifest, env.store, { ...opts, variant: "640" }),
            { code: "empty_dataset" },
          );
        } finally {
          await elsewhere.close();
        }
      },
    );
  } finally {
    await env.close();
  }
});

Deno.test("keyOfUri maps store URIs back to keys", async () => {
  const env = await openTrainTestEnv({ quiet: true });
  try {
    const key = "variants/96/ab/a b%c.jpg";
    assert.equal(keyOfUri(env.store, env.store.uriFor(key)), key);
    assert.equal(keyOfUri(env.store, "s3://bucket/variants/x.jpg"), null);
    assert.equal(keyOfUri(env.store, env.store.uriFor("a/b") + "/../../../etc/passwd"), null);
  } finally {
    await env.close();
  }
});

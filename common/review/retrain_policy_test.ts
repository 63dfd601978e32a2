import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ManifestStore } from "../manifest/mod.ts";
import { openSqliteManifest } from "../manifest/sqlite.ts";
import { applyRetrainPolicy, startRetrainPolicy } from "./retrain_policy.ts";

/** A manifest on a hand clock, with `n` images. */
async function open(dir: string, clock: { t: number }, n: number) {
  const manifest = await openSqliteManifest(`sqlite://${join(dir, "m.db")}`, {
    now: () => clock.t,
  });
  await manifest.migrate();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = `s3://raw/${i}.jpg`;
    ids.push((await manifest.upsertSourceObject({ sourceUri: s, sourceKey: `${i}.jpg` })).image.id);
  }
  return { manifest, ids };
}

let annotation = 0;
/** A review of `imageId` by model det:`version` whose pre-annotation had `tp` of `predicted` right. */
function review(m: ManifestStore, imageId: string, version: string, tp: number, predicted: number) {
  return m.applyReview({
    annotationId: String(++annotation),
    taskId: String(annotation),
    imageId,
    reviewer: "r",
    reviewedAt: annotation,
    modelName: "det",
    modelVersion: version,
    counts: { unchanged: tp, moved: 0, relabelled: 0, deleted: predicted - tp, added: 0 },
    perClass: { cat: { tp, predicted, reviewed: tp } },
    boxes: [],
  });
}

const queued = async (m: ManifestStore) => (await m.listWork("train")).map((w) => w.itemId).sort();

Deno.test("retrain policy: N new reviewed images enqueue one training request", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-retrain-"));
  const clock = { t: 1_000_000 };
  const { manifest, ids } = await open(dir, clock, 4);
  try {
    const policy = { minNewReviews: 3 };
    assert.equal((await applyRetrainPolicy(manifest, policy, clock.t)).reason, null);
    clock.t += 10;
    await review(manifest, ids[0], "3", 1, 1);
    await review(manifest, ids[1], "3", 1, 1);
    await review(manifest, ids[1], "3", 1, 1); // same image again: still 2 images
    const two = await applyRetrainPolicy(manifest, policy, clock.t);
    assert.deepEqual([two.reason, two.newReviews], [null, 2]);
    await review(manifest, ids[2], "3", 1, 1);
    const due = await applyRetrainPolicy(manifest, policy, clock.t);
    assert.equal(due.reason, "new_reviews");
    assert.deepEqual(await queued(manifest), [due.requestId]);
    // Counting starts again from the trigger.
    clock.t += 10;
    const after = await applyRetrainPolicy(manifest, policy, clock.t);
    assert.deepEqual([after.reason, after.newReviews], [null, 0]);
  } finally {
    await manifest.close();
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("retrain policy: live precision below the floor fires once per model version", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-retrain-"));
  const clock = { t: 1_000_000 };
  const { manifest, ids } = await open(dir, clock, 4);
  try {
    const policy = { precisionFloor: 0.6, minReviews: 2 };
    await applyRetrainPolicy(manifest, policy, clock.t);
    await review(manifest, ids[0], "3", 1, 4); // precision 0.25 over 1 image: too few
    assert.equal((await applyRetrainPolicy(manifest, policy, clock.t)).reason, null);
    await review(manifest, ids[1], "3", 1, 2); // 2 / 6 over 2 images
    const d = await applyRetrainPolicy(manifest, policy, clock.t);
    assert.equal(d.reason, "precision_floor");
    assert.equal(d.precision, 2 / 6);
    assert.equal(d.modelVersion, "det:3");
    clock.t += 10;
    assert.equal((await applyRetrainPolicy(manifest, policy, clock.t)).reason, null);
    // A new version that reviewers correct as much fires again.
    await review(manifest, ids[2], "4", 0, 2);
    await review(manifest, ids[3], "4", 1, 2);
    assert.equal((await applyRetrainPolicy(manifest, policy, clock.t)).reason, "precision_floor");
    assert.equal((await queued(manifest)).length, 2);
  } finally {
    await manifest.close();
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("retrain policy: the schedule fires every everyMs from the last trigger", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-retrain-"));
  const clock = { t: 1_000_000 };
  const { manifest } = await open(dir, clock, 0);
  try {
    const policy = { everyMs: 60_000 };
    assert.equal((await applyRetrainPolicy(manifest, policy, clock.t)).reason, null);
    assert.equal((await applyRetrainPolicy(manifest, policy, clock.t + 59_999)).reason, null);
    assert.equal((await applyRetrainPolicy(manifest, policy, clock.t + 60_000)).reason, "schedule");
    assert.equal((await applyRetrainPolicy(manifest, policy, clock.t + 100_000)).reason, null);
    assert.equal(
      (await applyRetrainPolicy(manifest, policy, clock.t + 120_000)).reason,
      "schedule",
    );
    assert.equal((await queued(manifest)).length, 2);
  } finally {
    await manifest.close();
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("startRetrainPolicy: checks while the worker runs, stops when told", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-retrain-"));
  const clock = { t: Date.now() };
  const { manifest, ids } = await open(dir, clock, 1);
  const reports: string[] = [];
  const off = startRetrainPolicy(
    manifest,
    { retrainMinReviews: 20, retrainCheckIntervalMs: 1000 },
    (m) => reports.push(m),
  );
  off(); // no trigger configured: nothing runs
  const stop = startRetrainPolicy(
    manifest,
    { retrainMinNewReviews: 1, retrainMinReviews: 20, retrainCheckIntervalMs: 50 },
    (m) => reports.push(m),
  );
  try {
    await new Promise((r) => setTimeout(r, 100)); // the first check starts the clock
    clock.t = Date.now() + 1;
    await review(manifest, ids[0], "3", 1, 1);
    const deadline = Date.now() + 5000;
    while ((await queued(manifest)).length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await queued(manifest)).length, 1);
    assert.deepEqual(reports, ["retrain policy requested a training"]);
  } finally {
    stop();
    await manifest.close();
    await rm(dir, { recursive: true, force: true });
  }
});

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { decidePromotion, promoteIfBetter, readChampion } from "./promotion.ts";

const MODEL = "detector";

/** A finished run that logged val_map50 = map50, registered as a new version. */
async function version(tracker: FileTracker, exp: string, map50: number): Promise<string> {
  const run = await tracker.createRun(exp, { runName: `map-${map50}` });
  await tracker.logMetric(run.runId, "val_map50", map50, { step: 1 });
  await tracker.updateRun(run.runId, "FINISHED");
  await tracker.getOrCreateRegisteredModel(MODEL);
  return await tracker.createModelVersion(MODEL, `runs:/${run.runId}/model`, run.runId);
}

Deno.test("promotion rule (pure)", () => {
  const champ = { version: "1", map50: 0.7 };
  assert.equal(decidePromotion({ version: "2", map50: 0.6 }, null, 0.5).reason, "no_champion");
  assert.equal(decidePromotion({ version: "2", map50: 0.4 }, null, 0.5).promote, false);
  assert.equal(
    decidePromotion({ version: "2", map50: 0.6 }, champ, 0.5).reason,
    "worse_than_champion",
  );
  assert.equal(
    decidePromotion({ version: "2", map50: 0.7 }, champ, 0.5).promote,
    true,
    "a tie wins",
  );
  assert.equal(
    decidePromotion({ version: "2", map50: 0.9 }, champ, 0.95).reason,
    "below_threshold",
  );
  assert.equal(
    decidePromotion({ version: "2", map50: NaN }, null, 0).promote,
    false,
    "NaN never wins",
  );
  assert.equal(
    decidePromotion({ version: "2", map50: 0.9 }, { version: "1", map50: null }, 0.5).reason,
    "champion_metric_unknown",
  );
  assert.equal(
    decidePromotion({ version: "1", map50: 0.1 }, champ, 0.5).reason,
    "already_champion",
  );
});

Deno.test("promotion against a real file tracker", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-promotion-"));
  const tracker = new FileTracker({ root: join(dir, "mlruns") });
  try {
    const exp = await tracker.getOrCreateExperiment("promotion");
    const opts = { modelName: MODEL, threshold: 0.5, approvedAlias: "champion" };

    await t.step(
      "a candidate below the threshold is not promoted, even with no champion",
      async () => {
        const v = await version(tracker, exp, 0.3);
        const d = await promoteIfBetter(tracker, { ...opts, version: v, map50: 0.3 });
        assert.equal(d.promote, false);
        assert.equal(d.reason, "below_threshold");
        assert.equal(await tracker.getVersionByAlias(MODEL, "champion"), null);
      },
    );

    let champion = "";
    await t.step("the first candidate above the threshold becomes champion", async () => {
      champion = await version(tracker, exp, 0.8);
      const d = await promoteIfBetter(tracker, { ...opts, version: champion, map50: 0.8 });
      assert.equal(d.reason, "no_champion");
      const now = await tracker.getVersionByAlias(MODEL, "champion");
      assert.equal(now?.version, champion);
      assert.equal(now?.tags.approved, "true");
    });

    await t.step("a worse candidate does not move the champion", async () => {
      const worse = await version(tracker, exp, 0.7);
      const d = await promoteIfBetter(tracker, { ...opts, version: worse, map50: 0.7 });
      assert.equal(d.promote, false);
      assert.equal(d.reason, "worse_than_champion");
      assert.deepEqual(
        d.champion,
        { version: champion, map50: 0.8 },
        "read from the champion's run",
      );
      assert.equal((await tracker.getVersionByAlias(MODEL, "champion"))?.version, champion);
      assert.equal((await tracker.getModelVersion(MODEL, worse)).tags.approved, undefined);
    });

    await t.step("a better candidate takes over", async () => {
      const better = await version(tracker, exp, 0.85);
      const d = await promoteIfBetter(tracker, { ...opts, version: better, map50: 0.85 });
      assert.equal(d.reason, "not_worse_than_champion");
      assert.equal((await tracker.getVersionByAlias(MODEL, "champion"))?.version, better);
      champion = better;
    });

    await t.step("a champion without a run is judged by its map50 tag, or kept", async () => {
      await tracker.getOrCreateRegisteredModel("manual");
      const manual = await tracker.createModelVersion("manual", "file:///models/m1");
      await tracker.setAlias("manual", "champion", manual);
      assert.deepEqual(await readChampion(tracker, "manual", "champion"), {
        version: manual,
        map50: null,
      });
      const run = await tracker.createRun(exp, {});
      const cand = await tracker.createModelVersion(
        "manual",
        `runs:/${run.runId}/model`,
        run.runId,
      );
      const kept = await promoteIfBetter(tracker, {
        ...opts,
        modelName: "manual",
        version: cand,
        map50: 0.99,
      });
      assert.equal(kept.reason, "champion_metric_unknown");
      assert.equal((await tracker.getVersionByAlias("manual", "champion"))?.version, manual);

      await tracker.setModelVersionTag("manual", manual, "map50", "0.9");
      const d = await promoteIfBetter(tracker, {
        ...opts,
        modelName: "manual",
        version: cand,
        map50: 0.95,
      });
      assert.equal(d.reason, "not_worse_than_champion");
      assert.deepEqual(d.champion, { version: manual, map50: 0.9 });
      assert.equal((await tracker.getVersionByAlias("manual", "champion"))?.version, cand);
    });
  } finally {
    await tracker.close();
    await rm(dir, { recursive: true, force: true });
  }
});

import assert from "node:assert/strict";
import { loadConfig } from "../config/mod.ts";
import { TrainSettingsSchema } from "../../stages/train/config.ts";
import { DEFAULT_IMAGE, IMAGE_REPOSITORY, SLUICE_VERSION } from "./version.ts";

Deno.test("release image: ghcr.io/sluice/sluice:<semver>, the train launcher's default", async () => {
  assert.match(SLUICE_VERSION, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
  assert.equal(DEFAULT_IMAGE, `${IMAGE_REPOSITORY}:${SLUICE_VERSION}`);
  const base = { stage: "train" as const, stageSchema: TrainSettingsSchema, cwd: "/tmp", argv: [] };
  const defaults = await loadConfig({ ...base, env: {} });
  assert.equal(defaults.stage.k8sImage, DEFAULT_IMAGE);
  const set = await loadConfig({
    ...base,
    env: { SLUICE_TRAIN_K8S_IMAGE: "reg.local/sluice:dev" },
  });
  assert.equal(set.stage.k8sImage, "reg.local/sluice:dev");
});

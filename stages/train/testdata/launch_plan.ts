/**
 * A launch plan as `writeTrainingInputs` writes it, for the k8s and systemd renderers' tests.
 * @module
 */
import { type LaunchPlan, LaunchPlanSchema } from "../training_inputs.ts";

/** A validated plan for `nodes` ranks. */
export function launchPlanFixture(nodes: number): LaunchPlan {
  const dir = "training/snap-0123456789abcdef0123/run-abcdef012345";
  return LaunchPlanSchema.parse({
    format: "sluice-train-launch/1",
    snapshotId: "snap-0123456789abcdef0123",
    layout: "run-abcdef012345",
    variant: "320",
    datasetStore: "s3://datasets/sluice",
    trainingStore: "s3://datasets/sluice",
    settings: {
      nodes,
      imagesPerNode: 100,
      epochs: 30,
      batchSize: 16,
      learningRate: 0.003,
      seed: 0,
      inputSize: 320,
      maxMinutes: null,
      device: "auto",
      trainerArgs: [],
    },
    counts: { train: 400, val: 100 },
    keys: {
      snapshot: "training/snap-0123456789abcdef0123/snapshot.json",
      trainCoco: "training/snap-0123456789abcdef0123/train.json",
      valCoco: "training/snap-0123456789abcdef0123/val.json",
      launch: `${dir}/launch.json`,
      shards: Array.from({ length: nodes }, (_, r) => `${dir}/shards/node-${r}.txt`),
      dir,
    },
  });
}

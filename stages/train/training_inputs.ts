/**
 * The trainer's inputs in the training store, under content-derived keys (re-running writes the
 * same bytes to the same keys):
 *
 * ```
 * <prefix>/<snapshot>/snapshot.json          images (id, COCO id, file name, variant key, split), labels
 * <prefix>/<snapshot>/train.json, val.json   COCO, boxes in variant pixels
 * <prefix>/<snapshot>/<layout>/launch.json   the run's settings and the keys below (a "launch plan")
 * <prefix>/<snapshot>/<layout>/shards/node-<rank>.txt   one file name per line
 * <prefix>/<snapshot>/<layout>/k8s/…, systemd/…          job and unit definitions (see k8s.ts, systemd.ts)
 * ```
 *
 * `<layout>` is a hash of the launch settings (nodes, shard size, seed, epochs, …), so runs with
 * different settings on one snapshot never overwrite each other's files.
 *
 * @example
 * ```ts
 * const { plan } = await writeTrainingInputs(trainingStore, snapshot, {
 *   prefix: "training", datasetStoreUrl: store.url, createdAt: row.createdAt, settings: config.stage,
 * });
 * console.log(plan.keys.shards); // ["training/snap-…/run-…/shards/node-0.txt", …]
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import { type CocoDataset, toCoco } from "../../common/annotations/coco.ts";
import { canonicalJson } from "../../common/images/variant_spec.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { safeFileName } from "../../common/staging/mod.ts";
import type { TrainSettings } from "./config.ts";
import { imagesPerNodeFor, planShards } from "./shards.ts";
import type { Snapshot } from "./snapshot.ts";

/** One image as the launch plan lists it. */
export const PlanImageSchema = z.strictObject({
  imageId: z.string(),
  cocoId: z.int(),
  /** The COCO `file_name`: also the staged file's name (see `safeFileName`). */
  fileName: z.string(),
  /** The variant object's key in the dataset store. */
  key: z.string(),
  bytes: z.int().nonnegative(),
  split: z.enum(["train", "val"]),
});
export type PlanImage = z.infer<typeof PlanImageSchema>;

/** `snapshot.json`. */
export const SnapshotFileSchema = z.strictObject({
  format: z.literal("sluice-train-snapshot/1"),
  snapshotId: z.string(),
  variant: z.string(),
  inputSize: z.int(),
  labels: z.array(z.strictObject({ id: z.int(), name: z.string() })),
  images: z.array(PlanImageSchema),
});
export type SnapshotFile = z.infer<typeof SnapshotFileSchema>;

/** The trainer settings a launch fixes (everything that changes what is trained). */
export const LaunchSettingsSchema = z.strictObject({
  nodes: z.int().min(1),
  imagesPerNode: z.int().min(1),
  epochs: z.int().min(1),
  batchSize: z.int().min(1),
  learningRate: z.number().positive(),
  seed: z.int(),
  inputSize: z.int(),
  maxMinutes: z.number().positive().nullable(),
  device: z.enum(["auto", "cpu", "cuda"]),
  trainerArgs: z.array(z.string()),
});
export type LaunchSettings = z.infer<typeof LaunchSettingsSchema>;

/** `launch.json`: what every node of one run needs to find its inputs. */
export const LaunchPlanSchema = z.strictObject({
  format: z.literal("sluice-train-launch/1"),
  snapshotId: z.string(),
  layout: z.string(),
  variant: z.string(),
  /** Where the variant images are (`ObjectStore.url`). */
  datasetStore: z.string(),
  /** Where the keys below are. */
  trainingStore: z.string(),
  settings: LaunchSettingsSchema,
  counts: z.strictObject({ train: z.int(), val: z.int() }),
  keys: z.strictObject({
    snapshot: z.string(),
    trainCoco: z.string(),
    valCoco: z.string(),
    launch: z.string(),
    shards: z.array(z.string()),
    /** `<prefix>/<snapshot>/<layout>`: where definitions and run records go. */
    dir: z.string(),
  }),
});
export type LaunchPlan = z.infer<typeof LaunchPlanSchema>;

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

const encoder = new TextEncoder();

function jsonBytes(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value, null, 1) + "\n");
}

/** The launch settings for `settings` on `snapshot` (shard size resolved). */
export function launchSettings(
  settings: Pick<
    TrainSettings,
    | "nodes"
    | "imagesPerNode"
    | "epochs"
    | "batchSize"
    | "learningRate"
    | "seed"
    | "maxMinutes"
    | "device"
    | "trainerArgs"
  >,
  trainCount: number,
  inputSize: number,
): LaunchSettings {
  return {
    nodes: settings.nodes,
    imagesPerNode: imagesPerNodeFor(trainCount, settings),
    epochs: settings.epochs,
    batchSize: settings.batchSize,
    learningRate: settings.learningRate,
    seed: settings.seed,
    inputSize,
    maxMinutes: settings.maxMinutes ?? null,
    device: settings.device,
    trainerArgs: [...settings.trainerArgs],
  };
}

/** The layout id of a launch: `run-` + 12 hex of its settings. */
export function layoutId(settings: LaunchSettings): string {
  return "run-" + sha256Hex(canonicalJson(settings)).slice(0, 12);
}

/**
 * COCO files of a snapshot: one id space over both splits (image ids 1…n in snapshot order),
 * categories identical in both (the trainer requires it), `date_created` fixed to the snapshot's
 * creation so the bytes never change.
 *
 * @example
 * ```ts
 * const { train, val, images } = buildCocoFiles(snapshot, row.createdAt);
 * ```
 */
export function buildCocoFiles(
  snapshot: Snapshot,
  createdAt: number,
): { train: CocoDataset; val: CocoDataset; images: PlanImage[] } {
  const { coco, imageIds } = toCoco({
    images: snapshot.images.map((i) => ({
      id: i.imageId,
      fileName: safeFileName(i.key),
      width: i.variant.width,
      height: i.variant.height,
    })),
    annotationsByImage: new Map(snapshot.images.map((i) => [i.imageId, i.annotations])),
    labels: snapshot.labels,
    description: `Sluice snapshot ${snapshot.id} (variant ${snapshot.variant}, variant pixels)`,
    dateCreated: new Date(createdAt).toISOString(),
  });
  const images: PlanImage[] = snapshot.images.map((i) => ({
    imageId: i.imageId,
    cocoId: imageIds.get(i.imageId)!,
    fileName: safeFileName(i.key),
    key: i.key,
    bytes: i.variant.bytes,
    split: i.split,
  }));
  const pick = (split: "train" | "val"): CocoDataset => {
    const ids = new Set(images.filter((i) => i.split === split).map((i) => i.cocoId));
    return {
      ...coco,
      images: coco.images.filter((i) => ids.has(i.id)),
      annotations: coco.annotations.filter((a) => ids.has(a.image_id)),
    };
  };
  return { train: pick("train"), val: pick("val"), images };
}

/** What {@link writeTrainingInputs} needs besides the snapshot. */
export interface TrainingInputsOptions {
  /** Key prefix in the training store (`training`). */
  prefix: string;
  /** `ObjectStore.url` of the dataset store holding the variants. */
  datasetStoreUrl: string;
  /** The snapshot row's `createdAt`. */
  createdAt: number;
  settings: Parameters<typeof launchSettings>[0];
}

/**
 * Writes snapshot.json, the COCO files, the shard lists and launch.json; returns the plan and
 * the snapshot file's content.
 *
 * @example
 * ```ts
 * const { plan, snapshotFile } = await writeTrainingInputs(store, snapshot, { prefix: "training", datasetStoreUrl, createdAt, settings });
 * ```
 */
export async function writeTrainingInputs(
  trainingStore: ObjectStore,
  snapshot: Snapshot,
  opts: TrainingInputsOptions,
): Promise<{ plan: LaunchPlan; snapshotFile: SnapshotFile }> {
  const { train, val, images } = buildCocoFiles(snapshot, opts.createdAt);
  const trainImages = images.filter((i) => i.split === "train");
  if (trainImages.length === 0) {
    throw new SluiceError(
      "empty_dataset",
      `snapshot ${snapshot.id}: expected at least one training image, found none ` +
        `(${images.length} images, all in validation)`,
    );
  }
  const settings = launchSettings(opts.settings, trainImages.length, snapshot.inputSize);
  const layout = layoutId(settings);
  const base = opts.prefix ? `${opts.prefix}/${snapshot.id}` : snapshot.id;
  const dir = `${base}/${layout}`;
  const shards = planShards(trainImages.map((i) => i.fileName), settings);
  const keys = {
    snapshot: `${base}/snapshot.json`,
    trainCoco: `${base}/train.json`,
    valCoco: `${base}/val.json`,
    launch: `${dir}/launch.json`,
    shards: shards.map((_, r) => `${dir}/shards/node-${r}.txt`),
    dir,
  };
  const snapshotFile: SnapshotFile = {
    format: "sluice-train-snapshot/1",
    snapshotId: snapshot.id,
    variant: snapshot.variant,
    inputSize: snapshot.inputSize,
    labels: [...snapshot.labels].map(([name, id]) => ({ id, name })).sort((a, b) => a.id - b.id),
    images,
  };
  const json = { contentType: "application/json" };
  await trainingStore.put(keys.snapshot, jsonBytes(snapshotFile), json);
  await trainingStore.put(keys.trainCoco, encoder.encode(JSON.stringify(train)), json);
  await trainingStore.put(keys.valCoco, encoder.encode(JSON.stringify(val)), json);
  for (const [r, shard] of shards.entries()) {
    const text =
      `# ${snapshot.id} ${layout} node ${r} of ${shards.length}: ${shard.length} images\n` +
      shard.join("\n") + "\n";
    await trainingStore.put(keys.shards[r], encoder.encode(text), { contentType: "text/plain" });
  }
  const plan: LaunchPlan = {
    format: "sluice-train-launch/1",
    snapshotId: snapshot.id,
    layout,
    variant: snapshot.variant,
    datasetStore: opts.datasetStoreUrl,
    trainingStore: trainingStore.url,
    settings,
    counts: { train: trainImages.length, val: images.length - trainImages.length },
    keys,
  };
  await trainingStore.put(keys.launch, jsonBytes(plan), json);
  return { plan, snapshotFile };
}

/**
 * Reads and validates a launch plan (what `sluice-train node` starts from).
 *
 * @example
 * ```ts
 * const plan = await readLaunchPlan(trainingStore, "training/snap-…/run-…/launch.json");
 * ```
 */
export async function readLaunchPlan(store: ObjectStore, key: string): Promise<LaunchPlan> {
  return parseJson(LaunchPlanSchema, await store.getBytes(key), `launch plan ${key}`);
}

/** Reads and validates `snapshot.json`. */
export async function readSnapshotFile(store: ObjectStore, key: string): Promise<SnapshotFile> {
  return parseJson(SnapshotFileSchema, await store.getBytes(key), `snapshot file ${key}`);
}

function parseJson<T extends z.ZodType>(schema: T, bytes: Uint8Array, what: string): z.output<T> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new SluiceError("invalid_plan", `${what}: expected JSON, found a parse error: ${err}`);
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new SluiceError("invalid_plan", `${what}: ${z.prettifyError(r.error)}`);
  }
  return r.data;
}

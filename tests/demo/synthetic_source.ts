/**
 * Seeds the demo's raw bucket: a deterministic synthetic dataset whose annotated part is
 * uploaded with a Label Studio export (as a labelling team would deliver it), and whose
 * held-out part arrives without annotations, like new camera images, with its ground truth kept
 * aside for evaluating the trained model.
 *
 * @example
 * ```ts
 * const seeded = await seedRawBucket(raw, { annotated: 300, heldOut: 60, seed: 7 });
 * ```
 * @module
 */
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { generateDataset } from "../support/synthetic/dataset.ts";
import { toLabelStudioTasks } from "../support/synthetic/label_studio.ts";
import { type CocoGroundTruth, toCocoGroundTruth } from "../support/synthetic/coco.ts";

export interface SeedOptions {
  annotated: number;
  heldOut: number;
  seed: number;
}

export interface SeededSource {
  /** Key of the Label Studio export in the raw bucket. */
  annotationsKey: string;
  /** Ground truth of the held-out images (file names as in the bucket, original pixels). */
  heldOutTruth: CocoGroundTruth;
  labels: string[];
  uploaded: number;
}

/** Key prefixes in the raw bucket. */
export const ANNOTATED_PREFIX = "labelled";
export const INCOMING_PREFIX = "incoming";
export const ANNOTATIONS_KEY = "exports/labelstudio.json";

/** Generates and uploads the demo dataset; identical bytes on every run for the same options. */
export async function seedRawBucket(raw: ObjectStore, opts: SeedOptions): Promise<SeededSource> {
  const annotated = await generateDataset({
    count: opts.annotated,
    seed: opts.seed,
    namePrefix: "lab_",
  });
  const heldOut = await generateDataset({
    count: opts.heldOut,
    seed: opts.seed + 1,
    namePrefix: "new_",
  });
  let uploaded = 0;
  const put = async (key: string, bytes: Uint8Array, contentType: string) => {
    await raw.put(key, bytes, { contentType });
    uploaded++;
  };
  const mime = (f: string) => f.endsWith(".png") ? "image/png" : "image/jpeg";
  for (const img of annotated.images) {
    await put(`${ANNOTATED_PREFIX}/${img.fileName}`, img.bytes, mime(img.fileName));
  }
  for (const img of heldOut.images) {
    await put(`${INCOMING_PREFIX}/${img.fileName}`, img.bytes, mime(img.fileName));
  }
  const tasks = toLabelStudioTasks(annotated, {
    imageUrl: (f) => raw.uriFor(`${ANNOTATED_PREFIX}/${f}`),
  });
  await raw.put(ANNOTATIONS_KEY, new TextEncoder().encode(JSON.stringify(tasks, null, 1)), {
    contentType: "application/json",
  });
  return {
    annotationsKey: ANNOTATIONS_KEY,
    heldOutTruth: toCocoGroundTruth(heldOut),
    labels: annotated.labels,
    uploaded,
  };
}

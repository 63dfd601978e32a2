/**
 * The training snapshot as an MLflow dataset input (`runs/log-inputs`), so that a run shows
 * exactly what it trained on: a digest (the snapshot's content hash), the source (where
 * `snapshot.json` is), a schema of the records and a profile with image and box counts per class
 * and split.
 *
 * @example
 * ```ts
 * const input = snapshotDatasetInput({ plan, snapshotUri, train: trainCoco, val: valCoco });
 * await tracker.logInputs(runId, [input]);
 * ```
 * @module
 */
import { DATASET_CONTEXT_TAG, type DatasetInput } from "../../common/mlflow/tracker.ts";

/** The parts of a COCO file the profile counts. */
export interface CocoCounts {
  images: { id: number }[];
  annotations: { image_id: number; category_id: number; iscrowd?: number }[];
  categories: { id: number; name: string }[];
}

/** What {@link snapshotDatasetInput} needs. */
export interface SnapshotDatasetOptions {
  snapshotId: string;
  variant: string;
  inputSize: number;
  /** Where `snapshot.json` is (`s3://…`, `file:///…`). */
  snapshotUri: string;
  train: CocoCounts;
  val: CocoCounts;
}

/** Per class and split: images holding the class and boxes of it (crowd regions apart). */
export interface ClassProfile {
  train_images: number;
  train_boxes: number;
  val_images: number;
  val_boxes: number;
  crowd_regions: number;
}

/** The profile document (JSON) of the dataset. */
export interface SnapshotProfile {
  variant: string;
  input_size: number;
  images: { train: number; val: number };
  boxes: { train: number; val: number };
  classes: Record<string, ClassProfile>;
}

/**
 * Counts images and boxes per class and split (a crowd region counts apart, not as a box).
 *
 * @example
 * ```ts
 * profileOf({ ...opts }).classes.car.train_boxes; // 12
 * ```
 */
export function profileOf(o: SnapshotDatasetOptions): SnapshotProfile {
  const classes: Record<string, ClassProfile> = {};
  const names = new Map<number, string>();
  for (const c of [...o.train.categories, ...o.val.categories]) {
    names.set(c.id, c.name);
    classes[c.name] ??= {
      train_images: 0,
      train_boxes: 0,
      val_images: 0,
      val_boxes: 0,
      crowd_regions: 0,
    };
  }
  const boxes = { train: 0, val: 0 };
  for (const split of ["train", "val"] as const) {
    const seen = new Set<string>();
    for (const a of o[split].annotations) {
      const name = names.get(a.category_id) ?? `category ${a.category_id}`;
      const c = classes[name] ??= {
        train_images: 0,
        train_boxes: 0,
        val_images: 0,
        val_boxes: 0,
        crowd_regions: 0,
      };
      if (a.iscrowd) {
        c.crowd_regions++;
        continue;
      }
      c[`${split}_boxes`]++;
      boxes[split]++;
      const key = `${a.image_id}\u0000${name}`;
      if (!seen.has(key)) {
        seen.add(key);
        c[`${split}_images`]++;
      }
    }
  }
  return {
    variant: o.variant,
    input_size: o.inputSize,
    images: { train: o.train.images.length, val: o.val.images.length },
    boxes,
    classes,
  };
}

/** The schema of one record: an image of the snapshot with one of its boxes. */
const SCHEMA = JSON.stringify({
  mlflow_colspec: [
    { type: "string", name: "file_name", required: true },
    { type: "string", name: "split", required: true },
    { type: "long", name: "width", required: true },
    { type: "long", name: "height", required: true },
    { type: "string", name: "category", required: false },
    { type: "double", name: "bbox_x", required: false },
    { type: "double", name: "bbox_y", required: false },
    { type: "double", name: "bbox_w", required: false },
    { type: "double", name: "bbox_h", required: false },
    { type: "boolean", name: "iscrowd", required: false },
  ],
});

/**
 * The dataset input of a snapshot (context `training`; the profile covers both splits).
 *
 * @example
 * ```ts
 * snapshotDatasetInput(opts).dataset.digest; // the snapshot's content hash, e.g. "4f1c…"
 * ```
 */
export function snapshotDatasetInput(o: SnapshotDatasetOptions): DatasetInput {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(o.snapshotUri)?.[1]?.toLowerCase();
  return {
    tags: { [DATASET_CONTEXT_TAG]: "training" },
    dataset: {
      name: `sluice-${o.variant}`,
      // MLflow keeps digests short (at most 36 characters); the snapshot id is a content hash.
      digest: o.snapshotId.replace(/^snap-/, "").slice(0, 36),
      sourceType: scheme === "s3" ? "s3" : scheme === "file" || !scheme ? "local" : scheme,
      source: JSON.stringify({ uri: o.snapshotUri }),
      schema: SCHEMA,
      profile: JSON.stringify(profileOf(o)),
    },
  };
}

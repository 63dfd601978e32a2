/**
 * Stages a run's inputs on local (NVMe) disk inside a staging lease: the COCO files and shard
 * lists from the training store, and the variant images the given ranks read from the dataset
 * store (a rank's shard; rank 0 also the validation images). Every file goes through
 * `lease.publish`, so the free-space guard applies and a half-written file is never seen. The
 * staged image's name is the COCO `file_name` (both are `safeFileName(key)`), so the lease
 * directory is the trainer's `--images-root`.
 *
 * @example
 * ```ts
 * await using lease = await staging.lease(plan.layout);
 * const staged = await stageInputs(lease, { plan, snapshot, trainingStore, datasetStore, ranks: [0, 1], log });
 * staged.shards.get(1); // "/mnt/nvme/sluice/train/<worker>/<lease>/node-1-….txt"
 * ```
 * @module
 */
import { mkdir } from "node:fs/promises";
import { basename } from "node:path";
import { SluiceError } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { StagingLease } from "../../common/staging/mod.ts";
import type { LaunchPlan, PlanImage, SnapshotFile } from "./training_inputs.ts";

export interface StageInputsOptions {
  plan: LaunchPlan;
  snapshot: SnapshotFile;
  trainingStore: ObjectStore;
  datasetStore: ObjectStore;
  /** The ranks that run on this host. */
  ranks: readonly number[];
  log: Logger;
  /** Downloads at once (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
}

/** Local paths of the staged inputs. */
export interface StagedInputs {
  dir: string;
  trainCoco: string;
  valCoco: string;
  /** rank → shard list path */
  shards: Map<number, string>;
  /** Where the images are (the lease directory). */
  imagesRoot: string;
  /** Empty directory for the trainer's outputs. */
  outDir: string;
  images: number;
  bytes: number;
}

/**
 * Stages what `ranks` need. Throws `invalid_plan` when a shard names an image the snapshot does
 * not list, and passes on storage errors (`not_found`, `staging_full`, …).
 */
export async function stageInputs(
  lease: StagingLease,
  opts: StageInputsOptions,
): Promise<StagedInputs> {
  const { plan, trainingStore, datasetStore, log } = opts;
  const fetchKey = async (store: ObjectStore, key: string, size?: number): Promise<string> => {
    opts.signal?.throwIfAborted();
    const { path } = await lease.publish(key, await store.get(key), { expectedBytes: size });
    return path;
  };
  const trainCoco = await fetchKey(trainingStore, plan.keys.trainCoco);
  const valCoco = await fetchKey(trainingStore, plan.keys.valCoco);
  const shards = new Map<number, string>();
  const wanted = new Map<string, PlanImage>();
  const byName = new Map(opts.snapshot.images.map((i) => [i.fileName, i]));
  for (const rank of opts.ranks) {
    const key = plan.keys.shards[rank];
    if (key === undefined) {
      throw new SluiceError(
        "invalid_plan",
        `rank ${rank}: expected 0 … ${plan.keys.shards.length - 1} (the plan has ` +
          `${plan.keys.shards.length} shards), found ${rank}`,
      );
    }
    const path = await fetchKey(trainingStore, key);
    shards.set(rank, path);
    const text = await Deno.readTextFile(path);
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      const img = byName.get(line);
      if (!img) {
        throw new SluiceError(
          "invalid_plan",
          `shard ${key}: expected file names from ${plan.keys.snapshot}, found ${
            JSON.stringify(line)
          }`,
        );
      }
      wanted.set(img.fileName, img);
    }
  }
  if (opts.ranks.includes(0)) {
    for (const img of opts.snapshot.images) if (img.split === "val") wanted.set(img.fileName, img);
  }

  const todo = [...wanted.values()];
  let next = 0, done = 0, bytes = 0, lastLog = Date.now(), failed = false;
  const started = Date.now();
  const worker = async () => {
    while (next < todo.length && !failed) {
      const img = todo[next++];
      let path: string;
      try {
        path = await fetchKey(datasetStore, img.key, img.bytes);
      } catch (err) {
        failed = true;
        throw err;
      }
      if (basename(path) !== img.fileName) {
        // The trainer finds images by their COCO file_name: the two must agree.
        throw new SluiceError(
          "invalid_plan",
          `image ${img.imageId}: expected to stage it as ${img.fileName}, found ${basename(path)}`,
        );
      }
      done++;
      bytes += img.bytes;
      if (Date.now() - lastLog >= 10_000) {
        lastLog = Date.now();
        log.info("staging images", { done, total: todo.length, bytes });
      }
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? 8, todo.length));
  // Wait for every worker, so no download is still writing into the lease when it is released.
  const settled = await Promise.allSettled(Array.from({ length: n }, worker));
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
  const outDir = `${lease.dir}/out`;
  await mkdir(outDir, { recursive: true });
  log.info("staged inputs", {
    images: todo.length,
    bytes,
    ranks: opts.ranks.length,
    dir: lease.dir,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  });
  return {
    dir: lease.dir,
    trainCoco,
    valCoco,
    shards,
    imagesRoot: lease.dir,
    outDir,
    images: todo.length,
    bytes,
  };
}

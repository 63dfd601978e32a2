/**
 * Per-node shard lists: each node reads exactly `imagesPerNode` images per epoch, drawn from one
 * seeded shuffle of the train split. Node `r` takes positions `r·k … r·k + k − 1` of the shuffled
 * list (k = imagesPerNode), wrapping around to its start when the split is smaller than
 * `nodes × k`, so shards are disjoint whenever the data allows it and exactly `k` long always.
 *
 * @example
 * ```ts
 * const shards = planShards(["a.jpg", "b.jpg", "c.jpg", "d.jpg"], { nodes: 2, imagesPerNode: 2, seed: 7 });
 * // two disjoint lists of two names each, the same on every run with seed 7
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import { Prng, seedFrom } from "../../common/images/prng.ts";

/** How to cut the train split into shards. */
export interface ShardOptions {
  nodes: number;
  /** Images per shard; unset = ⌊train / nodes⌋ (at least 1). */
  imagesPerNode?: number;
  seed: number;
}

/** The shuffled order of `items` for `seed` (Fisher–Yates over mulberry32). */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rng = new Prng(seedFrom("sluice-train-shards", seed));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Images per node for `trainCount` images: the configured value, or an even division. */
export function imagesPerNodeFor(trainCount: number, opts: ShardOptions): number {
  return opts.imagesPerNode ?? Math.max(1, Math.floor(trainCount / opts.nodes));
}

/**
 * Cuts `items` (the train split, in snapshot order) into `nodes` shards of exactly
 * `imagesPerNode` entries. Throws `empty_dataset` when there is nothing to train on.
 *
 * @example
 * ```ts
 * planShards(names, { nodes: 4, seed: 0 }); // 4 disjoint shards of ⌊names.length / 4⌋
 * ```
 */
export function planShards<T>(items: readonly T[], opts: ShardOptions): T[][] {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1) {
    throw new SluiceError("invalid_shards", `nodes: expected an integer >= 1, found ${opts.nodes}`);
  }
  if (items.length === 0) {
    throw new SluiceError("empty_dataset", "train split: expected at least one image, found none");
  }
  const k = imagesPerNodeFor(items.length, opts);
  if (!Number.isInteger(k) || k < 1) {
    throw new SluiceError("invalid_shards", `imagesPerNode: expected an integer >= 1, found ${k}`);
  }
  const order = seededShuffle(items, opts.seed);
  const shards: T[][] = [];
  for (let r = 0; r < opts.nodes; r++) {
    const shard: T[] = [];
    for (let i = 0; i < k; i++) shard.push(order[(r * k + i) % order.length]);
    shards.push(shard);
  }
  return shards;
}

/**
 * The review-loop benchmark's two selection arms and its headline figure.
 *
 * - `uncertainty`: the K tasks with the highest `data.sluice_review_priority`, the review
 *   priority infer writes into every Label Studio task (`common/review/review_priority.ts`);
 *   ties by image id.
 * - `least-confident`: (opt-in, a diagnostic) the K tasks whose highest box score is lowest,
 *   image-level least confidence `1 - max score`: the product priority's first rule (before the
 *   summed detection entropy), kept to compare against; ties by image id.
 * - `random`: K tasks drawn uniformly by a seeded PRNG (mulberry32), from the same candidates.
 *
 * `reviewsToReach` reads a mean learning curve (reviewed images → mAP) as piecewise linear and
 * returns the first point where it reaches a target.
 *
 * @example
 * ```ts
 * const chosen = selectTasks("uncertainty", tasks, { k: 24, seed: 1, eligible: (id) => pool.has(id) });
 * reviewsToReach([[0, 0.2], [24, 0.4], [48, 0.5]], 0.45); // 36
 * ```
 * @module
 */
import type { LabelStudioTask } from "../../common/annotations/labelstudio.ts";
import { SluiceError } from "../../common/errors/mod.ts";

/** The selection strategies the benchmark knows. */
export const ARMS = ["uncertainty", "least-confident", "random"] as const;
export type Arm = typeof ARMS[number];

/** mulberry32: a small seeded PRNG in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const idOf = (t: LabelStudioTask) => t.data.sluice_image_id ?? "";

/**
 * The K tasks an arm sends to review, among those whose image is `eligible`.
 *
 * @example
 * ```ts
 * selectTasks("random", tasks, { k: 2, seed: 7, eligible: () => true }).length; // 2
 * ```
 */
export function selectTasks(
  arm: Arm,
  tasks: readonly LabelStudioTask[],
  o: { k: number; seed: number; eligible: (imageId: string) => boolean },
): LabelStudioTask[] {
  const candidates = tasks.filter((t) => idOf(t) !== "" && o.eligible(idOf(t)))
    .sort((a, b) => idOf(a).localeCompare(idOf(b)));
  if (arm === "random") {
    const next = prng(o.seed);
    // Fisher-Yates over the id-sorted candidates: the draw depends on the seed only.
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
    }
    return candidates.slice(0, o.k);
  }
  const priority = arm === "least-confident" ? leastConfidence : (t: LabelStudioTask) => {
    const p = Number(t.data.sluice_review_priority);
    if (!Number.isFinite(p)) {
      throw new SluiceError(
        "loop_bench",
        `task of ${idOf(t)}: expected data.sluice_review_priority, found ${
          JSON.stringify(t.data.sluice_review_priority)
        }`,
      );
    }
    return p;
  };
  return candidates.map((t) => ({ t, p: priority(t) }))
    .sort((a, b) => b.p - a.p || idOf(a.t).localeCompare(idOf(b.t)))
    .slice(0, o.k).map((x) => x.t);
}

/** `1 - max box score` of a task's first prediction (1 for an image without boxes). */
function leastConfidence(t: LabelStudioTask): number {
  return 1 - topScore(t);
}

/**
 * The highest box score of a task's first prediction (0 for an image without boxes): what the
 * benchmark logs for the selected images of each arm.
 *
 * @example
 * ```ts
 * topScore({ data: {}, predictions: [{ result: [{ score: 0.3 }, { score: 0.7 }] }] }); // 0.7
 * ```
 */
export function topScore(t: LabelStudioTask): number {
  const scores = (t.predictions?.[0]?.result ?? []).map((r) => (r as { score?: unknown }).score)
    .filter((s): s is number => typeof s === "number");
  return Math.max(0, ...scores);
}

/**
 * The reviewed-image count at which a piecewise-linear curve of `[reviewed, mAP]` points (in
 * increasing `reviewed`) first reaches `target`, or null when it never does.
 *
 * @example
 * ```ts
 * reviewsToReach([[0, 0.1], [10, 0.3]], 0.2); // 5
 * reviewsToReach([[0, 0.1], [10, 0.3]], 0.5); // null
 * ```
 */
export function reviewsToReach(
  curve: readonly (readonly [number, number])[],
  target: number,
): number | null {
  for (let i = 0; i < curve.length; i++) {
    const [x, y] = curve[i];
    if (y >= target) {
      if (i === 0) return x;
      const [x0, y0] = curve[i - 1];
      return x0 + (x - x0) * (target - y0) / (y - y0);
    }
  }
  return null;
}

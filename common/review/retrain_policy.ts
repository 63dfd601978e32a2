/**
 * Retraining triggers itself: a policy over the review records decides when the train worker
 * should train on a new snapshot, and enqueues a training request on the `train` queue (the
 * worker's normal path, so promotion stays gated as for any other run). Triggers, checked in
 * this order:
 *
 * - `new_reviews`: at least `minNewReviews` images reviewed (active reviews recorded) since the
 *   last trigger;
 * - `precision_floor`: the most recently reviewed model version's live precision (all classes,
 *   IoU 0.5, see `review_metrics.ts`) is below `precisionFloor` over at least `minReviews`
 *   reviewed images; fires once per model version;
 * - `schedule`: `everyMs` since the last trigger.
 *
 * The last trigger is kept in the manifest checkpoint `retrain_policy`, so several train workers
 * and restarts share it.
 *
 * @example
 * ```ts
 * const d = await applyRetrainPolicy(manifest, { minNewReviews: 50 }, Date.now());
 * if (d.requestId) console.log(`training requested: ${d.reason}`);
 * ```
 * @module
 */
import { z } from "zod";
import type { ManifestStore } from "../manifest/mod.ts";
import { ALL_CLASSES, summarizeReviews } from "./review_metrics.ts";

export const RetrainPolicySchema = z.strictObject({
  minNewReviews: z.int().min(1).optional(),
  precisionFloor: z.number().gt(0).max(1).optional(),
  minReviews: z.int().min(1).default(20),
  everyMs: z.int().min(1000).optional(),
});
export type RetrainPolicy = z.input<typeof RetrainPolicySchema>;

/** The manifest checkpoint holding the last trigger. */
export const RETRAIN_CHECKPOINT = "retrain_policy";
/** The queue training requests go to (the train stage's `TRAIN_QUEUE`). */
export const TRAIN_REQUEST_QUEUE = "train";

const StateSchema = z.object({
  at: z.number(),
  reason: z.string(),
  floorFiredFor: z.string().nullable().default(null),
});
type State = z.output<typeof StateSchema>;

export type RetrainReason = "new_reviews" | "precision_floor" | "schedule";

export interface RetrainDecision {
  reason: RetrainReason | null;
  /** The enqueued training request (null: nothing due, or already queued). */
  requestId: string | null;
  /** Images reviewed since the last trigger. */
  newReviews: number;
  /** Live precision of the most recently reviewed model version (null: unknown). */
  precision: number | null;
  modelVersion: string | null;
}

/**
 * Checks the policy at `now`; when a trigger is due, enqueues a training request and records it.
 *
 * @example
 * ```ts
 * await applyRetrainPolicy(manifest, { precisionFloor: 0.6 }, Date.now());
 * ```
 */
export async function applyRetrainPolicy(
  manifest: ManifestStore,
  policyInput: RetrainPolicy,
  now: number,
): Promise<RetrainDecision> {
  const policy = RetrainPolicySchema.parse(policyInput);
  const raw = await manifest.getCheckpoint(RETRAIN_CHECKPOINT);
  // The first check starts the clock; it does not count as a trigger.
  let state: State = raw
    ? StateSchema.parse(JSON.parse(raw))
    : { at: now, reason: "start", floorFiredFor: null };
  if (!raw) await manifest.setCheckpoint(RETRAIN_CHECKPOINT, JSON.stringify(state));

  const reviews = await manifest.listReviews();
  const newReviews = new Set(reviews.filter((r) => r.recordedAt > state.at).map((r) => r.imageId))
    .size;
  const latest = reviews.filter((r) => r.modelName && r.modelVersion)
    .sort((a, b) => b.reviewedAt - a.reviewedAt)[0];
  const modelVersion = latest ? `${latest.modelName}:${latest.modelVersion}` : null;
  const quality = latest
    ? summarizeReviews(
      reviews.filter((r) =>
        r.modelName === latest.modelName && r.modelVersion === latest.modelVersion
      ),
    )[0]
    : undefined;
  const precision = quality?.perClass[ALL_CLASSES]?.precision ?? null;

  let reason: RetrainReason | null = null;
  if (policy.minNewReviews !== undefined && newReviews >= policy.minNewReviews) {
    reason = "new_reviews";
  } else if (
    policy.precisionFloor !== undefined && quality && precision !== null &&
    quality.images >= policy.minReviews && precision < policy.precisionFloor &&
    state.floorFiredFor !== modelVersion
  ) {
    reason = "precision_floor";
  } else if (policy.everyMs !== undefined && now - state.at >= policy.everyMs) {
    reason = "schedule";
  }
  const decision: RetrainDecision = {
    reason,
    requestId: null,
    newReviews,
    precision,
    modelVersion,
  };
  if (!reason) return decision;
  const requestId = `retrain-${reason}-${now}`;
  const queued = await manifest.enqueue(TRAIN_REQUEST_QUEUE, [requestId]);
  state = {
    at: now,
    reason,
    floorFiredFor: reason === "precision_floor" ? modelVersion : state.floorFiredFor,
  };
  await manifest.setCheckpoint(RETRAIN_CHECKPOINT, JSON.stringify(state));
  return { ...decision, requestId: queued > 0 ? requestId : null };
}

/** Settings of the policy, spread into the `train` config section. */
export const RETRAIN_POLICY_SETTINGS = {
  retrainMinNewReviews: z.int().min(1).optional().describe(
    "train worker: request a training after this many newly reviewed images (unset = off)",
  ),
  retrainPrecisionFloor: z.number().gt(0).max(1).optional().describe(
    "train worker: request a training when live review precision falls below this (unset = off)",
  ),
  retrainMinReviews: z.int().min(1).default(20).describe(
    "Reviewed images a model version needs before its live precision is trusted",
  ),
  retrainEveryMs: z.int().min(1000).optional().describe(
    "train worker: request a training this often, ms (unset = no schedule)",
  ),
  retrainCheckIntervalMs: z.int().min(1000).default(60_000).describe(
    "train worker: how often the retrain policy is checked, ms",
  ),
};

type PolicySettings = {
  retrainMinNewReviews?: number | undefined;
  retrainPrecisionFloor?: number | undefined;
  retrainMinReviews: number;
  retrainEveryMs?: number | undefined;
  retrainCheckIntervalMs: number;
};

/**
 * Checks the policy every `retrainCheckIntervalMs` while the train worker runs; returns the
 * function that stops it. Nothing runs when no trigger is configured.
 *
 * @example
 * ```ts
 * const stop = startRetrainPolicy(manifest, config.stage, (m, f) => log.info(m, f));
 * try { await runWorker(...); } finally { stop(); }
 * ```
 */
export function startRetrainPolicy(
  manifest: ManifestStore,
  s: PolicySettings,
  report: (message: string, fields: Record<string, unknown>) => void,
): () => void {
  if (
    s.retrainMinNewReviews === undefined && s.retrainPrecisionFloor === undefined &&
    s.retrainEveryMs === undefined
  ) return () => {};
  const policy: RetrainPolicy = {
    minReviews: s.retrainMinReviews,
    ...(s.retrainMinNewReviews !== undefined ? { minNewReviews: s.retrainMinNewReviews } : {}),
    ...(s.retrainPrecisionFloor !== undefined ? { precisionFloor: s.retrainPrecisionFloor } : {}),
    ...(s.retrainEveryMs !== undefined ? { everyMs: s.retrainEveryMs } : {}),
  };
  let running = false;
  const check = async () => {
    if (running) return;
    running = true;
    try {
      const d = await applyRetrainPolicy(manifest, policy, Date.now());
      if (d.reason) report("retrain policy requested a training", { ...d });
    } catch (err) {
      report("retrain policy check failed", { error: String(err) });
    } finally {
      running = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), s.retrainCheckIntervalMs);
  return () => clearInterval(timer);
}

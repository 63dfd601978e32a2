/**
 * The promotion rule: a newly registered version moves the approved alias (`champion`) only when
 * its validation mAP@0.5 reaches the threshold AND is not worse than the current champion's (read
 * from the champion version's run, or its `map50` tag when it has no run). A champion whose
 * metric cannot be read is kept: replacing a model someone approved by hand needs a person.
 *
 * @example
 * ```ts
 * const d = await promoteIfBetter(tracker, {
 *   modelName: "sluice-detector", version: "7", map50: 0.81, threshold: 0.5, approvedAlias: "champion",
 * });
 * if (d.promote) console.log(`v7 is the champion (${d.reason})`);
 * ```
 * @module
 */
import type { Tracker } from "../../common/mlflow/tracker.ts";
import { isNotFound } from "../../common/mlflow/errors.ts";

/** The run metric the rule compares. */
export const PROMOTION_METRIC = "val_map50";
/** The version tag read when the champion has no run (and written on every version). */
export const MAP50_TAG = "map50";

/** Why the rule decided as it did. */
export type PromotionReason =
  | "no_champion"
  | "not_worse_than_champion"
  | "already_champion"
  | "below_threshold"
  | "worse_than_champion"
  | "champion_metric_unknown";

/** The current champion, as far as it could be read. */
export interface ChampionInfo {
  version: string;
  /** null when neither the run metric nor the tag could be read. */
  map50: number | null;
}

export interface PromotionDecision {
  promote: boolean;
  reason: PromotionReason;
  candidate: { version: string; map50: number };
  champion: ChampionInfo | null;
  threshold: number;
}

/**
 * The rule itself, without I/O.
 *
 * @example
 * ```ts
 * decidePromotion({ version: "3", map50: 0.4 }, { version: "2", map50: 0.7 }, 0.5).reason; // "below_threshold"
 * decidePromotion({ version: "3", map50: 0.7 }, { version: "2", map50: 0.7 }, 0.5).promote; // true (ties win)
 * ```
 */
export function decidePromotion(
  candidate: { version: string; map50: number },
  champion: ChampionInfo | null,
  threshold: number,
): PromotionDecision {
  const base = { candidate, champion, threshold };
  if (champion && champion.version === candidate.version) {
    return { ...base, promote: true, reason: "already_champion" };
  }
  // NaN fails every comparison, so an unscored candidate is never promoted.
  if (!(candidate.map50 >= threshold)) {
    return { ...base, promote: false, reason: "below_threshold" };
  }
  if (!champion) return { ...base, promote: true, reason: "no_champion" };
  if (champion.map50 === null) {
    return { ...base, promote: false, reason: "champion_metric_unknown" };
  }
  if (candidate.map50 < champion.map50) {
    return { ...base, promote: false, reason: "worse_than_champion" };
  }
  return { ...base, promote: true, reason: "not_worse_than_champion" };
}

/**
 * Reads the version `alias` points at and its mAP@0.5: the `val_map50` metric of its run, else
 * its `map50` tag. Null when the alias is not set.
 *
 * @example
 * ```ts
 * await readChampion(tracker, "sluice-detector", "champion"); // { version: "4", map50: 0.83 } or null
 * ```
 */
export async function readChampion(
  tracker: Pick<Tracker, "getVersionByAlias" | "getRun">,
  modelName: string,
  alias: string,
): Promise<ChampionInfo | null> {
  const version = await tracker.getVersionByAlias(modelName, alias);
  if (!version) return null;
  let map50: number | null = null;
  if (version.runId) {
    try {
      const run = await tracker.getRun(version.runId);
      const m = run.metrics[PROMOTION_METRIC];
      if (m && Number.isFinite(m.value)) map50 = m.value;
    } catch (err) {
      // A deleted run leaves the tag as the only record of the score.
      if (!isNotFound(err)) throw err;
    }
  }
  if (map50 === null) {
    const tag = version.tags[MAP50_TAG];
    const n = tag === undefined || tag.trim() === "" ? NaN : Number(tag);
    if (Number.isFinite(n)) map50 = n;
  }
  return { version: version.version, map50 };
}

/** What {@link promoteIfBetter} needs. */
export interface PromoteOptions {
  modelName: string;
  /** The candidate version (already registered). */
  version: string;
  map50: number;
  threshold: number;
  approvedAlias: string;
}

/**
 * Applies the rule: reads the champion, decides, and on promotion points `approvedAlias` at the
 * candidate and tags it `approved=true`.
 *
 * @example
 * ```ts
 * const d = await promoteIfBetter(tracker, { modelName, version: "5", map50: 0.3, threshold: 0.5, approvedAlias: "champion" });
 * d.promote; // false: below the threshold, the champion stays
 * ```
 */
export async function promoteIfBetter(
  tracker: Pick<Tracker, "getVersionByAlias" | "getRun" | "setAlias" | "setModelVersionTag">,
  opts: PromoteOptions,
): Promise<PromotionDecision> {
  const champion = await readChampion(tracker, opts.modelName, opts.approvedAlias);
  const decision = decidePromotion(
    { version: opts.version, map50: opts.map50 },
    champion,
    opts.threshold,
  );
  if (decision.promote && decision.reason !== "already_champion") {
    if (champion) {
      // What `sluice-train models rollback` follows.
      await tracker.setModelVersionTag(
        opts.modelName,
        opts.version,
        `sluice.previous.${opts.approvedAlias}`,
        champion.version,
      );
    }
    await tracker.setAlias(opts.modelName, opts.approvedAlias, opts.version);
    await tracker.setModelVersionTag(opts.modelName, opts.version, "approved", "true");
  }
  return decision;
}

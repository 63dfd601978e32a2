/**
 * Managing registered model versions from Sluice, on any {@link Tracker} (an MLflow server or the
 * embedded file store): list, show, promote (point an alias at a version), approve (tag it),
 * rollback (move an alias back to the version it replaced) and compare two versions (metrics
 * side by side and AP per class, from each version's run and `model_card.json`).
 *
 * Every alias move made here (and by the automatic promotion) tags the new holder with
 * `sluice.previous.<alias>` = the version it replaced, which is what rollback follows.
 *
 * @example
 * ```ts
 * await promoteVersion(tracker, "sluice-detector", "7", "champion");
 * const { from, to } = await rollbackAlias(tracker, "sluice-detector", "champion"); // 7 → 5
 * const table = await compareVersions(tracker, "sluice-detector", "5", "7");
 * ```
 * @module
 */
import { join } from "node:path";
import { SluiceError } from "../../common/errors/mod.ts";
import { isNotFound } from "../../common/mlflow/errors.ts";
import type { ModelVersion, Tracker } from "../../common/mlflow/tracker.ts";

/** The tag that records which version an alias pointed at before this one. */
export function previousTag(alias: string): string {
  return `sluice.previous.${alias}`;
}

/** One version as `models list` shows it. */
export interface VersionSummary {
  version: string;
  aliases: string[];
  status: string;
  runId: string;
  map50: number | null;
  approved: boolean;
  created: string;
  source: string;
}

function num(v: string | undefined): number | null {
  if (v === undefined || v.trim() === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function summary(v: ModelVersion): VersionSummary {
  return {
    version: v.version,
    aliases: [...v.aliases].sort(),
    status: v.status,
    runId: v.runId,
    map50: num(v.tags.map50),
    approved: v.tags.approved === "true",
    created: new Date(v.creationTimestamp).toISOString(),
    source: v.source,
  };
}

/** Resolves `7`, `v7` or `@champion` to a version of `name`; throws `not_found` with the reason. */
export async function resolveVersion(
  tracker: Pick<Tracker, "getVersionByAlias" | "getModelVersion">,
  name: string,
  ref: string,
): Promise<ModelVersion> {
  if (ref.startsWith("@")) {
    const v = await tracker.getVersionByAlias(name, ref.slice(1));
    if (!v) {
      throw new SluiceError(
        "not_found",
        `model ${name}: expected alias ${ref} to be set, found none`,
      );
    }
    return v;
  }
  const n = ref.replace(/^v/i, "");
  if (!/^\d+$/.test(n)) {
    throw new SluiceError(
      "invalid_argument",
      `model version: expected a number (7, v7) or an alias (@champion), found ${
        JSON.stringify(ref)
      }`,
    );
  }
  try {
    return await tracker.getModelVersion(name, n);
  } catch (err) {
    if (isNotFound(err)) {
      throw new SluiceError("not_found", `model ${name}: expected version ${n}, found none`);
    }
    throw err;
  }
}

/** Every version of `name`, newest first. */
export async function listVersions(
  tracker: Pick<Tracker, "searchModelVersions">,
  name: string,
): Promise<VersionSummary[]> {
  return (await tracker.searchModelVersions(name)).map(summary);
}

/** One version with its run's params, latest metrics and tags. */
export async function showVersion(
  tracker: Pick<Tracker, "getVersionByAlias" | "getModelVersion" | "getRun">,
  name: string,
  ref: string,
): Promise<{ version: ModelVersion; run: Awaited<ReturnType<Tracker["getRun"]>> | null }> {
  const version = await resolveVersion(tracker, name, ref);
  let run = null;
  if (version.runId) {
    try {
      run = await tracker.getRun(version.runId);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return { version, run };
}

/**
 * Points `alias` at the version (recording the previous holder for rollback); returns the move.
 */
export async function promoteVersion(
  tracker: Pick<
    Tracker,
    "getVersionByAlias" | "getModelVersion" | "setAlias" | "setModelVersionTag"
  >,
  name: string,
  ref: string,
  alias: string,
): Promise<{ alias: string; from: string | null; to: string }> {
  const target = await resolveVersion(tracker, name, ref);
  const current = await tracker.getVersionByAlias(name, alias);
  if (current?.version === target.version) {
    return { alias, from: current.version, to: target.version };
  }
  if (current) {
    await tracker.setModelVersionTag(name, target.version, previousTag(alias), current.version);
  }
  await tracker.setAlias(name, alias, target.version);
  return { alias, from: current?.version ?? null, to: target.version };
}

/** Tags the version as approved (`key=value`, infer's `approvedTag`). */
export async function approveVersion(
  tracker: Pick<Tracker, "getVersionByAlias" | "getModelVersion" | "setModelVersionTag">,
  name: string,
  ref: string,
  tag: { key: string; value: string },
): Promise<{ version: string; tag: string }> {
  const v = await resolveVersion(tracker, name, ref);
  await tracker.setModelVersionTag(name, v.version, tag.key, tag.value);
  return { version: v.version, tag: `${tag.key}=${tag.value}` };
}

/**
 * Moves `alias` back to the version its current holder replaced (tag `sluice.previous.<alias>`).
 * Throws `not_found` when the alias is unset or no earlier holder was recorded.
 */
export async function rollbackAlias(
  tracker: Pick<Tracker, "getVersionByAlias" | "getModelVersion" | "setAlias">,
  name: string,
  alias: string,
): Promise<{ alias: string; from: string; to: string }> {
  const current = await tracker.getVersionByAlias(name, alias);
  if (!current) {
    throw new SluiceError(
      "not_found",
      `model ${name}: expected alias ${alias} to be set, found none`,
    );
  }
  const prev = current.tags[previousTag(alias)];
  if (!prev) {
    throw new SluiceError(
      "not_found",
      `model ${name}: version ${current.version} holds ${alias} but records no earlier holder ` +
        `(tag ${previousTag(alias)}); use "models promote VERSION --alias ${alias}"`,
    );
  }
  const target = await resolveVersion(tracker, name, prev);
  await tracker.setAlias(name, alias, target.version);
  return { alias, from: current.version, to: target.version };
}

/** One row of a comparison: a metric (or a class's AP) for A and B. */
export interface CompareRow {
  metric: string;
  a: number | null;
  b: number | null;
}

interface CardMetrics {
  per_class?: {
    name?: string | null;
    category_id: number;
    ap50: number | null;
    ap: number | null;
  }[];
}

async function cardMetrics(
  tracker: Pick<Tracker, "downloadArtifact">,
  v: ModelVersion,
): Promise<CardMetrics | null> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-models-" });
  try {
    const path = await tracker.downloadArtifact(
      `${v.source.replace(/\/+$/, "")}/model_card.json`,
      join(dir, "model_card.json"),
    );
    const card = JSON.parse(await Deno.readTextFile(path));
    return (card?.metrics ?? null) as CardMetrics | null;
  } catch (err) {
    if (isNotFound(err) || err instanceof SyntaxError) return null;
    throw err;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Two versions side by side: their runs' latest metrics (union of keys, sorted) and AP@0.5 / AP
 * per class from their model cards.
 */
export async function compareVersions(
  tracker: Pick<Tracker, "getVersionByAlias" | "getModelVersion" | "getRun" | "downloadArtifact">,
  name: string,
  refA: string,
  refB: string,
): Promise<{ a: string; b: string; rows: CompareRow[] }> {
  const [a, b] = [await showVersion(tracker, name, refA), await showVersion(tracker, name, refB)];
  const rows: CompareRow[] = [];
  const keys = new Set([
    ...Object.keys(a.run?.metrics ?? {}),
    ...Object.keys(b.run?.metrics ?? {}),
  ]);
  for (const k of [...keys].sort()) {
    rows.push({
      metric: k,
      a: a.run?.metrics[k]?.value ?? null,
      b: b.run?.metrics[k]?.value ?? null,
    });
  }
  const [ca, cb] = [await cardMetrics(tracker, a.version), await cardMetrics(tracker, b.version)];
  const byName = (m: CardMetrics | null) =>
    new Map((m?.per_class ?? []).map((c) => [c.name ?? `category ${c.category_id}`, c]));
  const [pa, pb] = [byName(ca), byName(cb)];
  for (const n of [...new Set([...pa.keys(), ...pb.keys()])].sort()) {
    rows.push({ metric: `ap50[${n}]`, a: pa.get(n)?.ap50 ?? null, b: pb.get(n)?.ap50 ?? null });
    rows.push({ metric: `ap[${n}]`, a: pa.get(n)?.ap ?? null, b: pb.get(n)?.ap ?? null });
  }
  return { a: a.version.version, b: b.version.version, rows };
}

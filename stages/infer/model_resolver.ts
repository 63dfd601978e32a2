/**
 * Which model the infer stage runs: the approved version of a registered model, looked up in
 * the MLflow registry in this order: the alias (default `champion`), else the newest READY
 * version tagged `approved=true`, else the newest READY version in the legacy `Production` stage.
 * An explicit `modelUri` (`models:/name@alias`, `models:/name/N`, `models:/name/latest`,
 * `models:/name/<Stage>`, `runs:/<run>/<path>`, `s3://…`, `file://…`) overrides the lookup.
 *
 * Works the same on the embedded file store and on an MLflow server (both are a `Tracker`).
 *
 * @example
 * ```ts
 * const source = await resolveModelSource(tracker, {
 *   name: "sluice-detector", alias: "champion", approvedTag: { key: "approved", value: "true" },
 *   stage: "Production",
 * });
 * console.log(describeModel(source)); // sluice-detector v3 (alias champion)
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import { parseModelUri } from "../../common/mlflow/mod.ts";
import type { ModelVersion, Tracker } from "../../common/mlflow/mod.ts";
import { registryKey } from "../../common/mlflow/registry_identity.ts";

/** How a model was chosen. */
export type ModelVia = "alias" | "tag" | "stage" | "uri";

/** A chosen model before its files are fetched; `version` is null for s3:// and file:// URIs. */
export interface ModelSource {
  /** Registered model name (the configured name for runs:/, s3:// and file:// URIs). */
  name: string;
  /** Registry version, `run-<id>` for runs:/ URIs, null until fetched for s3:// / file://. */
  version: string | null;
  /** The alias that selected this version, if one did. */
  alias: string | null;
  via: ModelVia;
  /** What to download: `models:/name/N`, or the explicit URI. */
  uri: string;
  /** The selection can move (alias, tag, stage, latest): the stage re-checks it periodically. */
  movable: boolean;
  runId?: string;
  /**
   * Identity of the registry it came from (`file:///…/mlruns`, `http://mlflow:5000`; see
   * `registry_identity.ts`): version 1 in two registries are different models. Absent: unknown.
   */
  registry?: string;
}

/** A fetched model: the version is always known. */
export interface ModelRef extends ModelSource {
  version: string;
}

/** What the lookup needs. */
export interface ModelSelection {
  /** Registered model name. */
  name: string;
  alias: string;
  approvedTag: { key: string; value: string };
  stage: string;
  /** Explicit model URI; overrides the lookup. */
  modelUri?: string;
}

/** The registry operations resolution uses (any `Tracker` has them). */
export type RegistryReader = Pick<
  Tracker,
  "getVersionByAlias" | "searchModelVersions" | "getModelVersion" | "resolveModelUri"
>;

/** No version is approved (or the explicit URI names nothing). */
export class NoApprovedModelError extends SluiceError {
  constructor(message: string) {
    super("no_approved_model", message);
    this.name = "NoApprovedModelError";
  }
}

function newestReady(versions: ModelVersion[]): ModelVersion | undefined {
  return versions
    .filter((v) => v.status === "READY")
    .sort((a, b) => Number(b.version) - Number(a.version))[0];
}

/**
 * Resolves the model to run (see the module docs for the order).
 *
 * @example
 * ```ts
 * const s = await resolveModelSource(tracker, { ...selection, modelUri: "models:/det/2" });
 * s.version; // "2"
 * ```
 */
export async function resolveModelSource(
  registry: RegistryReader,
  sel: ModelSelection,
): Promise<ModelSource> {
  if (sel.modelUri) return await resolveExplicit(registry, sel.modelUri, sel.name);
  const byAlias = await registry.getVersionByAlias(sel.name, sel.alias);
  if (byAlias) return fromVersion(byAlias, "alias", sel.alias);
  const all = await registry.searchModelVersions(sel.name);
  const { key, value } = sel.approvedTag;
  const tagged = newestReady(all.filter((v) => v.tags[key] === value));
  if (tagged) return fromVersion(tagged, "tag", null);
  const staged = newestReady(all.filter((v) => v.currentStage === sel.stage));
  if (staged) return fromVersion(staged, "stage", null);
  const newest = all[0];
  const hint = newest
    ? `; the newest is v${newest.version}` +
      (newest.aliases.length ? ` (alias ${newest.aliases.join(", ")})` : "") +
      (newest.tags.map50 !== undefined ? ` with map50 ${newest.tags.map50}` : "") +
      `: serve it with "sluice-train models promote ${newest.version} --alias ${sel.alias}" ` +
      `(or "sluice-train models approve ${newest.version}")`
    : "";
  throw new NoApprovedModelError(
    `model "${sel.name}": expected an approved version (alias "${sel.alias}", a version tagged ` +
      `${key}=${value}, or a version in stage ${sel.stage}), found none among ${all.length} ` +
      `version(s)${hint}`,
  );
}

/**
 * Why this version is the one served, in plain words (logged when a model is loaded).
 *
 * @example
 * ```ts
 * servingReason({ name: "det", version: "3", alias: "champion", via: "alias", uri: "", movable: true });
 * // "alias champion points at det v3"
 * ```
 */
export function servingReason(
  s: ModelSource,
  sel?: Pick<ModelSelection, "alias" | "approvedTag" | "stage">,
): string {
  const v = `${s.name} v${s.version ?? "?"}`;
  switch (s.via) {
    case "alias":
      return `alias ${s.alias} points at ${v}`;
    case "tag":
      return `no alias ${sel?.alias ?? ""} is set; ${v} is the newest READY version tagged ` +
        `${sel ? `${sel.approvedTag.key}=${sel.approvedTag.value}` : "as approved"}`;
    case "stage":
      return `neither the alias nor the approval tag is set; ${v} is the newest READY version ` +
        `in stage ${sel?.stage ?? "?"}`;
    case "uri":
      return `the configured model URI ${s.uri} names ${v}${s.alias ? ` (alias ${s.alias})` : ""}`;
  }
}

function fromVersion(v: ModelVersion, via: ModelVia, alias: string | null): ModelSource {
  return {
    name: v.name,
    version: v.version,
    alias,
    via,
    uri: `models:/${v.name}/${v.version}`,
    movable: true,
    ...(v.runId ? { runId: v.runId } : {}),
  };
}

async function resolveExplicit(
  registry: RegistryReader,
  uri: string,
  defaultName: string,
): Promise<ModelSource> {
  if (uri.startsWith("s3://") || uri.startsWith("file://")) {
    return { name: defaultName, version: null, alias: null, via: "uri", uri, movable: false };
  }
  const parsed = parseModelUri(uri);
  switch (parsed.kind) {
    case "run":
      return {
        name: defaultName,
        version: `run-${parsed.runId}`,
        alias: null,
        via: "uri",
        uri,
        movable: false,
        runId: parsed.runId,
      };
    case "alias": {
      const v = await registry.getVersionByAlias(parsed.name, parsed.alias);
      if (!v) {
        throw new NoApprovedModelError(
          `model URI ${uri}: expected alias "${parsed.alias}" of "${parsed.name}" to be set, ` +
            "found it unset",
        );
      }
      return { ...fromVersion(v, "uri", parsed.alias), movable: true };
    }
    case "version": {
      const v = await registry.getModelVersion(parsed.name, parsed.version);
      return { ...fromVersion(v, "uri", null), movable: false };
    }
    default: {
      // `latest` and stage URIs: the registry picks; they move when versions change.
      const r = await registry.resolveModelUri(uri);
      if (!r.name || !r.version) {
        throw new NoApprovedModelError(`model URI ${uri}: expected it to name a version`);
      }
      return {
        name: r.name,
        version: r.version,
        alias: null,
        via: "uri",
        uri: `models:/${r.name}/${r.version}`,
        movable: true,
        ...(r.runId ? { runId: r.runId } : {}),
      };
    }
  }
}

/**
 * A short human description: `name vN (alias a)`, `name vN (tag)`, ...
 *
 * @example
 * ```ts
 * describeModel({ name: "det", version: "3", alias: "champion", via: "alias", uri: "", movable: true });
 * // "det v3 (alias champion)"
 * ```
 */
export function describeModel(s: ModelSource): string {
  const v = s.version ?? "?";
  const how = s.alias ? `alias ${s.alias}` : s.via === "uri" ? s.uri : s.via;
  return `${s.name} v${v} (${how})`;
}

/**
 * The `model_version` written into Label Studio predictions: `name:version`, with `@alias`
 * when an alias selected it.
 *
 * @example
 * ```ts
 * modelVersionLabel({ name: "det", version: "3", alias: "champion" }); // "det:3@champion"
 * ```
 */
export function modelVersionLabel(s: Pick<ModelRef, "name" | "version" | "alias">): string {
  return `${s.name}:${s.version}${s.alias ? `@${s.alias}` : ""}`;
}

/**
 * The work-queue name of one model version (`infer:<name>@<version>#<registry key>`): each
 * version of each registry has its own queue, so moving the alias, or pointing infer at another
 * registry whose numbering restarts at 1, starts a fresh pass over the images. The key is 8 hex
 * digits of the registry identity's SHA-256 (no `#…` when the registry is unknown).
 *
 * @example
 * ```ts
 * inferQueue({ name: "det", version: "2" }); // "infer:det@2"
 * inferQueue({ name: "det", version: "2", registry: "http://mlflow:5000" }); // "infer:det@2#<8 hex>"
 * ```
 */
export function inferQueue(s: Pick<ModelRef, "name" | "version" | "registry">): string {
  return `infer:${s.name}@${s.version}${s.registry ? `#${registryKey(s.registry)}` : ""}`;
}

/**
 * Parsing of the URIs MLflow uses to name models and artifacts:
 * `models:/name@alias`, `models:/name/3`, `models:/name/latest`, `models:/name/Production`,
 * `runs:/<run>/<path>`, and artifact locations (`mlflow-artifacts:/…`, `s3://…`, `file:///…`).
 *
 * @example
 * ```ts
 * parseModelUri("models:/detector@champion"); // { kind: "alias", name: "detector", alias: "champion" }
 * parseModelUri("runs:/0a1b/model");          // { kind: "run", runId: "0a1b", path: "model" }
 * ```
 * @module
 */
import { MlflowError } from "./errors.ts";

/** A parsed `models:/` or `runs:/` URI. */
export type ParsedModelUri =
  | { kind: "alias"; name: string; alias: string }
  | { kind: "version"; name: string; version: string }
  | { kind: "latest"; name: string }
  | { kind: "stage"; name: string; stage: string }
  | { kind: "run"; runId: string; path: string };

const STAGES = new Map(
  ["None", "Staging", "Production", "Archived"].map((s) => [s.toLowerCase(), s]),
);

function invalid(uri: string, expected: string): MlflowError {
  return new MlflowError(
    `model URI ${JSON.stringify(uri)}: expected ${expected}`,
    { errorCode: "INVALID_PARAMETER_VALUE" },
  );
}

/**
 * Parses a `models:/` or `runs:/` URI. Throws an `invalid_argument` {@link MlflowError} otherwise.
 *
 * @example
 * ```ts
 * parseModelUri("models:/detector/2"); // { kind: "version", name: "detector", version: "2" }
 * ```
 */
export function parseModelUri(uri: string): ParsedModelUri {
  if (uri.startsWith("runs:/")) {
    const rest = uri.slice("runs:/".length).replace(/^\/+/, "");
    const slash = rest.indexOf("/");
    const runId = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
    if (!/^[0-9A-Za-z_-]+$/.test(runId)) {
      throw invalid(uri, "runs:/<run_id>/<path> with a run id of letters and digits");
    }
    return { kind: "run", runId, path };
  }
  if (!uri.startsWith("models:/")) {
    throw invalid(uri, "a models:/… or runs:/… URI");
  }
  const rest = uri.slice("models:/".length).replace(/\/+$/, "");
  const at = rest.lastIndexOf("@");
  if (at > 0 && !rest.slice(at).includes("/")) {
    const name = rest.slice(0, at);
    const alias = rest.slice(at + 1);
    if (!alias) throw invalid(uri, "models:/<name>@<alias> with a non-empty alias");
    return { kind: "alias", name, alias };
  }
  const slash = rest.lastIndexOf("/");
  if (slash <= 0 || slash === rest.length - 1) {
    throw invalid(uri, "models:/<name>/<version|stage|latest> or models:/<name>@<alias>");
  }
  const name = rest.slice(0, slash);
  const last = rest.slice(slash + 1);
  if (/^\d+$/.test(last)) return { kind: "version", name, version: String(Number(last)) };
  if (last.toLowerCase() === "latest") return { kind: "latest", name };
  const stage = STAGES.get(last.toLowerCase());
  if (stage) return { kind: "stage", name, stage };
  throw invalid(
    uri,
    `a version number, "latest", an alias or a stage after the name, found "${last}"`,
  );
}

/**
 * Joins path segments onto an artifact URI with single slashes.
 *
 * @example
 * ```ts
 * joinArtifactUri("mlflow-artifacts:/1/abc/artifacts", "model/"); // ".../artifacts/model"
 * ```
 */
export function joinArtifactUri(base: string, ...parts: string[]): string {
  let out = base.replace(/\/+$/, "");
  for (const p of parts) {
    const clean = p.replace(/^\/+|\/+$/g, "");
    if (clean) out += "/" + clean;
  }
  return out;
}

/**
 * Splits an artifact-relative path into segments, refusing `..`, `.`, empty segments, backslashes
 * and control characters (MLflow's proxy answers "Invalid path" to traversal anyway; refusing
 * early keeps a bad path from ever reaching the network or the disk).
 *
 * @example
 * ```ts
 * artifactPathSegments("model/model.onnx"); // ["model", "model.onnx"]
 * ```
 */
export function artifactPathSegments(path: string): string[] {
  const trimmed = path.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return [];
  const segs = trimmed.split("/");
  for (const s of segs) {
    // deno-lint-ignore no-control-regex
    if (s === "" || s === "." || s === ".." || s.includes("\\") || /[\x00-\x1f\x7f]/.test(s)) {
      throw new MlflowError(
        `artifact path ${JSON.stringify(path)}: expected relative segments without "", ".", ".."` +
          `, backslashes or control characters, found ${JSON.stringify(s)}`,
        { errorCode: "INVALID_PARAMETER_VALUE" },
      );
    }
  }
  return segs;
}

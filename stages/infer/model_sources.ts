/**
 * Where infer may read a model from. A registered model version names its own location, so
 * without a rule a version pointing at `s3://another-bucket/...` or `file:///etc/...` would make
 * infer read it with its own credentials. `s3://` and `file://` locations (direct sources, and
 * what `models:/` / `runs:/` resolve to) must lie under one of the allowed prefixes:
 * `infer.modelSources` when set, else the object store URL, the embedded MLflow store
 * (`mlflow.localDir`) and an explicit `infer.modelUri`. Locations served by the MLflow server
 * itself (`mlflow-artifacts:`, `http(s)://`) pass.
 *
 * @example
 * ```ts
 * assertAllowedModelSource("s3://models/det/3/model.onnx", ["s3://models"]); // ok
 * assertAllowedModelSource("file:///etc/passwd", ["s3://models"]); // throws
 * ```
 * @module
 */
import { pathToFileURL } from "node:url";
import { SluiceError } from "../../common/errors/mod.ts";

/** A model source outside the allowed prefixes. */
export class ModelSourceNotAllowedError extends SluiceError {
  constructor(uri: string, prefixes: readonly string[]) {
    super(
      "model_source_not_allowed",
      `model source ${uri}: expected a location under ${
        prefixes.length ? prefixes.join(", ") : "(no allowed prefix)"
      } (infer.modelSources), found one outside them`,
    );
    this.name = "ModelSourceNotAllowedError";
  }
}

/** `s3://` and `file://` URIs with `.`/`..` segments resolved and no trailing slash. */
function canonical(uri: string): string {
  if (!URL.canParse(uri)) return uri;
  const u = new URL(uri);
  if (u.protocol !== "s3:" && u.protocol !== "file:") return uri;
  const path = u.pathname.replace(/\/+$/, "");
  return `${u.protocol}//${u.host}${path}`;
}

/**
 * Throws {@link ModelSourceNotAllowedError} unless `uri` (an `s3://` or `file://` source) is one
 * of `prefixes` or below one of them; `models:/` and `runs:/` pass.
 *
 * @example
 * ```ts
 * assertAllowedModelSource(source.uri, defaultModelSourcePrefixes(config));
 * ```
 */
export function assertAllowedModelSource(uri: string, prefixes: readonly string[]): void {
  if (!/^(s3|file):/i.test(uri)) return;
  const target = canonical(uri);
  const ok = prefixes.some((p) => {
    const base = canonical(p);
    return target === base || target.startsWith(base + "/");
  });
  if (!ok) throw new ModelSourceNotAllowedError(uri, prefixes);
}

/**
 * The allowed prefixes for a configuration: `infer.modelSources` when set, else the object store
 * URL and the embedded MLflow store directory.
 *
 * @example
 * ```ts
 * defaultModelSourcePrefixes(config); // ["s3://data/sluice", "file:///srv/mlruns"]
 * ```
 */
export function defaultModelSourcePrefixes(config: {
  objectStore: { url: string };
  mlflow: { localDir: string };
  stage: { modelSources?: readonly string[]; modelUri?: string };
}): string[] {
  if (config.stage.modelSources) return [...config.stage.modelSources];
  const explicit = config.stage.modelUri;
  return [
    config.objectStore.url,
    pathToFileURL(config.mlflow.localDir).href,
    // An operator's explicit s3:// / file:// model is allowed by being configured.
    ...(explicit && /^(s3|file):/.test(explicit) ? [explicit] : []),
  ];
}

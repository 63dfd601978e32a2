/**
 * Which registry a model came from, for infer: the tracker's credential-free identity stamped
 * on the chosen model, so that version 1 of the embedded store and version 1 of an MLflow server
 * get their own queue, their own prediction rows and their own cached files.
 *
 * @example
 * ```ts
 * const source = withRegistry(await resolveModelSource(tracker, selection), tracker);
 * source.registry; // "file:///srv/mlruns"
 * cacheVersion(source, "1"); // "1_3fa2c1d0"
 * ```
 * @module
 */
import type { Tracker } from "../../common/mlflow/mod.ts";
import { registryIdentity, registryKey } from "../../common/mlflow/registry_identity.ts";
import type { ModelSource } from "./model_resolver.ts";

/**
 * `source` with the identity of `tracker`'s registry (unchanged when the tracker does not say
 * where it is).
 *
 * @example
 * ```ts
 * withRegistry({ ...source }, new FileTracker({ root: "/srv/mlruns" })).registry; // "file:///srv/mlruns"
 * ```
 */
export function withRegistry<T extends ModelSource>(source: T, tracker: Pick<Tracker, "uri">): T {
  return tracker.uri ? { ...source, registry: registryIdentity(tracker.uri) } : source;
}

/**
 * The model cache's directory name for `version`: `<version>_<registry key>` when the registry
 * is known, so two registries' version 1 never share cached files.
 *
 * @example
 * ```ts
 * cacheVersion({ registry: "http://mlflow:5000" }, "1"); // "1_<8 hex>"
 * cacheVersion({}, "1"); // "1"
 * ```
 */
export function cacheVersion(source: Pick<ModelSource, "registry">, version: string): string {
  return source.registry ? `${version}_${registryKey(source.registry)}` : version;
}

/**
 * MLflow tracking and registry for Sluice: one {@link Tracker} interface, two implementations,
 * picked by configuration. With no tracking URI (the default), runs and models go to an embedded
 * MLflow file store in a local directory; with `http(s)://…`, to an MLflow tracking server.
 *
 * @example
 * ```ts
 * import { openTracker } from "../common/mlflow/mod.ts";
 *
 * const tracker = openTracker({
 *   trackingUri: config.mlflow.trackingUri, // undefined → embedded file store
 *   localDir: config.mlflow.localDir,
 *   token: config.mlflow.token,
 * });
 * const champion = await tracker.getVersionByAlias("sluice-detector", "champion");
 * if (champion) await tracker.downloadModel(`models:/sluice-detector/${champion.version}`, dir);
 * await tracker.close();
 * ```
 * @module
 */
import type { Logger } from "../log/mod.ts";
import type { OpenOptions } from "../objectstore/mod.ts";
import { MlflowError } from "./errors.ts";
import { FileTracker } from "./file_tracker.ts";
import { fileUriToPath } from "./_local_artifacts.ts";
import { MlflowRestTracker } from "./rest_client.ts";
import type { Tracker } from "./tracker.ts";

export * from "./tracker.ts";
export * from "./errors.ts";
export { parseModelUri } from "./model_uri.ts";
export type { ParsedModelUri } from "./model_uri.ts";
export { FileTracker, type FileTrackerOptions } from "./file_tracker.ts";
export { MlflowRestTracker, type RestTrackerOptions } from "./rest_client.ts";

/** What {@link openTracker} needs (the `mlflow` section of the shared config fits). */
export interface OpenTrackerOptions {
  /** `http(s)://` server, `file:///dir`, or unset for the embedded file store in `localDir`. */
  trackingUri?: string;
  /** The embedded file store's directory (default `./mlruns`). */
  localDir?: string;
  token?: string;
  username?: string;
  password?: string;
  /** S3 settings for runs whose artifacts live on `s3://` (REST only). */
  s3?: OpenOptions["s3"];
  /** Retry and timeout overrides (REST only). */
  maxAttempts?: number;
  /** Seconds a failing call keeps being retried (default 120). */
  retryBudgetSeconds?: number;
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Opens the tracker the options call for: {@link MlflowRestTracker} for `http(s)://`,
 * {@link FileTracker} for `file://` or when no URI is set.
 */
export function openTracker(opts: OpenTrackerOptions = {}): Tracker {
  const uri = opts.trackingUri?.trim();
  if (!uri) return new FileTracker({ root: opts.localDir ?? "mlruns" });
  if (uri.startsWith("file:")) return new FileTracker({ root: fileUriToPath(uri) });
  if (uri.startsWith("http://") || uri.startsWith("https://")) {
    return new MlflowRestTracker({
      trackingUri: uri,
      token: opts.token,
      username: opts.username,
      password: opts.password,
      s3: opts.s3,
      maxAttempts: opts.maxAttempts,
      retryBudgetMs: opts.retryBudgetSeconds === undefined
        ? undefined
        : Math.round(opts.retryBudgetSeconds * 1000),
      timeoutMs: opts.timeoutMs,
      logger: opts.logger,
    });
  }
  throw new MlflowError(
    `MLflow tracking URI ${JSON.stringify(uri)}: expected http(s)://host[:port] or file:///dir`,
    { errorCode: "INVALID_PARAMETER_VALUE" },
  );
}

/**
 * Opens a tracker from MLflow's standard environment variables (`MLFLOW_TRACKING_URI`,
 * `MLFLOW_TRACKING_TOKEN`, `MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`), falling back
 * to the embedded file store in `localDir`.
 */
export function trackerFromEnv(localDir = "mlruns", logger?: Logger): Tracker {
  const env = (k: string) => Deno.env.get(k) || undefined;
  return openTracker({
    trackingUri: env("MLFLOW_TRACKING_URI"),
    token: env("MLFLOW_TRACKING_TOKEN"),
    username: env("MLFLOW_TRACKING_USERNAME"),
    password: env("MLFLOW_TRACKING_PASSWORD"),
    localDir,
    logger,
  });
}

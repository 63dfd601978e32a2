/**
 * Errors from the MLflow trackers. Both implementations throw {@link MlflowError} with MLflow's own
 * `error_code` (`RESOURCE_DOES_NOT_EXIST`, `INVALID_PARAMETER_VALUE`, …), so callers branch on the
 * same values whether they talk to a server or to the embedded file store.
 *
 * @example
 * ```ts
 * try {
 *   await tracker.getRun(id);
 * } catch (err) {
 *   if (err instanceof MlflowError && err.code === "not_found") return null;
 *   throw err;
 * }
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";

/** MLflow's error codes that this code base branches on (others pass through unchanged). */
export const ErrorCodes = {
  notFound: "RESOURCE_DOES_NOT_EXIST",
  alreadyExists: "RESOURCE_ALREADY_EXISTS",
  invalidParameter: "INVALID_PARAMETER_VALUE",
  invalidState: "INVALID_STATE",
  internal: "INTERNAL_ERROR",
  permissionDenied: "PERMISSION_DENIED",
  unauthenticated: "UNAUTHENTICATED",
  badRequest: "BAD_REQUEST",
} as const;

/** What {@link MlflowError} carries besides the message. */
export interface MlflowErrorDetails {
  /** MLflow's `error_code` (or `HTTP_<status>` when the server sent none, e.g. an HTML 405). */
  errorCode: string;
  /** HTTP status; absent for the file store and for network failures. */
  status?: number;
  /** `METHOD /path` of the failed request, when there was one. */
  request?: string;
  cause?: unknown;
}

/**
 * Maps MLflow's error code (and HTTP status) to Sluice's short reason code: `not_found`,
 * `already_exists`, `invalid_argument`, `unauthorized`, `forbidden`, `unavailable` or
 * `mlflow_error`.
 *
 * @example
 * ```ts
 * reasonFor("RESOURCE_DOES_NOT_EXIST", 404); // "not_found"
 * reasonFor("HTTP_503", 503);               // "unavailable"
 * ```
 */
export function reasonFor(errorCode: string, status?: number): string {
  switch (errorCode) {
    case ErrorCodes.notFound:
      return "not_found";
    case ErrorCodes.alreadyExists:
      return "already_exists";
    case ErrorCodes.invalidParameter:
    case ErrorCodes.badRequest:
    case ErrorCodes.invalidState:
      return "invalid_argument";
    case ErrorCodes.unauthenticated:
      return "unauthorized";
    case ErrorCodes.permissionDenied:
      return "forbidden";
  }
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 429 || (status !== undefined && status >= 500)) return "unavailable";
  if (status === undefined && errorCode === "NETWORK_ERROR") return "unavailable";
  return "mlflow_error";
}

/** A failed MLflow operation; `code` is the Sluice reason, `errorCode` MLflow's own. */
export class MlflowError extends SluiceError {
  readonly errorCode: string;
  readonly status?: number;
  readonly request?: string;
  constructor(message: string, details: MlflowErrorDetails) {
    super(reasonFor(details.errorCode, details.status), message, { cause: details.cause });
    this.name = "MlflowError";
    this.errorCode = details.errorCode;
    this.status = details.status;
    this.request = details.request;
  }
}

/** A run artifact (or an artifact URI) that does not exist. `code` is `not_found`. */
export class ArtifactNotFoundError extends MlflowError {
  readonly location: string;
  constructor(location: string, details: Omit<MlflowErrorDetails, "errorCode"> = {}) {
    super(`artifact ${JSON.stringify(location)} not found`, {
      ...details,
      errorCode: ErrorCodes.notFound,
    });
    this.name = "ArtifactNotFoundError";
    this.location = location;
  }
}

/** Whether `err` is an {@link MlflowError} meaning "does not exist". */
export function isNotFound(err: unknown): boolean {
  return err instanceof MlflowError && err.code === "not_found";
}

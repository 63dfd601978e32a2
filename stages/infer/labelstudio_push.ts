/**
 * Pushes pre-annotated tasks to a Label Studio server through its import API:
 * `POST <url>/api/projects/<id>/import` with the tasks as a JSON array, in batches of
 * `batchSize` (default 500), authenticated with a legacy token (`Authorization: Token`) or a
 * Personal Access Token (refresh flow, `Authorization: Bearer`; see `labelstudio_auth.ts`).
 * Transient failures (network, 429, 5xx) are retried with backoff (`Retry-After` honoured up to
 * 30 s); a 401 with a PAT refreshes the access token and retries once; 401, 403 and 404 fail
 * with a message that says what to fix; anything else fails at once with the server's answer.
 *
 * @example
 * ```ts
 * const push = labelStudioPusher({ url: "https://ls.example", token, projectId: 3 });
 * const { taskCount } = await push(tasks);
 * ```
 * @module
 */
import { messageOf, SluiceError } from "../../common/errors/mod.ts";
import type { LabelStudioTask } from "../../common/annotations/mod.ts";
import { exponentialDelayMs, sleep } from "../../common/timing/mod.ts";
import {
  labelStudioAuth,
  LabelStudioAuthError,
  type LabelStudioAuthKind,
} from "./labelstudio_auth.ts";

export interface LabelStudioPushOptions {
  /** Server base URL, e.g. `https://labelstudio.example.com`. */
  url: string;
  token: string;
  /** Token kind: `auto` (default; a JWT is a PAT), `token` (legacy) or `pat`. */
  auth?: LabelStudioAuthKind;
  projectId: number;
  /** Tasks per import request (default 500). */
  batchSize?: number;
  /** Attempts for transient failures (default 3). */
  maxAttempts?: number;
  /** First retry delay, doubled each time (default 200 ms). */
  baseDelayMs?: number;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** What the import answered. */
export interface PushResult {
  /** Tasks the server says it created (`task_count`), or the number sent when it does not say. */
  taskCount: number;
  /** Status of the last request. */
  status: number;
  /** Import requests made (one per batch). */
  batches: number;
}

/** The import was refused or the server could not be reached. */
export class LabelStudioPushError extends SluiceError {
  readonly status?: number;
  /** Tasks imported by earlier batches of the same push before this one failed. */
  readonly imported: number;
  constructor(message: string, status?: number, options?: ErrorOptions & { imported?: number }) {
    super("labelstudio_push_failed", message, options);
    this.name = "LabelStudioPushError";
    this.status = status;
    this.imported = options?.imported ?? 0;
  }
}

/** The error message for a refused import, with what to check for 401, 403 and 404. */
function refusal(
  status: number,
  text: string,
  renewed: boolean,
  authKind: string,
  opts: Pick<LabelStudioPushOptions, "projectId" | "url">,
  endpoint: URL,
): string {
  const answer = `${status}: ${text.slice(0, 300)}`;
  if (status === 401) {
    return authKind === "pat"
      ? `Label Studio refused the access token${
        renewed ? " even after a refresh" : ""
      } (${answer}): check labelStudioToken (a Personal Access Token) and that the organisation allows PATs`
      : `Label Studio refused the legacy token (${answer}): check labelStudioToken, or set labelStudioAuth pat for a Personal Access Token`;
  }
  if (status === 403) {
    return `Label Studio: the token's user may not import into project ${opts.projectId} (${answer}): add the user to the project or its workspace`;
  }
  if (status === 404) {
    return `Label Studio: project ${opts.projectId} not found at ${opts.url} (${answer}): check labelStudioProjectId and labelStudioUrl`;
  }
  return `Label Studio import ${endpoint}: expected 2xx, found ${answer}`;
}

/**
 * Builds a function that imports tasks into the configured project.
 *
 * @example
 * ```ts
 * await labelStudioPusher({ url, token, projectId: 1 })([{ data: { image: "s3://b/a.jpg" } }]);
 * ```
 */
export function labelStudioPusher(
  opts: LabelStudioPushOptions,
): (tasks: readonly LabelStudioTask[]) => Promise<PushResult> {
  const base = opts.url.replace(/\/*$/, "/");
  const endpoint = new URL(`api/projects/${opts.projectId}/import`, base);
  const doFetch = opts.fetch ?? fetch;
  const attempts = opts.maxAttempts ?? 3;
  const baseDelay = opts.baseDelayMs ?? 200;
  const batchSize = opts.batchSize ?? 500;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError(`batchSize: expected an integer ≥ 1, found ${batchSize}`);
  }
  const auth = labelStudioAuth({
    url: opts.url,
    token: opts.token,
    auth: opts.auth ?? "auto",
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    fetch: doFetch,
  });

  const importBatch = async (
    batch: readonly LabelStudioTask[],
    imported: number,
  ): Promise<{ taskCount: number; status: number }> => {
    let last: LabelStudioPushError | undefined;
    let renewed = false;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let res: Response;
      try {
        res = await doFetch(endpoint, {
          method: "POST",
          headers: {
            "authorization": await auth.header(),
            "content-type": "application/json",
            "accept": "application/json",
          },
          body: JSON.stringify(batch),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
        });
      } catch (err) {
        if (err instanceof LabelStudioAuthError) {
          throw new LabelStudioPushError(err.message, err.status, { cause: err, imported });
        }
        last = new LabelStudioPushError(
          `Label Studio import ${endpoint}: expected an answer, found ${messageOf(err)}`,
          undefined,
          { cause: err, imported },
        );
        if (attempt < attempts) {
          await sleep(
            exponentialDelayMs(attempt, { baseDelayMs: baseDelay, maxDelayMs: Infinity }),
          );
        }
        continue;
      }
      const text = await res.text();
      if (res.ok) {
        let taskCount = batch.length;
        try {
          const body = JSON.parse(text) as { task_count?: unknown };
          if (typeof body.task_count === "number") taskCount = body.task_count;
        } catch {
          // Some versions answer without a body; the status is what counts.
        }
        return { taskCount, status: res.status };
      }
      if (res.status === 401 && !renewed && auth.kind === "pat") {
        // Access tokens expire after minutes: refresh once and send the batch again.
        renewed = true;
        try {
          await auth.renew();
        } catch (err) {
          throw new LabelStudioPushError(messageOf(err), res.status, { cause: err, imported });
        }
        attempt--;
        continue;
      }
      last = new LabelStudioPushError(
        refusal(res.status, text, renewed, auth.kind, opts, endpoint),
        res.status,
        {
          imported,
        },
      );
      const transient = res.status === 429 || res.status >= 500;
      if (!transient) break;
      if (attempt < attempts) {
        const retryAfter = Number(res.headers.get("retry-after"));
        const wait = Number.isFinite(retryAfter) && retryAfter > 0
          ? Math.min(retryAfter * 1000, 30_000)
          : exponentialDelayMs(attempt, { baseDelayMs: baseDelay, maxDelayMs: Infinity });
        await sleep(wait);
      }
    }
    throw last!;
  };

  return async (tasks) => {
    let taskCount = 0;
    let status = 0;
    let batches = 0;
    for (let i = 0; i < tasks.length; i += batchSize) {
      const r = await importBatch(tasks.slice(i, i + batchSize), taskCount);
      taskCount += r.taskCount;
      status = r.status;
      batches++;
    }
    return { taskCount, status, batches };
  };
}

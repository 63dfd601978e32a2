/**
 * Pushes pre-annotated tasks to a Label Studio server through its import API:
 * `POST <url>/api/projects/<id>/import` with the tasks as a JSON array and
 * `Authorization: Token <token>`. Transient failures (network, 429, 5xx) are retried with
 * backoff; anything else fails at once with the server's answer in the message.
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

export interface LabelStudioPushOptions {
  /** Server base URL, e.g. `https://labelstudio.example.com`. */
  url: string;
  token: string;
  projectId: number;
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
  status: number;
}

/** The import was refused or the server could not be reached. */
export class LabelStudioPushError extends SluiceError {
  readonly status?: number;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super("labelstudio_push_failed", message, options);
    this.name = "LabelStudioPushError";
    this.status = status;
  }
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
  const endpoint = new URL(`api/projects/${opts.projectId}/import`, opts.url.replace(/\/*$/, "/"));
  const doFetch = opts.fetch ?? fetch;
  const attempts = opts.maxAttempts ?? 3;
  const baseDelay = opts.baseDelayMs ?? 200;
  return async (tasks) => {
    let last: LabelStudioPushError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let res: Response;
      try {
        res = await doFetch(endpoint, {
          method: "POST",
          headers: {
            "authorization": `Token ${opts.token}`,
            "content-type": "application/json",
            "accept": "application/json",
          },
          body: JSON.stringify(tasks),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
        });
      } catch (err) {
        last = new LabelStudioPushError(
          `Label Studio import ${endpoint}: expected an answer, found ${messageOf(err)}`,
          undefined,
          { cause: err },
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
        let taskCount = tasks.length;
        try {
          const body = JSON.parse(text) as { task_count?: unknown };
          if (typeof body.task_count === "number") taskCount = body.task_count;
        } catch {
          // Some versions answer without a body; the status is what counts.
        }
        return { taskCount, status: res.status };
      }
      last = new LabelStudioPushError(
        `Label Studio import ${endpoint}: expected 2xx, found ${res.status}: ${text.slice(0, 300)}`,
        res.status,
      );
      const transient = res.status === 429 || res.status >= 500;
      if (!transient) break;
      if (attempt < attempts) {
        await sleep(exponentialDelayMs(attempt, { baseDelayMs: baseDelay, maxDelayMs: Infinity }));
      }
    }
    throw last!;
  };
}

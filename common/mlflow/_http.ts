/**
 * The HTTP layer of the REST tracker: authentication, timeouts, retries with backoff, and the
 * mapping of failures to {@link MlflowError}.
 *
 * Retried, until the retry budget (`retryBudgetMs`, seconds of wall time from the first attempt)
 * is spent: network errors, timeouts, 429 and 5xx (honouring `Retry-After`), and a response body
 * that broke off. Never retried: other 4xx, which MLflow uses for every validation and not-found
 * answer, and TLS/protocol mismatches (`https://` against a plain-HTTP server), which fail at once.
 * A request marked `idempotent: false` (a create) is sent again only when the server cannot have
 * seen it (connection refused, 429); any other failure throws `OUTCOME_UNKNOWN`, for the caller to
 * look the object up before creating it again. Request bodies are built afresh for each attempt,
 * so a retried upload re-reads its file from the start. Error messages carry the underlying cause
 * (`Connection refused`, not `fetch failed`).
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { MlflowError } from "./errors.ts";
import { backoffDelayMs, sleep } from "../timing/mod.ts";
import { classifyNetworkError, describeNetworkError } from "./_network_error.ts";
import { probeTls } from "./_tls_probe.ts";

/** `errorCode` of a non-idempotent request whose outcome is unknown (it may have been applied). */
export const OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN";
/** `errorCode` of a TLS or HTTP protocol mismatch (never retried). */
export const PROTOCOL_MISMATCH = "PROTOCOL_MISMATCH";

/** How the transport behaves. */
export interface TransportOptions {
  /** Base URL of the tracking server, without a trailing slash. */
  baseUrl: string;
  /** Full `Authorization` header value, if any. */
  authorization?: string;
  /** Cap on attempts per request; unset = as many as the retry budget allows. */
  maxAttempts?: number;
  /** Wall time from a request's first attempt after which no retry starts. */
  retryBudgetMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  timeoutMs: number;
  logger: Logger;
}

/** Query parameters; arrays become repeated keys, undefined values are left out. */
export type Query = Record<string, string | number | boolean | string[] | undefined>;

/** One request. `body` is a factory so each attempt gets a fresh body (streams are single-use). */
export interface HttpRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path below the base URL, already percent-encoded, starting with `/`. */
  path: string;
  query?: Query;
  json?: unknown;
  body?: () => Promise<BodyInit | null>;
  contentType?: string;
  timeoutMs?: number;
  /**
   * False for a call that must not be applied twice (runs/create, model-versions/create): it is
   * re-sent only when the server cannot have seen it; otherwise `OUTCOME_UNKNOWN` is thrown.
   * Default true.
   */
  idempotent?: boolean;
  /**
   * Decides, for an error response, whether it means "does not exist" and must not be retried
   * (the artifact proxy answers 500 for a missing file). Returns the error to throw, or undefined.
   */
  classify?: (status: number, errorCode: string, message: string) => MlflowError | undefined;
}

interface ErrorBody {
  errorCode: string;
  message: string;
}

/** Reads an MLflow error body (`{"error_code", "message"}`) or summarises an HTML/text one. */
async function readErrorBody(res: Response): Promise<ErrorBody> {
  const text = await res.text().catch(() => "");
  try {
    const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    if (parsed && typeof parsed === "object" && typeof parsed.error_code === "string") {
      return {
        errorCode: parsed.error_code,
        message: typeof parsed.message === "string" ? parsed.message : text,
      };
    }
  } catch {
    // not JSON: an HTML error page from the web framework or a proxy
  }
  const summary = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300);
  return { errorCode: `HTTP_${res.status}`, message: summary || res.statusText };
}

function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get("retry-after");
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Serialises a query; arrays repeat the key (`stages=A&stages=B`), as MLflow expects. */
export function encodeQuery(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined) continue;
    if (Array.isArray(v)) { for (const item of v) params.append(k, item); }
    else params.append(k, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** Sends requests with retries; one per tracker. */
export class HttpTransport {
  readonly #opts: TransportOptions;
  readonly #client: Deno.HttpClient;
  /** Set once a TLS handshake with an https:// server succeeded. */
  #tlsChecked = false;

  constructor(opts: TransportOptions) {
    this.#opts = opts;
    this.#client = Deno.createHttpClient({});
  }

  /** The full URL of a path (for messages). */
  url(path: string, query?: Query): string {
    return `${this.#opts.baseUrl}${path}${encodeQuery(query)}`;
  }

  /**
   * Sends a request and returns the successful (2xx) response, whose body the caller must consume
   * or cancel. Throws {@link MlflowError} for error statuses and exhausted retries.
   */
  async send(req: HttpRequest): Promise<Response> {
    return (await this.#sendTimed(req, Date.now(), 1)).res;
  }

  /**
   * For https:// servers, one TLS handshake with a short deadline before the first request: a
   * plain-HTTP server would otherwise leave each attempt waiting for its full timeout.
   */
  async #checkTls(label: string): Promise<void> {
    if (this.#tlsChecked || !this.#opts.baseUrl.startsWith("https:")) return;
    const { problem, handshook } = await probeTls(
      this.#opts.baseUrl,
      Math.min(10_000, this.#opts.timeoutMs),
    );
    if (problem) {
      throw new MlflowError(
        `${label}: TLS/protocol mismatch talking to ${this.#opts.baseUrl} (not retried; ` +
          `does the URI's scheme, http:// or https://, match the server?): ${problem}`,
        { errorCode: PROTOCOL_MISMATCH, request: label },
      );
    }
    this.#tlsChecked = handshook;
  }

  /** Whether another attempt may start after `attempt` attempts begun at `startedAt`. */
  mayRetry(attempt: number, startedAt: number): boolean {
    return this.#mayRetry(attempt, startedAt);
  }

  #mayRetry(attempt: number, startedAt: number): boolean {
    const { maxAttempts, retryBudgetMs } = this.#opts;
    if (maxAttempts !== undefined && attempt >= maxAttempts) return false;
    return Date.now() - startedAt < retryBudgetMs;
  }

  /** Sleeps before the next attempt, never past the end of the retry budget. */
  async #pause(attempt: number, startedAt: number, hint?: number): Promise<number> {
    const { baseDelayMs, maxDelayMs, retryBudgetMs } = this.#opts;
    const left = Math.max(0, startedAt + retryBudgetMs - Date.now());
    const delay = Math.min(
      maxDelayMs,
      left,
      hint ?? this.#delay(attempt, baseDelayMs, maxDelayMs),
    );
    await sleep(delay);
    return delay;
  }

  #spent(attempt: number, startedAt: number): string {
    return `after ${attempt} attempt(s) in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
  }

  async #sendTimed(
    req: HttpRequest,
    startedAt: number,
    firstAttempt: number,
  ): Promise<{ res: Response; attempt: number }> {
    const { logger } = this.#opts;
    const label = `${req.method} ${req.path}`;
    const url = this.url(req.path, req.query);
    const idempotent = req.idempotent !== false;
    await this.#checkTls(label);
    for (let attempt = firstAttempt;; attempt++) {
      const headers = new Headers();
      if (this.#opts.authorization) headers.set("authorization", this.#opts.authorization);
      let body: BodyInit | null = null;
      if (req.json !== undefined) {
        headers.set("content-type", "application/json");
        body = JSON.stringify(req.json);
      } else if (req.body) {
        headers.set("content-type", req.contentType ?? "application/octet-stream");
        body = await req.body();
      }
      let res: Response;
      try {
        res = await fetch(url, {
          method: req.method,
          headers,
          body,
          client: this.#client,
          signal: AbortSignal.timeout(req.timeoutMs ?? this.#opts.timeoutMs),
        });
      } catch (err) {
        if (body instanceof ReadableStream) await body.cancel().catch(() => {});
        const kind = classifyNetworkError(err);
        const reason = describeNetworkError(err);
        if (kind === "protocol") {
          throw new MlflowError(
            `${label}: TLS/protocol mismatch talking to ${this.#opts.baseUrl} (not retried; ` +
              `does the URI's scheme, http:// or https://, match the server?): ${reason}`,
            { errorCode: PROTOCOL_MISMATCH, request: label, cause: err },
          );
        }
        if (!idempotent && kind !== "refused") {
          throw new MlflowError(
            `${label}: outcome unknown (the server may have applied it): ${reason}`,
            { errorCode: OUTCOME_UNKNOWN, request: label, cause: err },
          );
        }
        if (!this.#mayRetry(attempt, startedAt)) {
          throw new MlflowError(
            `${label}: no answer from ${this.#opts.baseUrl} ${
              this.#spent(attempt, startedAt)
            }: ${reason}`,
            { errorCode: "NETWORK_ERROR", request: label, cause: err },
          );
        }
        const delay = await this.#pause(attempt, startedAt);
        logger.warn("mlflow request failed, retrying", {
          request: label,
          attempt,
          delayMs: delay,
          error: reason,
        });
        continue;
      }
      if (res.ok) return { res, attempt };
      const { errorCode, message } = await readErrorBody(res);
      const classified = req.classify?.(res.status, errorCode, message);
      if (classified) throw classified;
      const transient = res.status === 429 || res.status >= 500;
      if (transient && !idempotent && res.status !== 429) {
        throw new MlflowError(
          `${label}: outcome unknown (the server may have applied it): ${res.status} ${errorCode}: ${message}`,
          { errorCode: OUTCOME_UNKNOWN, status: res.status, request: label },
        );
      }
      if (!transient || !this.#mayRetry(attempt, startedAt)) {
        const tries = transient ? ` ${this.#spent(attempt, startedAt)}` : "";
        throw new MlflowError(`${label}: ${res.status} ${errorCode}${tries}: ${message}`, {
          errorCode,
          status: res.status,
          request: label,
        });
      }
      const delay = await this.#pause(attempt, startedAt, retryAfterMs(res));
      logger.warn("mlflow request failed, retrying", {
        request: label,
        status: res.status,
        errorCode,
        attempt,
        delayMs: delay,
      });
    }
  }

  /** Sends a request and returns the parsed JSON body (`{}` for an empty body). */
  async json(req: HttpRequest): Promise<unknown> {
    const startedAt = Date.now();
    let res: Response;
    let text: string;
    for (let attempt = 1;; attempt++) {
      const sent = await this.#sendTimed(req, startedAt, attempt);
      res = sent.res;
      attempt = sent.attempt;
      try {
        text = await res.text();
        break;
      } catch (err) {
        // The answer broke off mid-body.
        const label = `${req.method} ${req.path}`;
        const reason = describeNetworkError(err);
        if (req.idempotent === false) {
          throw new MlflowError(
            `${label}: outcome unknown (the answer broke off): ${reason}`,
            { errorCode: OUTCOME_UNKNOWN, status: res.status, request: label, cause: err },
          );
        }
        if (!this.#mayRetry(attempt, startedAt)) {
          throw new MlflowError(
            `${label}: the answer broke off ${this.#spent(attempt, startedAt)}: ${reason}`,
            { errorCode: "NETWORK_ERROR", request: label, cause: err },
          );
        }
        await this.#pause(attempt, startedAt);
      }
    }
    if (text.trim() === "") return {};
    try {
      return JSON.parse(text);
    } catch {
      // Python's json module writes bare NaN/Infinity; MLflow's protobuf path does not, but a
      // plugin or proxy might. Quote them rather than fail.
      try {
        return JSON.parse(text.replace(/(?<=[:,\[]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, '"$1"'));
      } catch (err) {
        throw new MlflowError(
          `${req.method} ${req.path}: expected a JSON body, found ${
            JSON.stringify(text.slice(0, 200))
          }`,
          {
            errorCode: "BAD_RESPONSE",
            status: res.status,
            request: `${req.method} ${req.path}`,
            cause: err,
          },
        );
      }
    }
  }

  #delay(attempt: number, base: number, max: number): number {
    // Full jitter: uniform in [0, min(max, base * 2^(attempt-1))).
    return backoffDelayMs(attempt, { baseDelayMs: base, maxDelayMs: max });
  }

  /** Closes pooled connections. */
  close(): void {
    this.#client.close();
  }
}

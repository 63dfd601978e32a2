/**
 * The HTTP layer of the REST tracker: authentication, timeouts, retries with backoff, and the
 * mapping of failures to {@link MlflowError}.
 *
 * Retried: network errors, timeouts, 429 and 5xx (honouring `Retry-After`). Never retried: other
 * 4xx, which MLflow uses for every validation and not-found answer. Request bodies are built
 * afresh for each attempt, so a retried upload re-reads its file from the start.
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { MlflowError } from "./errors.ts";
import { redactText } from "../redaction/redact_text.ts";
import { backoffDelayMs, sleep } from "../timing/mod.ts";

/** How the transport behaves. */
export interface TransportOptions {
  /** Base URL of the tracking server, without a trailing slash. */
  baseUrl: string;
  /** Full `Authorization` header value, if any. */
  authorization?: string;
  maxAttempts: number;
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
    const { maxAttempts, baseDelayMs, maxDelayMs, logger } = this.#opts;
    const label = `${req.method} ${req.path}`;
    const url = this.url(req.path, req.query);
    for (let attempt = 1;; attempt++) {
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
        if (attempt >= maxAttempts) {
          throw new MlflowError(
            `${label}: no answer from ${
              redactText(this.#opts.baseUrl)
            } after ${attempt} attempt(s): ` +
              (err instanceof Error ? err.message : String(err)),
            { errorCode: "NETWORK_ERROR", request: label, cause: err },
          );
        }
        const delay = this.#delay(attempt, baseDelayMs, maxDelayMs);
        logger.warn("mlflow request failed, retrying", {
          request: label,
          attempt,
          delayMs: delay,
          error: redactText(err instanceof Error ? err.message : String(err)),
        });
        await sleep(delay);
        continue;
      }
      if (res.ok) return res;
      const { errorCode, message } = await readErrorBody(res);
      const classified = req.classify?.(res.status, errorCode, message);
      if (classified) throw classified;
      const transient = res.status === 429 || res.status >= 500;
      if (!transient || attempt >= maxAttempts) {
        const tries = transient ? ` after ${attempt} attempt(s)` : "";
        throw new MlflowError(`${label}: ${res.status} ${errorCode}${tries}: ${message}`, {
          errorCode,
          status: res.status,
          request: label,
        });
      }
      const delay = Math.min(
        maxDelayMs,
        retryAfterMs(res) ?? this.#delay(attempt, baseDelayMs, maxDelayMs),
      );
      logger.warn("mlflow request failed, retrying", {
        request: label,
        status: res.status,
        errorCode,
        attempt,
        delayMs: delay,
      });
      await sleep(delay);
    }
  }

  /** Sends a request and returns the parsed JSON body (`{}` for an empty body). */
  async json(req: HttpRequest): Promise<unknown> {
    const res = await this.send(req);
    const text = await res.text();
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

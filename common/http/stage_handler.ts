/**
 * The HTTP face of a stage, as a `deno serve`-compatible `{ fetch }`: `GET /healthz`,
 * `GET /readyz`, `GET /metrics`, `GET|HEAD /` (RustFS probes webhook targets with `HEAD /`), and
 * the stage's own routes. Unknown paths answer a JSON 404, known paths with the wrong method a
 * JSON 405 with `Allow`.
 *
 * `/readyz` is cheap: while ready, the stage's `ready()` runs at most once per `readyCacheMs`
 * however many clients ask, and concurrent requests always share one check. Every text and JSON answer goes through
 * `redactText`, so no credential reaches an unauthenticated endpoint.
 *
 * @example
 * ```ts
 * // stages/ingest/mod.ts — run with `deno serve stages/ingest/mod.ts`
 * export default createStageHandler({
 *   stage: "ingest",
 *   metrics: createStageMetrics("ingest"),
 *   ready: async () => (await manifest.ping()) ? true : "manifest unreachable",
 *   routes: { "POST /events": (req) => onEvent(req) },
 * });
 * ```
 * @module
 */
import { createLogger, type Logger } from "../log/mod.ts";
import { messageOf, reasonOf, SluiceError } from "../errors/mod.ts";
import type { StageMetrics } from "../metrics/mod.ts";
import { redactText } from "../redaction/redact_text.ts";

/** Handles one request of a route. */
export type RouteHandler = (req: Request) => Promise<Response>;

export interface StageHandlerOptions {
  stage: string;
  metrics: StageMetrics;
  /** Readiness: `true`, or the reason the stage is not ready (answered with 503). */
  ready?: () => Promise<true | string>;
  /** How long `/readyz` waits for `ready()` before answering 503 (default 5000 ms). */
  readyTimeoutMs?: number;
  /**
   * How long a positive readiness answer is reused before `ready()` runs again (default 2000
   * ms); a negative one is shared only by the requests that arrive while it is being found.
   */
  readyCacheMs?: number;
  /**
   * True once the stage is closed: `/readyz` then answers 503 at once, whatever the cache holds
   * (a cached "ready" must not outlive the stage).
   */
  closed?: () => boolean;
  /**
   * Extra routes keyed `"METHOD /path"` (only that method; GET also answers HEAD) or `"/path"`
   * (every method: the handler checks).
   */
  routes?: Record<string, RouteHandler>;
  /** Where handler failures are logged (default: a logger for the stage). */
  log?: Logger;
}

/** What `deno serve` and {@link serveStage} run. */
export interface StageHandler {
  readonly stage: string;
  fetch(req: Request): Promise<Response>;
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const ANY = "*";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** Waits for `ready()` at most `ms`, turning throws and timeouts into reasons. */
async function readiness(ready: () => Promise<true | string>, ms: number): Promise<true | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`readiness check timed out after ${ms} ms`), ms);
  });
  try {
    const r = await Promise.race([
      ready().then(
        (v) => v === true ? true as const : String(v),
        (err) => `readiness check failed: ${messageOf(err)}`,
      ),
      timeout,
    ]);
    return r;
  } finally {
    clearTimeout(timer);
  }
}

/** The same answer with credentials taken out of a text or JSON body. */
async function redacted(res: Response): Promise<Response> {
  const type = res.headers.get("content-type") ?? "";
  if (res.body === null || !/^(?:text\/|application\/(?:[\w.+-]*\+)?json)/i.test(type)) {
    return res;
  }
  const body = await res.text();
  const clean = redactText(body);
  if (clean === body) {
    return new Response(body, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  }
  const headers = new Headers(res.headers);
  headers.delete("content-length");
  return new Response(clean, { status: res.status, statusText: res.statusText, headers });
}

/**
 * Builds a stage's HTTP handler.
 *
 * @example
 * ```ts
 * const handler = createStageHandler({ stage: "infer", metrics: createStageMetrics("infer") });
 * const res = await handler.fetch(new Request("http://x/healthz")); // 200 "ok"
 * ```
 */
export function createStageHandler(opts: StageHandlerOptions): StageHandler {
  const log = opts.log ?? createLogger({ stage: opts.stage });
  const readyTimeoutMs = opts.readyTimeoutMs ?? 5000;
  const readyCacheMs = opts.readyCacheMs ?? 2000;
  // A positive answer is reused for readyCacheMs; any answer is shared while it is being found.
  let readyCache:
    | { at: number; answer: Promise<true | string>; settled?: true | string }
    | undefined;
  const cachedReadiness = (ready: () => Promise<true | string>): Promise<true | string> => {
    const c = readyCache;
    const fresh = c && (c.settled === undefined ||
      (c.settled === true && Date.now() - c.at < readyCacheMs));
    if (fresh) return c.answer;
    const entry: NonNullable<typeof readyCache> = {
      at: Date.now(),
      answer: readiness(ready, readyTimeoutMs),
    };
    void entry.answer.then((r) => {
      entry.settled = r;
      entry.at = Date.now();
    });
    readyCache = entry;
    return entry.answer;
  };
  const table = new Map<string, Map<string, RouteHandler>>();
  const add = (method: string, path: string, handler: RouteHandler) => {
    const methods = table.get(path) ?? new Map<string, RouteHandler>();
    if (methods.has(method) || methods.has(ANY) || (method === ANY && methods.size > 0)) {
      throw new SluiceError(
        "invalid_route",
        `route "${method === ANY ? "" : method + " "}${path}": expected a method and path not ` +
          "already routed (built in: GET /, GET /healthz, GET /readyz, GET /metrics)",
      );
    }
    methods.set(method, handler);
    table.set(path, methods);
  };

  add("GET", "/healthz", () => Promise.resolve(text(200, "ok\n")));
  add("GET", "/readyz", async () => {
    if (opts.closed?.()) return text(503, "not ready: stage closed\n");
    if (!opts.ready) return text(200, "ready\n");
    const r = await cachedReadiness(opts.ready);
    return r === true ? text(200, "ready\n") : text(503, `not ready: ${r}\n`);
  });
  add(
    "GET",
    "/metrics",
    async () =>
      text(200, await opts.metrics.metrics(), { "content-type": opts.metrics.contentType }),
  );
  add("GET", "/", () => Promise.resolve(text(200, `sluice ${opts.stage}\n`)));

  for (const [key, handler] of Object.entries(opts.routes ?? {})) {
    const m = /^(?:([A-Z]+) +)?(\/\S*)$/.exec(key);
    if (!m || (m[1] !== undefined && !METHODS.has(m[1]))) {
      throw new SluiceError(
        "invalid_route",
        `route ${JSON.stringify(key)}: expected "/path" or "METHOD /path" with METHOD one of ${
          [...METHODS].join(", ")
        }`,
      );
    }
    add(m[1] ?? ANY, m[2], handler);
  }

  const dispatch = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    const methods = table.get(path);
    if (!methods) return json(404, { error: "not_found", path });
    const handler = methods.get(req.method) ?? methods.get(ANY) ??
      (req.method === "HEAD" ? methods.get("GET") : undefined);
    if (!handler) {
      const allowed = [...methods.keys()];
      if (allowed.includes("GET")) allowed.push("HEAD");
      return json(405, { error: "method_not_allowed", method: req.method, path, allowed }, {
        allow: allowed.join(", "),
      });
    }
    try {
      return await handler(req);
    } catch (err) {
      log.error("request failed", { method: req.method, path, reason: reasonOf(err), err });
      return json(500, { error: reasonOf(err), message: messageOf(err) });
    }
  };

  return {
    stage: opts.stage,
    async fetch(req: Request): Promise<Response> {
      const res = await redacted(await dispatch(req));
      if (req.method !== "HEAD" || res.body === null) return res;
      // HEAD answers carry the GET headers without the body.
      await res.body.cancel();
      return new Response(null, { status: res.status, headers: res.headers });
    },
  };
}

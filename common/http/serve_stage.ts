/**
 * Runs a stage handler on a bounded HTTP/1.1 server (header, body, idle and write timeouts, a
 * connection limit, accept errors survived: see `_bounded_http_server.ts`), logging the bound
 * address (useful with port 0, where the system picks a free port).
 *
 * Note that in the configuration `http.port: 0` means "no HTTP server": check it before calling
 * this; here port 0 means "any free port" (what tests want).
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const server = serveStage(handler, { hostname: "127.0.0.1", port: 0, signal: ac.signal });
 * console.log(server.addr.port);
 * ac.abort();
 * await server.finished;
 * ```
 * @module
 */
import { createLogger, type Logger } from "../log/mod.ts";
import { SluiceError } from "../errors/mod.ts";
import type { StageHandler } from "./stage_handler.ts";
import { type HttpLimits, serveBounded } from "./_bounded_http_server.ts";

export type { HttpLimits };

export interface ServeStageOptions {
  hostname: string;
  /** 0 picks a free port; see `server.addr.port` or the "listening" log line. */
  port: number;
  /** Aborting stops accepting connections and lets in-flight requests finish. */
  signal?: AbortSignal;
  /** Where "listening" goes (default: a logger for the handler's stage). */
  log?: Logger;
  /** Timeouts and connection limits (defaults: 10 s headers, 30 s body, 5 s idle, 128). */
  limits?: HttpLimits;
}

/**
 * Serves `handler` and returns the running server.
 *
 * @example
 * ```ts
 * const server = serveStage(createStageHandler({ stage, metrics }), { hostname: "0.0.0.0", port: 9101 });
 * ```
 */
export function serveStage(
  handler: StageHandler,
  opts: ServeStageOptions,
): Deno.HttpServer<Deno.NetAddr> {
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new SluiceError(
      "invalid_port",
      `HTTP port: expected an integer 0-65535, found ${opts.port}`,
    );
  }
  const log = opts.log ?? createLogger({ stage: handler.stage });
  return serveBounded((req) => handler.fetch(req), {
    ...opts.limits,
    hostname: opts.hostname,
    port: opts.port,
    signal: opts.signal,
    log,
    onListen({ hostname, port }) {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      log.info("listening", { url: `http://${host}:${port}/`, hostname, port });
    },
    onError(err) {
      log.error("request failed", { err });
      return new Response(JSON.stringify({ error: "internal" }) + "\n", {
        status: 500,
        headers: { "content-type": "application/json; charset=utf-8" },
      });
    },
  });
}

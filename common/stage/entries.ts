/**
 * The two ways a stage process starts. The CLI (`main.ts`) runs a mode with the stage's HTTP
 * server up while it works ({@link withStageServer}); `deno serve` imports `mod.ts`, whose
 * default export ({@link serveEntry}) starts the stage's long-running work on the first request
 * and answers every request with the stage's handler.
 *
 * @example
 * ```ts
 * // stages/normalize/mod.ts
 * export default serveEntry(async () => {
 *   const config = await loadConfig({ stage: "normalize", stageSchema });
 *   const stage = await createNormalizeStage(config);
 *   return { handler: stage.handler, log: stage.log, run: (signal) => stage.run({ signal }),
 *     close: () => stage.close() };
 * });
 * ```
 * @module
 */
import type { SharedConfig } from "../config/schema.ts";
import { messageOf } from "../errors/mod.ts";
import { serveStage, type StageHandler } from "../http/mod.ts";
import type { Logger } from "../log/mod.ts";
import { shutdownSignal } from "../worker/mod.ts";

/** A stage as `deno serve` runs it. */
export interface ServedStage {
  handler: StageHandler;
  log: Logger;
  /** The long-running work; resolves with a summary to log when it stops. */
  run(signal: AbortSignal): Promise<object>;
  close(): Promise<void>;
}

/** A `deno serve`-compatible module default. */
export interface ServeEntry {
  fetch(req: Request): Promise<Response>;
}

/**
 * The `deno serve` entry: the first request calls `start`, runs the stage until SIGTERM/SIGINT
 * (then closes it and exits 0, or 1 when the work stopped by itself), and every request goes to
 * the stage's handler. While `start` fails, requests get 503 with the reason and the next one
 * tries again.
 *
 * @example
 * ```ts
 * const entry = serveEntry(startFromEnvironment);
 * export default entry;
 * ```
 */
export function serveEntry(start: () => Promise<ServedStage>): ServeEntry {
  let started: Promise<StageHandler> | undefined;
  const startOnce = async (): Promise<StageHandler> => {
    const stage = await start();
    const shutdown = shutdownSignal();
    stage.run(shutdown.signal)
      .then((summary) => stage.log.info("worker finished", summarize(summary)))
      .catch((err) => stage.log.error("worker stopped with an error", { error: messageOf(err) }))
      .finally(async () => {
        await stage.close().catch((err) =>
          stage.log.error("closing the stage failed", { error: messageOf(err) })
        );
        shutdown.dispose();
        // deno serve keeps serving on its own: the worker is what this process is for.
        Deno.exit(shutdown.signal.aborted ? 0 : 1);
      });
    return stage.handler;
  };
  return {
    async fetch(req: Request): Promise<Response> {
      started ??= startOnce();
      let handler: StageHandler;
      try {
        handler = await started;
      } catch (err) {
        // Let the next request (a readiness probe, usually) try again.
        started = undefined;
        return Response.json({ error: "not_started", message: messageOf(err) }, { status: 503 });
      }
      return await handler.fetch(req);
    },
  };
}

/** A summary as a log line's fields: lists are given by their length. */
function summarize(summary: object): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(summary).map(([k, v]) => [k, Array.isArray(v) ? v.length : v]),
  );
}

/**
 * Runs `work` with the stage's HTTP server up (unless `http.port` is 0, which means no server),
 * then stops the server and waits for it to finish, whatever `work` did.
 *
 * @example
 * ```ts
 * const summary = await withStageServer(stage.handler, config.http, log, () => stage.run());
 * ```
 */
export async function withStageServer<T>(
  handler: StageHandler,
  http: SharedConfig["http"],
  log: Logger,
  work: (server: Deno.HttpServer<Deno.NetAddr> | null) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const server = http.port !== 0
    ? serveStage(handler, { hostname: http.hostname, port: http.port, signal: abort.signal, log })
    : null;
  try {
    return await work(server);
  } finally {
    abort.abort();
    await server?.finished;
  }
}

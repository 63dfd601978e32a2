/**
 * Stage 1, ingest: raw bucket → verified, deduplicated, content-addressed dataset images (plus
 * annotations and augmented copies) → `normalize` queue.
 *
 * The default export is a `deno serve`-compatible `{ fetch }` (health, readiness, metrics,
 * `HEAD /`, and the `POST /events` webhook), configured from the environment on its first
 * request: `deno serve -A stages/ingest/mod.ts`. Workers run with `main.ts`; in-process users
 * call {@link createIngestStage} or {@link runIngestOnce}.
 *
 * @example
 * ```ts
 * import { runIngestOnce } from "./stages/ingest/mod.ts";
 * const summary = await runIngestOnce(config, { manifest });
 * ```
 * @module
 */
import { loadConfig } from "../../common/config/mod.ts";
import { messageOf } from "../../common/errors/mod.ts";
import type { StageHandler } from "../../common/http/mod.ts";
import { IngestSettingsSchema } from "./config.ts";
import { openIngestDeps } from "./run_once.ts";
import { createIngestLogger, createIngestStage } from "./stage.ts";
import { refuseOtherHosts } from "../../common/http/serve_entry_guard.ts";

export * from "./config.ts";
export * from "./stage.ts";
export * from "./run_once.ts";
export type { AnnotationImportSummary } from "./annotations_import.ts";
export type { AnnotationExport, ExportOptions } from "./annotations_export.ts";
export type { DiscoverSummary } from "./discover.ts";
export type { ApplySummary, EventOrigin } from "./apply_events.ts";
export type { ParsedNotification, SourceEvent } from "./s3_event.ts";
export type { ReceiveSummary } from "./sqs_consumer.ts";

let handler: Promise<StageHandler> | null = null;

async function start(): Promise<StageHandler> {
  const config = await loadConfig({ stage: "ingest", stageSchema: IngestSettingsSchema });
  const log = createIngestLogger(config);
  const deps = await openIngestDeps(config, {}, log);
  return createIngestStage(config, deps).handler;
}

export default {
  /** Serves the stage's HTTP routes, opening stores from the configuration on first use. */
  async fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const refused = refuseOtherHosts(info); // deno serve binds 0.0.0.0: honour SLUICE_HTTP_HOSTNAME
    if (refused) return refused;
    handler ??= start();
    try {
      return await (await handler).fetch(req);
    } catch (err) {
      // A failed start is retried by the next request rather than cached forever.
      handler = null;
      return new Response(`ingest stage unavailable: ${messageOf(err)}\n`, {
        status: 503,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
  },
};

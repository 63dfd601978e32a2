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
import { serveEntry } from "../../common/stage/mod.ts";
import { IngestSettingsSchema } from "./config.ts";
import { openIngestStage } from "./stage.ts";

export * from "./config.ts";
export * from "./stage.ts";
export * from "./run_once.ts";
export type { AnnotationImportSummary } from "./annotations_import.ts";
export type { AnnotationExport, ExportOptions } from "./annotations_export.ts";
export type { DiscoverSummary } from "./discover.ts";
export type { ApplySummary, EventOrigin } from "./apply_events.ts";
export type { ParsedNotification, SourceEvent } from "./s3_event.ts";
export type { ReceiveSummary } from "./sqs_consumer.ts";

/**
 * `deno serve` entry: the first request opens the stores from the configuration; the process
 * serves the stage's routes (no worker: workers run with `main.ts`) until SIGTERM/SIGINT.
 */
export default serveEntry(async () => {
  const config = await loadConfig({ stage: "ingest", stageSchema: IngestSettingsSchema });
  const stage = await openIngestStage(config, {});
  return {
    handler: stage.handler,
    log: stage.log,
    run: (signal) =>
      new Promise<object>((resolve) =>
        signal.addEventListener("abort", () => resolve({}), { once: true })
      ),
    close: () => stage.close(),
  };
});

/**
 * A stage's HTTP endpoints (health, readiness, metrics, webhook routes) and the server around them.
 *
 * @example
 * ```ts
 * import { createStageHandler, serveStage } from "../common/http/mod.ts";
 * const handler = createStageHandler({ stage: "ingest", metrics });
 * if (config.http.port !== 0) serveStage(handler, { ...config.http, signal });
 * ```
 * @module
 */
export * from "./stage_handler.ts";
export * from "./serve_stage.ts";

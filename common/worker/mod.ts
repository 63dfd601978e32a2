/**
 * The worker loop shared by every stage: claim → process → complete/fail, with lease renewal,
 * bounded concurrency, graceful shutdown, drain mode and progress reporting.
 *
 * @example
 * ```ts
 * import { runWorker, shutdownSignal } from "../../common/worker/mod.ts";
 * const shutdown = shutdownSignal();
 * const summary = await runWorker({ manifest, stage: "ingest", owner, log, signal: shutdown.signal, process });
 * shutdown.dispose();
 * ```
 * @module
 */
export * from "./progress.ts";
export * from "./retry_policy.ts";
export * from "./run_worker.ts";
export * from "./shutdown_signal.ts";

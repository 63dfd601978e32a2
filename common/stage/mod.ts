/**
 * The stage kit: what every `stages/<stage>/stage.ts` is built from, so that each reads the
 * same three steps: open resources ({@link openResources}), define `process(item)`, run the
 * queue ({@link runQueue}). Also the logger rule ({@link createStageLogger}), one closing policy
 * ({@link Closers}), the one-run-at-a-time guard ({@link RunGuard}), and the CLI and
 * `deno serve` entries ({@link withStageServer}, {@link serveEntry}).
 *
 * @example
 * ```ts
 * const log = createStageLogger("normalize", config.log);
 * const res = await openResources(config, deps, { stage: "normalize", log, metrics });
 * const process = async (claim: Claim) => ({});
 * const summary = await runQueue(
 *   { name: "normalize", manifest: res.manifest, log, metrics, worker: config.worker },
 *   { queue: "normalize", once: true, process },
 * );
 * await res.close();
 * ```
 * @module
 */
export * from "./closers.ts";
export * from "./entries.ts";
export * from "./mode_argument.ts";
export * from "./open_resources.ts";
export * from "./run_guard.ts";
export * from "./run_queue.ts";
export * from "./stage_logger.ts";

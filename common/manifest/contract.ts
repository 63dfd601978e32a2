/**
 * Everything of the manifest except its opener: rows, the {@link ManifestStore} interface,
 * errors and image ids. Adapters import this (not `mod.ts`), so no adapter imports its opener.
 *
 * @example
 * ```ts
 * import { LeaseLostError, type ManifestStore } from "./contract.ts";
 * ```
 * @module
 */
export * from "./manifest_store.ts";
export * from "./errors.ts";
export * from "./image_id.ts";
export * from "./reviews.ts";

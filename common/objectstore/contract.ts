/**
 * Everything of the object store except its opener: the {@link ObjectStore} interface, errors,
 * key validation and the S3 settings. Adapters import this (not `mod.ts`).
 *
 * @example
 * ```ts
 * import { type ObjectStore, validateKey } from "./contract.ts";
 * ```
 * @module
 */
export * from "./object_store.ts";
export * from "./errors.ts";
export * from "./keys.ts";
export * from "./s3_settings.ts";

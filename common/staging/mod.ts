/**
 * Staging on local NVMe: per-item lease directories, atomic publish with a free-space guard,
 * start-up sweeps, and the mount check that tells NVMe from the root disk.
 *
 * @example
 * ```ts
 * import { openStaging } from "../staging/mod.ts";
 * const staging = await openStaging({ stage: "ingest", workerId, log, requireNvme: true });
 * await staging.sweep();
 * await using lease = await staging.lease(claim.itemId);
 * const { path } = await lease.publish(key, await store.get(key));
 * ```
 * @module
 */
export * from "./errors.ts";
export * from "./mount_info.ts";
export { safeFileName } from "./safe_name.ts";
export * from "./staging_lease.ts";
export * from "./staging_root.ts";

/**
 * The data migration of issue 12 item 9: rows recorded before the manifest kept store-relative
 * keys hold absolute URIs of the dataset store (`file:///srv/.sluice/objects/images/…`). Each
 * stage rewrites those of its configured store to keys when it opens, so that the data then
 * works from any mount point and from S3 after a sync. Idempotent, and done once per store
 * (a manifest checkpoint records it). Rows of another store are left as they are.
 *
 * @example
 * ```ts
 * const n = await relativizeRecordedUris(manifest, store); // rows rewritten (0 once done)
 * ```
 * @module
 */
import type { ObjectStore } from "../objectstore/mod.ts";
import type { ManifestStore } from "./manifest_store.ts";

/**
 * Rewrites the manifest's absolute URIs of `store` to keys; returns the rows rewritten.
 *
 * @example
 * ```ts
 * await relativizeRecordedUris(manifest, await openObjectStore("file:///srv/.sluice/objects"));
 * ```
 */
export async function relativizeRecordedUris(
  manifest: Pick<ManifestStore, "relativizeObjectUris" | "getCheckpoint" | "setCheckpoint">,
  store: Pick<ObjectStore, "uriFor">,
): Promise<number> {
  // uriFor of a one-character key reveals the store's URI base, whatever the adapter.
  const base = store.uriFor("x").slice(0, -1);
  // Done once per store base: a full scan at every worker start would cost at scale. New rows
  // are written as keys, so nothing absolute of this store appears after the checkpoint.
  const name = relativizedCheckpointName(base);
  if (await manifest.getCheckpoint(name) !== null) return 0;
  const n = await manifest.relativizeObjectUris(base);
  await manifest.setCheckpoint(name, JSON.stringify({ rewritten: n, at: Date.now() }));
  return n;
}

/**
 * The manifest checkpoint that says a store's URIs were rewritten to keys.
 *
 * @example
 * ```ts
 * relativizedCheckpointName("s3://ds/data/"); // "manifest:relative-keys|s3://ds/data/"
 * ```
 */
export function relativizedCheckpointName(base: string): string {
  return `manifest:relative-keys|${base}`;
}

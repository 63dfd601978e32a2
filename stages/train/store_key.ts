/**
 * Turns an object URI recorded in the manifest (`s3://bucket/prefix/key`, `file:///dir/key`)
 * back into a key of the store it lives in, so the launcher reads it through the store's
 * interface (retries, credentials, validation) rather than by URI.
 *
 * @example
 * ```ts
 * const store = await openObjectStore("s3://ds/data");
 * keyOfUri(store, "s3://ds/data/variants/320/ab/abcd.jpg"); // "variants/320/ab/abcd.jpg"
 * keyOfUri(store, "s3://other/x.jpg"); // null
 * ```
 * @module
 */
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { keyOfRecorded } from "../../common/objectstore/recorded_key.ts";

/** The key of `uri` in `store`, or null when the URI points elsewhere. */
export function keyOfUri(store: Pick<ObjectStore, "uriFor">, uri: string): string | null {
  // A store-relative key (what the manifest records) or an absolute URI of this store.
  return keyOfRecorded(store, uri);
}

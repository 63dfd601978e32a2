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
import { type ObjectStore, validateKey } from "../../common/objectstore/mod.ts";

/** The key of `uri` in `store`, or null when the URI points elsewhere. */
export function keyOfUri(store: Pick<ObjectStore, "uriFor">, uri: string): string | null {
  // uriFor of a one-character key reveals the store's URI prefix, whatever the adapter.
  const probe = store.uriFor("x");
  const base = probe.slice(0, -1);
  if (!uri.startsWith(base)) return null;
  let key = uri.slice(base.length);
  if (base.startsWith("file:")) {
    try {
      key = decodeURIComponent(key);
    } catch {
      return null;
    }
  }
  try {
    return validateKey(key);
  } catch {
    return null;
  }
}

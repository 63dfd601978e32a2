/**
 * What the manifest records for an object of the configured store: its key relative to the
 * store (`images/ab/ab12….jpg`), not the store's absolute URI, so that the same manifest and
 * objects work from any mount point and from S3 after a sync (issue 12 item 9). Rows written
 * before that hold absolute URIs (`file:///…`, `s3://…`); readers accept both.
 *
 * @example
 * ```ts
 * keyOfRecorded(store, "images/ab/x.jpg"); // "images/ab/x.jpg"
 * keyOfRecorded(store, store.uriFor("images/ab/x.jpg")); // "images/ab/x.jpg" (an older row)
 * uriOfRecorded(store, "images/ab/x.jpg"); // store.uriFor("images/ab/x.jpg")
 * ```
 * @module
 */
import type { ObjectStore } from "./object_store.ts";
import { validateKey } from "./keys.ts";

const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/**
 * Whether a recorded value is a store-relative key (no URI scheme).
 *
 * @example
 * ```ts
 * isRecordedKey("images/ab/x.jpg"); // true
 * isRecordedKey("s3://ds/images/ab/x.jpg"); // false
 * ```
 */
export function isRecordedKey(recorded: string): boolean {
  return !SCHEME.test(recorded);
}

/**
 * The store key of a recorded value: a relative key as is (validated), an absolute URI of this
 * store stripped of the store's base; null for an invalid key or a URI of another store.
 *
 * @example
 * ```ts
 * keyOfRecorded(store, "s3://other/x.jpg"); // null
 * ```
 */
export function keyOfRecorded(store: Pick<ObjectStore, "uriFor">, recorded: string): string | null {
  if (isRecordedKey(recorded)) {
    try {
      return validateKey(recorded);
    } catch {
      return null;
    }
  }
  // uriFor of a one-character key reveals the store's URI base, whatever the adapter.
  const base = store.uriFor("x").slice(0, -1);
  if (!recorded.startsWith(base) || recorded.length === base.length) return null;
  const raw = recorded.slice(base.length);
  const candidates = [raw];
  try {
    candidates.unshift(decodeURIComponent(raw));
  } catch {
    // Not percent-encoded text: only the raw form can match.
  }
  for (const key of candidates) {
    try {
      if (store.uriFor(key) === recorded) return key;
    } catch {
      // Not a valid key in this form.
    }
  }
  return null;
}

/**
 * The absolute URI of a recorded value in the configured store (for exports, Label Studio
 * tasks and logs): a relative key resolved with `store.uriFor`, an absolute URI as recorded.
 *
 * @example
 * ```ts
 * uriOfRecorded(s3Store, "images/ab/x.jpg"); // "s3://ds/data/images/ab/x.jpg"
 * ```
 */
export function uriOfRecorded(store: Pick<ObjectStore, "uriFor">, recorded: string): string {
  return isRecordedKey(recorded) ? store.uriFor(recorded) : recorded;
}

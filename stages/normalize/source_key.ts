/**
 * Maps an image's `datasetUri` (what ingest recorded, `store.uriFor(key)`) back to a key of the
 * dataset store, refusing URIs that belong to another store.
 *
 * @example
 * ```ts
 * keyForUri(store, store.uriFor("images/ab/ab12.jpg")); // "images/ab/ab12.jpg"
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";

/** The URI does not name an object of the store the stage reads. */
export class ForeignUriError extends SluiceError {
  constructor(uri: string, storeUrl: string) {
    super(
      "foreign_uri",
      `dataset URI ${
        JSON.stringify(uri)
      }: expected an object of ${storeUrl}, found another location`,
    );
    this.name = "ForeignUriError";
  }
}

/**
 * The key under which `store` keeps the object `uri`. Round-trips through `store.uriFor`, so any
 * encoding the adapter applies (file URLs percent-encode) is undone exactly.
 *
 * @example
 * ```ts
 * keyForUri(fsStore, "file:///data/objects/images/ab/x%20y.jpg"); // "images/ab/x y.jpg"
 * ```
 */
export function keyForUri(store: ObjectStore, uri: string): string {
  // uriFor("x") ends with the key as given; what precedes it is the store's base.
  const probe = store.uriFor("x");
  const base = probe.slice(0, -1);
  if (!uri.startsWith(base) || uri.length === base.length) {
    throw new ForeignUriError(uri, store.url);
  }
  const raw = uri.slice(base.length);
  const candidates = [raw];
  if (uri.startsWith("file:")) {
    try {
      candidates.unshift(decodeURIComponent(raw));
    } catch {
      // Not percent-encoded text: only the raw form can match.
    }
  }
  for (const key of candidates) {
    try {
      if (store.uriFor(key) === uri) return key;
    } catch {
      // An invalid key is not this object's key; try the next form.
    }
  }
  throw new ForeignUriError(uri, store.url);
}

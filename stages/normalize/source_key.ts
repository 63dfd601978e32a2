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
import { keyOfRecorded } from "../../common/objectstore/recorded_key.ts";

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
  // A store-relative key (what the manifest records) or an absolute URI of this store.
  const key = keyOfRecorded(store, uri);
  if (key === null) throw new ForeignUriError(uri, store.url);
  return key;
}

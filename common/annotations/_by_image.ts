/**
 * Lookup in "annotations by image id" inputs, which callers pass either as a Map or as a plain
 * object (JSON-friendly).
 * @module
 */

/** A Map or a plain record keyed by image id. */
export type ByImage<V> = ReadonlyMap<string, V> | Readonly<Record<string, V>>;

/** The value for one image id, or undefined. */
export function lookupByImage<V>(byImage: ByImage<V>, id: string): V | undefined {
  if (byImage instanceof Map) return (byImage as ReadonlyMap<string, V>).get(id);
  const rec = byImage as Readonly<Record<string, V>>;
  return Object.hasOwn(rec, id) ? rec[id] : undefined;
}

/**
 * Where ingest reads from: the source store's bucket and key prefix (so that bucket-wide event
 * keys can be mapped to store-relative keys), the key filter (prefix + suffixes), and the
 * source URI that names an object in the manifest.
 *
 * @example
 * ```ts
 * const where = sourceLocation({ sourceUrl: "s3://raw/cams", prefix: "", suffixes: [".jpg"] });
 * where.relativeKey("cams/a.jpg"); // "a.jpg"
 * where.accepts("a.jpg"); // true
 * ```
 * @module
 */
import { type ObjectStore, validateKey } from "../../common/objectstore/mod.ts";
import { parseS3Url } from "../../common/objectstore/s3.ts";

export interface SourceLocationOptions {
  /** The source store's URL (`s3://bucket/prefix`, `file:///dir`). */
  sourceUrl: string;
  /** Ingest only keys under this, relative to the store. */
  prefix: string;
  /** Accepted suffixes, lower-case with the dot (`.jpg`). */
  suffixes: readonly string[];
  /** Bucket events must name; default: the bucket of an `s3://` source. */
  eventBucket?: string;
}

export interface SourceLocation {
  /** Bucket that events must name (null: events cannot name this source). */
  readonly bucket: string | null;
  /** Key prefix of the store inside its bucket (`""` or ending in `/`). */
  readonly storePrefix: string;
  /** Ingest's own prefix, relative to the store. */
  readonly prefix: string;
  /** The store-relative key of a bucket key, or null when it lies outside the store. */
  relativeKey(bucketKey: string): string | null;
  /** Whether a store-relative key is under `prefix` and has an accepted suffix. */
  accepts(key: string): boolean;
  /** Whether a store-relative key is under `prefix` (suffix aside). */
  inPrefix(key: string): boolean;
}

/**
 * Builds the {@link SourceLocation} of a configured source.
 *
 * @example
 * ```ts
 * sourceLocation({ sourceUrl: "s3://raw", prefix: "in/", suffixes: [".png"] }).bucket; // "raw"
 * ```
 */
export function sourceLocation(opts: SourceLocationOptions): SourceLocation {
  let bucket: string | null = opts.eventBucket ?? null;
  let storePrefix = "";
  if (opts.sourceUrl.startsWith("s3://")) {
    const parsed = parseS3Url(opts.sourceUrl);
    bucket = opts.eventBucket ?? parsed.bucket;
    storePrefix = parsed.prefix;
  }
  const suffixes = opts.suffixes.map((s) => s.toLowerCase());
  const inPrefix = (key: string) => key.startsWith(opts.prefix);
  return {
    bucket,
    storePrefix,
    prefix: opts.prefix,
    relativeKey: (bucketKey) =>
      bucketKey.startsWith(storePrefix) && bucketKey.length > storePrefix.length
        ? bucketKey.slice(storePrefix.length)
        : null,
    inPrefix,
    accepts: (key) => {
      const lower = key.toLowerCase();
      return inPrefix(key) && suffixes.some((s) => lower.endsWith(s));
    },
  };
}

/**
 * The URI that identifies a source object in the manifest: the store's own URI for valid keys,
 * and for keys the store refuses (`../x.jpg`, `/abs.jpg`) the store URL and the raw key joined,
 * so that a refused key still gets a row on which its failure is recorded.
 *
 * @example
 * ```ts
 * sourceUriFor(store, "a.jpg"); // "s3://raw/a.jpg"
 * sourceUriFor(store, "../x.jpg"); // "s3://raw/../x.jpg" (never opened; recorded as invalid_key)
 * ```
 */
export function sourceUriFor(store: ObjectStore, key: string): string {
  try {
    validateKey(key);
    return store.uriFor(key);
  } catch {
    return `${store.url}/${key}`;
  }
}

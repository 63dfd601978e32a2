/**
 * The object store's contract: {@link ObjectStore}, which the `fs` and `s3` adapters implement,
 * and the shapes it takes and returns. Keys are relative to the store's root.
 *
 * @example
 * ```ts
 * const info: ObjectInfo | null = await store.head("images/ab/abcd.jpg");
 * ```
 * @module
 */
/** What a store knows about one object. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** Opaque change tag: S3's ETag without quotes, or a content-derived tag for files. */
  etag: string;
  lastModified: Date;
  contentType?: string;
  metadata?: Record<string, string>;
  versionId?: string;
}

export interface PutOptions {
  contentType?: string;
  /** User metadata; keys lower-case ASCII. */
  metadata?: Record<string, string>;
}

export interface ListOptions {
  /** Only keys starting with this (relative to the store root). */
  prefix?: string;
  /** Resume strictly after this key (lexicographic, as S3 StartAfter). */
  startAfter?: string;
  /** Page size for the underlying listing calls (S3 MaxKeys). */
  pageSize?: number;
}

/** The storage interface every adapter implements; see `contract_test.ts`. */
export interface ObjectStore {
  /** The URL this store was opened with, normalised (`file:///dir`, `s3://bucket/prefix`). */
  readonly url: string;
  /** The absolute URI of a key (`file:///dir/key`, `s3://bucket/prefix/key`). */
  uriFor(key: string): string;
  /** Streams an object. Throws `ObjectNotFoundError` when absent. */
  get(key: string): Promise<ReadableStream<Uint8Array>>;
  /** Reads an object fully. Throws `ObjectNotFoundError` when absent. */
  getBytes(key: string): Promise<Uint8Array>;
  /** Downloads into a local file (written atomically). Returns the object info. */
  download(key: string, path: string): Promise<ObjectInfo>;
  /** Writes an object atomically: readers see the old object or the whole new one. */
  put(
    key: string,
    body: Uint8Array | ReadableStream<Uint8Array>,
    opts?: PutOptions,
  ): Promise<ObjectInfo>;
  /** Uploads a local file (multipart when large on S3). */
  putFile(key: string, path: string, opts?: PutOptions): Promise<ObjectInfo>;
  /** Object info, or null when absent. */
  head(key: string): Promise<ObjectInfo | null>;
  /** All objects under a prefix in key order, fetched page by page. */
  list(opts?: ListOptions): AsyncIterable<ObjectInfo>;
  /** Server-side copy within this store. */
  copy(fromKey: string, toKey: string): Promise<ObjectInfo>;
  /** Deletes; absent objects are not an error. */
  delete(key: string): Promise<void>;
  /** Releases clients and sockets. */
  close(): Promise<void>;
}

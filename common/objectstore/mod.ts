/**
 * Object storage behind one interface, chosen by URL:
 * `file:///abs/dir` (the embedded default, see `fs.ts`) or `s3://bucket/prefix` (see `s3.ts`).
 *
 * Keys are always relative to the store's root (the directory, or the bucket + prefix) and are
 * validated by {@link validateKey} before any adapter touches them.
 *
 * @example
 * ```ts
 * const store = await openObjectStore("file:///tmp/sluice-objects");
 * await store.put("images/ab/abcd.jpg", bytes, { contentType: "image/jpeg" });
 * for await (const o of store.list({ prefix: "images/" })) console.log(o.key, o.size);
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";

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

/** A key was refused before touching storage (escape, NUL, too long, empty). */
export class InvalidKeyError extends SluiceError {
  readonly key: string;
  constructor(key: string, problem: string) {
    super("invalid_key", `object key ${JSON.stringify(key.slice(0, 200))}: ${problem}`);
    this.name = "InvalidKeyError";
    this.key = key;
  }
}

/** The object does not exist. */
export class ObjectNotFoundError extends SluiceError {
  readonly key: string;
  constructor(url: string, key: string) {
    super("not_found", `object ${JSON.stringify(key)} not found in ${url}`);
    this.name = "ObjectNotFoundError";
    this.key = key;
  }
}

/** Longest key accepted, in UTF-8 bytes (S3's own limit). */
export const MAX_KEY_BYTES = 1024;

/**
 * Checks that a key is a safe relative path and returns it unchanged.
 * Refused: empty, longer than 1024 UTF-8 bytes, NUL or other control characters, a leading `/`
 * or `\`, a Windows drive letter, any `.` or `..` segment, empty segments (`a//b`), backslashes.
 *
 * @example
 * ```ts
 * validateKey("images/ab/x.jpg"); // "images/ab/x.jpg"
 * validateKey("../etc/passwd");   // throws InvalidKeyError
 * ```
 */
export function validateKey(key: string): string {
  if (typeof key !== "string" || key.length === 0) {
    throw new InvalidKeyError(String(key), "expected a non-empty key, found an empty one");
  }
  if (new TextEncoder().encode(key).length > MAX_KEY_BYTES) {
    throw new InvalidKeyError(key, `expected at most ${MAX_KEY_BYTES} UTF-8 bytes`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(key)) {
    throw new InvalidKeyError(key, "expected no NUL or control characters");
  }
  if (key.includes("\\")) throw new InvalidKeyError(key, "expected no backslashes");
  if (key.startsWith("/")) {
    throw new InvalidKeyError(key, "expected a relative key, found an absolute path");
  }
  if (/^[A-Za-z]:/.test(key)) {
    throw new InvalidKeyError(key, "expected a relative key, found a drive letter");
  }
  for (const seg of key.split("/")) {
    if (seg === "..") throw new InvalidKeyError(key, 'expected no ".." segment');
    if (seg === ".") throw new InvalidKeyError(key, 'expected no "." segment');
  }
  if (/\/\//.test(key)) throw new InvalidKeyError(key, "expected no empty path segment");
  return key;
}

/** Options shared by adapters; S3 settings come from `common/config`. */
export interface OpenOptions {
  s3?: {
    endpoint?: string;
    region?: string;
    forcePathStyle?: boolean;
    accessKeyId?: string;
    secretAccessKey?: string;
    /** Multipart part size in bytes (default 8 MiB). */
    partSize?: number;
    /** Attempts for retryable errors (5xx, SlowDown, resets). */
    maxAttempts?: number;
  };
}

/**
 * Opens a store by URL: `file:///dir`, a plain absolute or relative directory path, or
 * `s3://bucket[/prefix]`.
 */
export async function openObjectStore(url: string, opts: OpenOptions = {}): Promise<ObjectStore> {
  if (url.startsWith("s3://")) {
    const { S3ObjectStore } = await import("./s3.ts");
    return S3ObjectStore.fromUrl(url, opts.s3 ?? {});
  }
  const { FsObjectStore } = await import("./fs.ts");
  return FsObjectStore.fromUrl(url);
}

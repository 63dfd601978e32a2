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
// Type-only: the adapter module imports this one at run time, not the other way round.
import type { S3StoreOptions } from "./s3.ts";
import type { S3Settings } from "./s3_settings.ts";

export type { S3StoreOptions };
export * from "./s3_settings.ts";

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

/**
 * S3 settings for {@link openObjectStore}: the shared {@link S3Settings} (the configuration's
 * `s3` section passed as it is: `partSizeMb`, `sessionToken`, ...) plus the adapter's own knobs
 * (`S3StoreOptions`, sizes in bytes).
 */
export type S3OpenOptions = S3Settings & S3StoreOptions;

/** Options shared by adapters; S3 settings come from `common/config`. */
export interface OpenOptions {
  /**
   * S3 connection settings, including `sessionToken` (temporary credentials) and the retry and
   * timeout knobs of `S3StoreOptions`. The config's `s3` section is accepted unchanged:
   * `openObjectStore(url, { s3: config.s3 })`.
   */
  s3?: S3OpenOptions;
}

const MiB = 1024 * 1024;

/**
 * Turns {@link S3OpenOptions} into the adapter's options: `partSizeMb` becomes `partSize` in
 * bytes (both at once must agree). Throws SluiceError("invalid_options") naming the field.
 *
 * @example
 * ```ts
 * s3StoreOptions({ region: "eu-west-1", partSizeMb: 16 }); // { region: "eu-west-1", partSize: 16777216 }
 * ```
 */
export function s3StoreOptions(opts: S3OpenOptions = {}): S3StoreOptions {
  const { partSizeMb, ...rest } = opts;
  if (partSizeMb === undefined) return rest;
  if (typeof partSizeMb !== "number" || !Number.isInteger(partSizeMb) || partSizeMb < 5) {
    throw new SluiceError(
      "invalid_options",
      `S3 store options: partSizeMb: expected an integer >= 5 (MiB), found ${
        JSON.stringify(partSizeMb)
      }`,
    );
  }
  const partSize = partSizeMb * MiB;
  if (rest.partSize !== undefined && rest.partSize !== partSize) {
    throw new SluiceError(
      "invalid_options",
      `S3 store options: expected partSize (${rest.partSize} bytes) and partSizeMb ` +
        `(${partSizeMb} MiB = ${partSize} bytes) to agree, or only one of them`,
    );
  }
  return { ...rest, partSize };
}

/**
 * Opens a store by URL: `file:///dir`, a plain absolute or relative directory path, or
 * `s3://bucket[/prefix]`.
 *
 * @example
 * ```ts
 * const store = await openObjectStore("s3://datasets/sluice", { s3: config.s3 });
 * ```
 */
export async function openObjectStore(url: string, opts: OpenOptions = {}): Promise<ObjectStore> {
  if (url.startsWith("s3://")) {
    const { S3ObjectStore } = await import("./s3.ts");
    return S3ObjectStore.fromUrl(url, s3StoreOptions(opts.s3));
  }
  const { FsObjectStore } = await import("./fs.ts");
  return FsObjectStore.fromUrl(url);
}

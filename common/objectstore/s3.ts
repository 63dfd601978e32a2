/**
 * The S3 object store (AWS S3, RustFS, MinIO, emulators): `s3://bucket/prefix`, keys relative
 * to the prefix. Large bodies go through lib-storage `Upload` (multipart, `partSize` parts);
 * every request retries transient failures with the policy in `_retry.ts`.
 *
 * Limits: copy uses CopyObject, so objects over 5 GiB cannot be copied; a `put`'s
 * `lastModified` is the client's clock at completion (S3 does not return it on PUT).
 *
 * @example
 * ```ts
 * const store = S3ObjectStore.fromUrl("s3://datasets/sluice", {
 *   endpoint: "http://127.0.0.1:9000",
 *   accessKeyId: "key",
 *   secretAccessKey: "secret",
 * });
 * await store.put("images/ab/abcd.jpg", bytes, { contentType: "image/jpeg" });
 * await store.close();
 * ```
 * @module
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import { cancelUnread, writeFileAtomic } from "./_atomic_file.ts";
import { resumableBody } from "./_resumable_body.ts";
import { parseListOptions, parsePutOptions } from "./_options.ts";
import {
  DEFAULT_RETRY_POLICY,
  isRetryableError,
  type RetryPolicy,
  type SdkRetryStrategy,
  sdkRetryStrategy,
  withRetry,
} from "./_retry.ts";
import {
  type ListOptions,
  type ObjectInfo,
  ObjectNotFoundError,
  type ObjectStore,
  type PutOptions,
  validateKey,
} from "./contract.ts";

/** Connection settings shared by every AWS client (S3, SQS) in Sluice. */
export interface AwsConnectionOptions {
  /** Custom endpoint (`http://127.0.0.1:9000`); unset means AWS itself. */
  endpoint?: string;
  /** Default: `AWS_REGION`, else `us-east-1`. */
  region?: string;
  /** Explicit credentials; both unset means the SDK default provider chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Temporary credentials' token; only with `accessKeyId` and `secretAccessKey`. */
  sessionToken?: string;
  /** Tries per request, including the first (default 5). */
  maxAttempts?: number;
  /** Backoff cap of the first retry (default 100 ms); doubles per retry. */
  retryBaseDelayMs?: number;
  /** Longest single backoff (default 5 s). */
  retryMaxDelayMs?: number;
  /** Give up connecting after this long (default 10 s); retried like a reset. */
  connectTimeoutMs?: number;
  /** Give up on a socket silent this long (default 60 s; above SQS's 20 s long poll). */
  idleTimeoutMs?: number;
}

/** Options of {@link S3ObjectStore.fromUrl}. */
export interface S3StoreOptions extends AwsConnectionOptions {
  /** Path-style addressing (`endpoint/bucket/key`); default true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Multipart part size in bytes (default 8 MiB, at least 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once by one multipart upload (default 4); memory ≈ queueSize × partSize. */
  queueSize?: number;
}

const MiB = 1024 * 1024;

const connectionSchema = z.strictObject({
  endpoint: z.url({ protocol: /^https?$/ }).optional(),
  region: z.string().min(1).optional(),
  accessKeyId: z.string().min(1).optional(),
  secretAccessKey: z.string().min(1).optional(),
  sessionToken: z.string().min(1).optional(),
  maxAttempts: z.number().int().min(1).max(20).optional(),
  retryBaseDelayMs: z.number().min(0).max(60_000).optional(),
  retryMaxDelayMs: z.number().min(0).max(600_000).optional(),
  connectTimeoutMs: z.number().int().min(1).optional(),
  idleTimeoutMs: z.number().int().min(1).optional(),
});

const storeSchema = connectionSchema.extend({
  forcePathStyle: z.boolean().optional(),
  partSize: z.number().int().min(5 * MiB).max(5 * 1024 * MiB).optional(),
  queueSize: z.number().int().min(1).max(64).optional(),
});

function parseOr<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const detail = r.error.issues.map((i) => `${i.path.join(".") || "(options)"}: ${i.message}`);
    throw new SluiceError("invalid_options", `${what}: ${detail.join("; ")}`);
  }
  return r.data;
}

/** What `awsClientOptions` returns: fields every AWS SDK v3 client constructor accepts. */
export interface AwsClientOptions {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  retryStrategy: SdkRetryStrategy;
  maxAttempts: number;
  /** Options for the SDK's Node HTTP handler: a stalled socket fails instead of hanging. */
  requestHandler: { connectionTimeout: number; socketTimeout: number };
}

/**
 * Client settings for any AWS SDK v3 client (SQS, S3, ...): endpoint, region, credentials
 * (explicit, or the SDK default chain when none are given), and the Sluice retry policy.
 *
 * @example
 * ```ts
 * const sqs = new SQSClient(awsClientOptions({ endpoint: "http://127.0.0.1:4566" }));
 * ```
 */
export function awsClientOptions(opts: AwsConnectionOptions = {}): AwsClientOptions {
  const o = parseOr(connectionSchema, opts, "AWS client options");
  if ((o.accessKeyId === undefined) !== (o.secretAccessKey === undefined)) {
    throw new SluiceError(
      "invalid_options",
      "AWS client options: expected both accessKeyId and secretAccessKey or neither, found one",
    );
  }
  if (o.sessionToken !== undefined && o.accessKeyId === undefined) {
    // The default provider chain brings its own token (AWS_SESSION_TOKEN, SSO, IMDS); a token
    // without the keys it belongs to would be dropped without a word.
    throw new SluiceError(
      "invalid_options",
      "AWS client options: expected accessKeyId and secretAccessKey with sessionToken, found " +
        "only sessionToken",
    );
  }
  const policy = retryPolicyOf(o);
  return {
    region: o.region ?? (Deno.env.get("AWS_REGION") || "us-east-1"),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.accessKeyId && o.secretAccessKey
      ? {
        credentials: {
          accessKeyId: o.accessKeyId,
          secretAccessKey: o.secretAccessKey,
          ...(o.sessionToken ? { sessionToken: o.sessionToken } : {}),
        },
      }
      : {}),
    retryStrategy: sdkRetryStrategy(policy),
    maxAttempts: policy.maxAttempts,
    requestHandler: {
      connectionTimeout: o.connectTimeoutMs ?? 10_000,
      socketTimeout: o.idleTimeoutMs ?? 60_000,
    },
  };
}

/** What `s3ClientOptions` returns: `awsClientOptions` plus S3-only settings. */
export interface S3ClientOptions extends AwsClientOptions {
  forcePathStyle: boolean;
  requestChecksumCalculation: "WHEN_REQUIRED";
  responseChecksumValidation: "WHEN_REQUIRED";
}

/**
 * S3 client settings: `awsClientOptions` plus path-style addressing (default on with a
 * custom endpoint) and checksums only where required (emulators and older servers reject
 * the SDK's default flexible checksums).
 *
 * @example
 * ```ts
 * const s3 = new S3Client(s3ClientOptions({ endpoint: "http://127.0.0.1:9000" }));
 * ```
 */
export function s3ClientOptions(
  opts: AwsConnectionOptions & { forcePathStyle?: boolean } = {},
): S3ClientOptions {
  const { forcePathStyle, ...conn } = opts;
  if (forcePathStyle !== undefined && typeof forcePathStyle !== "boolean") {
    throw new SluiceError(
      "invalid_options",
      "S3 client options: forcePathStyle: expected a boolean",
    );
  }
  const base = awsClientOptions(conn);
  return {
    ...base,
    forcePathStyle: forcePathStyle ?? base.endpoint !== undefined,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  };
}

function retryPolicyOf(o: AwsConnectionOptions): RetryPolicy {
  return {
    maxAttempts: o.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts,
    baseDelayMs: o.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
    maxDelayMs: o.retryMaxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
  };
}

/**
 * Splits `s3://bucket/prefix` into bucket and prefix (`""` or ending in `/`).
 *
 * @example
 * ```ts
 * parseS3Url("s3://data/sluice/v1"); // { bucket: "data", prefix: "sluice/v1/" }
 * ```
 */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) {
    throw new SluiceError("invalid_url", `object store URL ${url}: expected s3://bucket[/prefix]`);
  }
  const bucket = m[1];
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new SluiceError(
      "invalid_url",
      `object store URL ${url}: expected a bucket name of 3-63 [a-z0-9.-], found ${bucket}`,
    );
  }
  const rawPrefix = (m[2] ?? "").replace(/\/+$/, "");
  if (rawPrefix !== "") {
    try {
      validateKey(rawPrefix);
    } catch (err) {
      throw new SluiceError(
        "invalid_url",
        `object store URL ${url}: prefix: ${err instanceof Error ? err.message : err}`,
      );
    }
  }
  return { bucket, prefix: rawPrefix === "" ? "" : rawPrefix + "/" };
}

/** Marks a failure while reading a response body, which the SDK cannot retry for us. */
class BodyReadError extends Error {
  constructor(cause: unknown) {
    super(`reading response body: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = "BodyReadError";
  }
}

function errorName(err: unknown): string {
  const e = err as { name?: unknown } | null;
  return typeof e?.name === "string" ? e.name : "";
}

function httpStatus(err: unknown): number | undefined {
  const s = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata
    ?.httpStatusCode;
  return typeof s === "number" ? s : undefined;
}

function isNotFound(err: unknown): boolean {
  const n = errorName(err);
  if (n === "NoSuchBucket") return false;
  return n === "NoSuchKey" || n === "NotFound" || httpStatus(err) === 404;
}

/**
 * The response body as a web stream read straight from the Node stream underneath, whose
 * `cancel` destroys that stream (and so frees its connection). The SDK's own
 * `transformToWebStream` leaves an unread response holding its connection when cancelled, and
 * under Deno its adapter throws if data arrives after the cancel.
 */
function webBody(out: GetObjectCommandOutput): ReadableStream<Uint8Array> {
  const node = out.Body as unknown;
  if (!(node instanceof Readable)) {
    return out.Body!.transformToWebStream() as ReadableStream<Uint8Array>;
  }
  const chunks = node[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      const { value, done } = await chunks.next();
      if (done) ctrl.close();
      else ctrl.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    },
    async cancel() {
      node.destroy();
      await chunks.return?.().catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** An {@link ObjectStore} on an S3-compatible server. */
export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  /** `""` or ending in `/`. */
  readonly prefix: string;
  readonly client: S3Client;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #policy: RetryPolicy;

  private constructor(bucket: string, prefix: string, opts: S3StoreOptions) {
    this.bucket = bucket;
    this.prefix = prefix;
    this.url = `s3://${bucket}${prefix ? "/" + prefix.slice(0, -1) : ""}`;
    this.#partSize = opts.partSize ?? 8 * MiB;
    this.#queueSize = opts.queueSize ?? 4;
    this.#policy = retryPolicyOf(opts);
    const { partSize: _p, queueSize: _q, ...conn } = opts;
    this.client = new S3Client(s3ClientOptions(conn));
  }

  /**
   * Opens `s3://bucket[/prefix]` (no request is made until the first call).
   *
   * @example
   * ```ts
   * const store = S3ObjectStore.fromUrl("s3://raw", { endpoint: "http://127.0.0.1:9000" });
   * ```
   */
  static fromUrl(url: string, opts: S3StoreOptions = {}): S3ObjectStore {
    const { bucket, prefix } = parseS3Url(url);
    return new S3ObjectStore(bucket, prefix, parseOr(storeSchema, opts, "S3 store options"));
  }

  uriFor(key: string): string {
    return `s3://${this.bucket}/${this.#full(key)}`;
  }

  async get(key: string): Promise<ReadableStream<Uint8Array>> {
    const out = await this.#getObject(key);
    // A dropped connection resumes from the first missing byte, fenced by the ETag so a
    // replaced object is never stitched together from two versions.
    return resumableBody({
      first: webBody(out),
      total: out.ContentLength,
      name: this.uriFor(key),
      policy: this.#policy,
      reopen: async (offset) => {
        const rest = await this.#getObject(key, { Range: `bytes=${offset}-`, IfMatch: out.ETag });
        return webBody(rest);
      },
    });
  }

  async getBytes(key: string): Promise<Uint8Array> {
    this.#full(key);
    return await this.#withBodyRetry(async () => {
      const out = await this.#getObject(key);
      try {
        return await out.Body!.transformToByteArray();
      } catch (err) {
        throw new BodyReadError(err);
      }
    });
  }

  async download(key: string, path: string): Promise<ObjectInfo> {
    this.#full(key);
    const target = resolve(path);
    return await this.#withBodyRetry(async () => {
      const out = await this.#getObject(key);
      let size: number;
      try {
        const body = out.Body!.transformToWebStream() as ReadableStream<Uint8Array>;
        ({ size } = await writeFileAtomic(target, body));
      } catch (err) {
        throw isRetryableError(err) ? new BodyReadError(err) : err;
      }
      return {
        key,
        size,
        etag: unquote(out.ETag),
        lastModified: out.LastModified ?? new Date(),
        ...(out.ContentType ? { contentType: out.ContentType } : {}),
        ...(out.Metadata && Object.keys(out.Metadata).length ? { metadata: out.Metadata } : {}),
        ...(out.VersionId ? { versionId: out.VersionId } : {}),
      };
    });
  }

  async put(
    key: string,
    body: Uint8Array | ReadableStream<Uint8Array>,
    opts?: PutOptions,
  ): Promise<ObjectInfo> {
    let full: string;
    let options: PutOptions;
    try {
      full = this.#full(key);
      options = parsePutOptions(opts);
    } catch (err) {
      await cancelUnread(body);
      throw err;
    }
    if (body instanceof Uint8Array && body.byteLength <= this.#partSize) {
      return await this.#putBytes(key, full, body, options);
    }
    if (body instanceof Uint8Array) {
      return await this.#upload(key, full, body, body.byteLength, options);
    }
    let size = 0;
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          size += chunk.byteLength;
          ctl.enqueue(chunk);
        },
      }),
    );
    // The SDK cannot hash a web stream: hand lib-storage a Node stream, which it buffers
    // into replayable parts (a single PutObject when it fits in one part).
    // Deno's and Node's ReadableStream typings differ; the object is the same at runtime.
    const nodeStream = Readable.fromWeb(counted as Parameters<typeof Readable.fromWeb>[0]);
    return await this.#upload(key, full, nodeStream, () => size, options);
  }

  async putFile(key: string, path: string, opts?: PutOptions): Promise<ObjectInfo> {
    const full = this.#full(key);
    const options = parsePutOptions(opts);
    const { size } = await stat(path);
    if (size <= this.#partSize) {
      return await this.#putBytes(key, full, await Deno.readFile(path), options);
    }
    const stream = createReadStream(path, { highWaterMark: MiB });
    try {
      return await this.#upload(key, full, stream, size, options);
    } finally {
      stream.destroy();
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const full = this.#full(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full }));
      return {
        key,
        size: out.ContentLength ?? 0,
        etag: unquote(out.ETag),
        lastModified: out.LastModified ?? new Date(0),
        ...(out.ContentType ? { contentType: out.ContentType } : {}),
        ...(out.Metadata && Object.keys(out.Metadata).length ? { metadata: out.Metadata } : {}),
        ...(out.VersionId ? { versionId: out.VersionId } : {}),
      };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.#wrap("HeadObject", key, err);
    }
  }

  async *list(opts?: ListOptions): AsyncIterable<ObjectInfo> {
    const { prefix = "", startAfter, pageSize } = parseListOptions(opts);
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            ...(startAfter && !token ? { StartAfter: this.prefix + startAfter } : {}),
            ...(token ? { ContinuationToken: token } : {}),
            ...(pageSize ? { MaxKeys: pageSize } : {}),
          }),
        );
      } catch (err) {
        throw this.#wrap("ListObjectsV2", prefix, err);
      }
      for (const o of out.Contents ?? []) {
        if (!o.Key?.startsWith(this.prefix)) continue;
        yield {
          key: o.Key.slice(this.prefix.length),
          size: o.Size ?? 0,
          etag: unquote(o.ETag),
          lastModified: o.LastModified ?? new Date(0),
        };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
      if (out.IsTruncated && !token) {
        throw new SluiceError(
          "object_store_error",
          `ListObjectsV2 ${this.url}: expected a NextContinuationToken on a truncated page, found none`,
        );
      }
    } while (token);
  }

  async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
    const from = this.#full(fromKey);
    const to = this.#full(toKey);
    if (fromKey === toKey) {
      // S3 refuses a copy onto itself that changes nothing; it is a no-op anyway.
      const info = await this.head(fromKey);
      if (!info) throw new ObjectNotFoundError(this.url, fromKey);
      return info;
    }
    try {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: `${this.bucket}/${from.split("/").map(encodeURIComponent).join("/")}`,
          MetadataDirective: "COPY",
        }),
      );
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, fromKey);
      throw this.#wrap("CopyObject", fromKey, err);
    }
    const info = await this.head(toKey);
    if (!info) {
      throw new SluiceError(
        "object_store_error",
        `CopyObject ${this.uriFor(toKey)}: gone after copy`,
      );
    }
    return info;
  }

  async delete(key: string): Promise<void> {
    const full = this.#full(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: full }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.#wrap("DeleteObject", key, err);
    }
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }

  #full(key: string): string {
    return this.prefix + validateKey(key);
  }

  async #getObject(
    key: string,
    extra: { Range?: string; IfMatch?: string } = {},
  ): Promise<GetObjectCommandOutput> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.#full(key), ...extra }),
      );
      if (!out.Body) {
        throw new SluiceError("object_store_error", `GetObject ${this.uriFor(key)}: no body`);
      }
      return out;
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key);
      throw this.#wrap("GetObject", key, err);
    }
  }

  /** Retries only body-read failures: request failures were already retried by the SDK. */
  #withBodyRetry<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      policy: this.#policy,
      isRetryable: (err) => err instanceof BodyReadError && isRetryableError(err.cause),
    }).catch((err) => {
      throw err instanceof BodyReadError ? this.#wrap("GetObject body", "", err.cause) : err;
    });
  }

  async #putBytes(
    key: string,
    full: string,
    body: Uint8Array,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: full,
          Body: body,
          ContentLength: body.byteLength,
          ...(options.contentType ? { ContentType: options.contentType } : {}),
          ...(options.metadata ? { Metadata: options.metadata } : {}),
        }),
      );
      return putInfo(key, body.byteLength, out.ETag, out.VersionId, options);
    } catch (err) {
      throw this.#wrap("PutObject", key, err);
    }
  }

  async #upload(
    key: string,
    full: string,
    body: Uint8Array | Readable,
    size: number | (() => number),
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const upload = new Upload({
      client: this.client,
      partSize: this.#partSize,
      queueSize: this.#queueSize,
      leavePartsOnError: false,
      params: {
        Bucket: this.bucket,
        Key: full,
        Body: body,
        ...(options.contentType ? { ContentType: options.contentType } : {}),
        ...(options.metadata ? { Metadata: options.metadata } : {}),
      },
    });
    try {
      const out = await upload.done();
      const n = typeof size === "function" ? size() : size;
      return putInfo(key, n, out.ETag, out.VersionId, options);
    } catch (err) {
      throw this.#wrap("Upload", key, err);
    }
  }

  #wrap(op: string, key: string, err: unknown): Error {
    if (err instanceof SluiceError) return err;
    const name = errorName(err) || "Error";
    const msg = err instanceof Error ? err.message : String(err);
    const where = key ? this.uriFor(key) : this.url;
    if (errorName(err) === "NoSuchBucket") {
      return new SluiceError(
        "bucket_not_found",
        `${op} ${where}: bucket ${this.bucket} does not exist`,
        {
          cause: err,
        },
      );
    }
    const code = isRetryableError(err) ? "object_store_unavailable" : "object_store_error";
    const status = httpStatus(err);
    return new SluiceError(
      code,
      `${op} ${where}: ${name}${status ? ` (HTTP ${status})` : ""}: ${msg}`,
      { cause: err },
    );
  }
}

function unquote(etag: string | undefined): string {
  return (etag ?? "").replace(/^"|"$/g, "");
}

function putInfo(
  key: string,
  size: number,
  etag: string | undefined,
  versionId: string | undefined,
  options: PutOptions,
): ObjectInfo {
  return {
    key,
    size,
    etag: unquote(etag),
    lastModified: new Date(),
    ...(options.contentType ? { contentType: options.contentType } : {}),
    ...(options.metadata ? { metadata: options.metadata } : {}),
    ...(versionId ? { versionId } : {}),
  };
}

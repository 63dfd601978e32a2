/**
 * Reads an image's dataset object straight into memory for normalize, hashing it as it streams
 * in: no staging copy, no fsync, no second read. Normalize renders from bytes held in memory
 * anyway, so staging the source on disk first only added a write, two fsyncs and a read-back to
 * every item while the CPU slots waited. The stream is cut off as soon as it passes `maxBytes`
 * (a changed object larger than its recorded size is never held whole), and the result is
 * checked against the recorded sha256.
 *
 * @example
 * ```ts
 * const bytes = await readSource(store, key, { imageId: "i1", uri, sha256, maxBytes: 1 << 28 });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { SluiceError } from "../../common/errors/mod.ts";
import { ImageError } from "../../common/images/verify.ts";
import { ObjectNotFoundError, type ObjectStore } from "../../common/objectstore/mod.ts";

/** What the source must match. */
export interface SourceExpectation {
  imageId: string;
  /** The dataset URI, for messages. */
  uri: string;
  /** The sha256 recorded at ingest (hex). */
  sha256: string;
  /** Largest object accepted, bytes. */
  maxBytes: number;
  /** The recorded size, when known: preallocates the buffer. */
  size?: number | null;
}

/**
 * Fetches `key` from `store` into one buffer, refusing it past `maxBytes` (`too_large`), when
 * absent (`source_missing`), or when its sha256 differs from the recorded one
 * (`checksum_mismatch`).
 *
 * @example
 * ```ts
 * const bytes = await readSource(store, "images/ab/abcd.jpg", expectation);
 * ```
 */
export async function readSource(
  store: Pick<ObjectStore, "get">,
  key: string,
  want: SourceExpectation,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  let body: ReadableStream<Uint8Array>;
  try {
    body = await store.get(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      throw new SluiceError(
        "source_missing",
        `image ${want.imageId}: expected its dataset object at ${want.uri}, found none`,
        { cause: err },
      );
    }
    throw err;
  }
  const hash = createHash("sha256");
  let buf = new Uint8Array(Math.min(want.size ?? 1 << 20, want.maxBytes) || 1);
  let n = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.byteLength > want.maxBytes) {
        throw new ImageError(
          "too_large",
          `image ${want.imageId} (${want.uri})`,
          `more than ${want.maxBytes} bytes exceeds the limit of ${want.maxBytes} bytes`,
        );
      }
      if (n + value.byteLength > buf.byteLength) {
        const grown = new Uint8Array(
          Math.min(want.maxBytes, Math.max(buf.byteLength * 2, n + value.byteLength)),
        );
        grown.set(buf.subarray(0, n));
        buf = grown;
      }
      buf.set(value, n);
      n += value.byteLength;
      hash.update(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
  const actual = hash.digest("hex");
  if (actual !== want.sha256) {
    throw new SluiceError(
      "checksum_mismatch",
      `image ${want.imageId}: expected ${want.uri} to have sha256 ${want.sha256}, found ${actual} ` +
        `(${n} bytes)`,
    );
  }
  return buf.subarray(0, n);
}

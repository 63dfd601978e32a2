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
export type { S3StoreOptions } from "./s3.ts";
export * from "./contract.ts";
export * from "./open.ts";

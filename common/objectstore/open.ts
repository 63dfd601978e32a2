/**
 * Opens an object store by URL. The adapters are imported on demand, so the contract files
 * never import an adapter.
 *
 * @example
 * ```ts
 * const store = await openObjectStore("file:///tmp/sluice-objects");
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";
import type { ObjectStore } from "./object_store.ts";
// Type-only: the adapter module is imported at run time below, on demand.
import type { S3StoreOptions } from "./s3.ts";
import type { S3Settings } from "./s3_settings.ts";

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

/**
 * fauxqs 2.4 sorts listings with `localeCompare` but pages with `<=`, so a paginated
 * ListObjectsV2 over mixed-case or non-ASCII keys repeats some keys and loses others
 * (measured: "B", "Z/1", "a+b" vanished, "😀" came back on every page). Real S3 orders keys
 * by UTF-8 bytes. This builds an S3 store for fauxqs whose listings use that order, from
 * fauxqs' own `S3Store` class (same module instance the app uses).
 * @module
 */
import { Buffer } from "node:buffer";

interface StoredObject {
  key: string;
}

interface ListResult {
  objects: StoredObject[];
  commonPrefixes: string[];
  isTruncated: boolean;
}

interface ListOptions {
  prefix?: string;
  delimiter?: string;
  maxKeys?: number;
  startAfter?: string;
  marker?: string;
}

interface S3StoreLike {
  buckets: Map<string, Map<string, StoredObject>>;
  listObjects(bucket: string, options?: ListOptions): ListResult;
}

type S3StoreClass = new () => S3StoreLike;

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * An fauxqs `S3Store` listing in S3's byte order, to pass as `buildApp({ stores: { s3Store } })`.
 * Throws when fauxqs' internal module layout has changed.
 *
 * @example
 * ```ts
 * const s3Store = await byteOrderedS3Store();
 * const app = buildApp({ logger: false, stores: { s3Store } as never });
 * ```
 */
export async function byteOrderedS3Store(): Promise<object> {
  const appUrl = import.meta.resolve("fauxqs");
  const mod = await import(new URL("./s3/s3Store.js", appUrl).href) as { S3Store?: S3StoreClass };
  const Base = mod.S3Store;
  if (typeof Base !== "function" || typeof Base.prototype.listObjects !== "function") {
    throw new Error(`fauxqs layout changed: no S3Store.listObjects beside ${appUrl}`);
  }

  class ByteOrderedS3Store extends Base {
    override listObjects(bucket: string, options?: ListOptions): ListResult {
      const objects = this.buckets.get(bucket);
      if (!objects) return super.listObjects(bucket, options); // throws NoSuchBucket
      const prefix = options?.prefix ?? "";
      const delimiter = options?.delimiter;
      const maxKeys = options?.maxKeys ?? 1000;
      const startAfter = options?.startAfter ?? options?.marker ?? "";
      const sorted = [...objects.values()]
        .filter((o) => o.key.startsWith(prefix))
        .sort((a, b) => byteCompare(a.key, b.key));
      const result: StoredObject[] = [];
      const common = new Set<string>();
      let count = 0;
      let isTruncated = false;
      for (const obj of sorted) {
        if (startAfter && byteCompare(obj.key, startAfter) <= 0) continue;
        if (delimiter) {
          const rest = obj.key.slice(prefix.length);
          const at = rest.indexOf(delimiter);
          if (at >= 0) {
            const cp = prefix + rest.slice(0, at + delimiter.length);
            if (startAfter && byteCompare(cp, startAfter) <= 0) continue;
            if (!common.has(cp)) {
              if (count >= maxKeys) {
                isTruncated = true;
                break;
              }
              common.add(cp);
              count++;
            }
            continue;
          }
        }
        if (count >= maxKeys) {
          isTruncated = true;
          break;
        }
        result.push(obj);
        count++;
      }
      return { objects: result, commonPrefixes: [...common].sort(byteCompare), isTruncated };
    }
  }
  return new ByteOrderedS3Store();
}

/**
 * Reads an annotation file named by a key or URI: `file:///…` and absolute paths from local
 * disk, `s3://bucket/key` from S3 (through the source store when it covers that location),
 * `http(s)://…` with fetch, and anything else as a key in the source store, unless
 * `preferLocal` is set and a local file of that name exists (what a person typing
 * `sluice-ingest import-annotations export.json` means).
 *
 * @example
 * ```ts
 * const { text, file } = await readAnnotationText("labels/export.json", { source });
 * ```
 * @module
 */
import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SluiceError } from "../../common/errors/mod.ts";
import {
  type ObjectStore,
  openObjectStore,
  type OpenOptions,
} from "../../common/objectstore/mod.ts";
import { parseS3Url } from "../../common/objectstore/s3.ts";

export interface AnnotationReadOptions {
  /** The source store: plain keys are read from it. */
  source: ObjectStore;
  /** S3 settings for `s3://` URIs outside the source store. */
  s3?: OpenOptions["s3"];
  /** A plain name that exists as a local file is read from disk (CLI use). */
  preferLocal?: boolean;
  /** Directory relative local paths resolve against (default: the process's). */
  cwd?: string;
  /** Largest file read (default 512 MiB). */
  maxBytes?: number;
}

/** The annotation file could not be read (missing, too large, HTTP error). */
export class AnnotationReadError extends SluiceError {
  constructor(ref: string, problem: string, options?: ErrorOptions) {
    super("annotation_unreadable", `annotation file ${ref}: ${problem}`, options);
    this.name = "AnnotationReadError";
  }
}

const decoder = new TextDecoder();

/**
 * Reads the file's text; `file` is a display name (the absolute URI or path).
 *
 * @example
 * ```ts
 * await readAnnotationText("s3://labels/coco.json", { source, s3 });
 * ```
 */
export async function readAnnotationText(
  ref: string,
  opts: AnnotationReadOptions,
): Promise<{ text: string; file: string }> {
  const max = opts.maxBytes ?? 512 * 1024 * 1024;
  const check = (size: number, file: string) => {
    if (size > max) {
      throw new AnnotationReadError(file, `${size} bytes exceeds the limit of ${max} bytes`);
    }
  };
  const local = async (path: string) => {
    const s = await stat(path).catch((err) => {
      throw new AnnotationReadError(path, `expected a readable file: ${err.message}`, {
        cause: err,
      });
    });
    check(s.size, path);
    return { text: await readFile(path, "utf8"), file: path };
  };
  if (ref.startsWith("file:")) return await local(fileURLToPath(ref));
  if (ref.startsWith("/")) return await local(ref);
  if (/^https?:\/\//i.test(ref)) {
    let res: Response;
    try {
      res = await fetch(ref);
    } catch (err) {
      throw new AnnotationReadError(ref, `fetch failed: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new AnnotationReadError(ref, `expected HTTP 200, found ${res.status}`);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    check(bytes.byteLength, ref);
    return { text: decoder.decode(bytes), file: ref };
  }
  if (ref.startsWith("s3://")) {
    const root = opts.source.url + "/";
    if (ref.startsWith(root)) return await fromStore(opts.source, ref.slice(root.length), ref);
    const { bucket, prefix } = parseS3Url(ref);
    if (prefix === "") throw new AnnotationReadError(ref, "expected s3://bucket/key");
    const store = await openObjectStore(`s3://${bucket}`, { s3: opts.s3 });
    try {
      return await fromStore(store, prefix.slice(0, -1), ref);
    } finally {
      await store.close();
    }
  }
  if (opts.preferLocal) {
    const path = resolve(opts.cwd ?? Deno.cwd(), ref);
    const exists = await stat(path).then((s) => s.isFile(), () => false);
    if (exists) return await local(path);
  }
  return await fromStore(opts.source, ref, sourceName(opts.source, ref));

  async function fromStore(store: ObjectStore, key: string, name: string) {
    const info = await store.head(key);
    if (info === null) throw new AnnotationReadError(name, `expected an object, found none`);
    check(info.size, name);
    return { text: decoder.decode(await store.getBytes(key)), file: name };
  }
}

function sourceName(store: ObjectStore, key: string): string {
  try {
    return store.uriFor(key);
  } catch {
    return `${store.url}/${key}`;
  }
}

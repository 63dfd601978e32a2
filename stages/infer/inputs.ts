/**
 * Explicit work for `sluice-infer --input`: instead of claiming from the manifest queue, predict
 * a given set of images. Each `--input` is either
 *
 * - a key prefix in the dataset object store (every object under it with an image suffix), or
 * - `@path/to/list.txt`: one entry per line (blank lines and `#` comments skipped), each an
 *   object key of the dataset store, a `file://` URL or absolute path of a local file, or an
 *   `s3://` / `file://` URI inside the dataset store.
 *
 * @example
 * ```ts
 * const inputs = await resolveInputs(["holdout/", "@/tmp/more.txt"], store, [".jpg", ".png"]);
 * const bytes = await inputs[0].read();
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { basenameOf } from "../../common/annotations/mod.ts";
import { SluiceError } from "../../common/errors/mod.ts";
import { imageIdFor } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { keyOfRecorded } from "../../common/objectstore/recorded_key.ts";

/** One explicit input image. */
export interface InputItem {
  /** `imageIdFor(uri)`: the id ingest would give an image with this source URI. */
  id: string;
  /** Absolute URI (`store.uriFor(key)` or a `file://` URL). */
  uri: string;
  fileName: string;
  /** The object key when the image is in the dataset store. */
  key: string | null;
  /** Reads the whole image. */
  read(): Promise<Uint8Array>;
}

/** An `--input` entry could not be understood or listed. */
export class InputError extends SluiceError {
  constructor(message: string) {
    super("invalid_input", message);
    this.name = "InputError";
  }
}

/**
 * The key under which `store` keeps the object `uri` (as `store.uriFor(key)` spells it), or
 * null when the URI belongs elsewhere.
 *
 * @example
 * ```ts
 * storeKeyOf(store, store.uriFor("images/ab/x.jpg")); // "images/ab/x.jpg"
 * ```
 */
export function storeKeyOf(store: ObjectStore, uri: string): string | null {
  // A store-relative key (what the manifest records) or an absolute URI of this store.
  return keyOfRecorded(store, uri);
}

async function entry(store: ObjectStore, raw: string): Promise<InputItem> {
  const fromStore = async (key: string): Promise<InputItem> => {
    const uri = store.uriFor(key);
    return {
      id: await imageIdFor(uri),
      uri,
      fileName: basenameOf(key),
      key,
      read: () => store.getBytes(key),
    };
  };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    const key = storeKeyOf(store, raw);
    if (key !== null) return await fromStore(key);
    if (!raw.startsWith("file://")) {
      throw new InputError(
        `input ${JSON.stringify(raw)}: expected an object of ${store.url} or a file:// URL`,
      );
    }
    const path = fileURLToPath(raw);
    return {
      id: await imageIdFor(raw),
      uri: raw,
      fileName: basenameOf(path),
      key: null,
      read: () => Deno.readFile(path),
    };
  }
  if (isAbsolute(raw)) {
    const uri = pathToFileURL(raw).href;
    const key = storeKeyOf(store, uri);
    if (key !== null) return await fromStore(key);
    return {
      id: await imageIdFor(uri),
      uri,
      fileName: basenameOf(raw),
      key: null,
      read: () => Deno.readFile(raw),
    };
  }
  return await fromStore(raw);
}

/**
 * Expands `--input` values into images, in the given order (duplicates removed).
 *
 * @example
 * ```ts
 * await resolveInputs(["images/"], store, [".jpg"]); // every .jpg under images/
 * ```
 */
export async function resolveInputs(
  specs: readonly string[],
  store: ObjectStore,
  suffixes: readonly string[],
): Promise<InputItem[]> {
  const out: InputItem[] = [];
  const seen = new Set<string>();
  const add = (item: InputItem) => {
    if (seen.has(item.uri)) return;
    seen.add(item.uri);
    out.push(item);
  };
  const lower = suffixes.map((s) => s.toLowerCase());
  for (const spec of specs) {
    if (spec.startsWith("@")) {
      const path = spec.slice(1);
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (err) {
        throw new InputError(
          `input list ${path}: expected a readable file, found ${(err as Error).message}`,
        );
      }
      for (const line of text.split(/\r?\n/)) {
        const t = line.trim();
        if (t === "" || t.startsWith("#")) continue;
        add(await entry(store, t));
      }
      continue;
    }
    const prefix = spec.replace(/^\/+/, "");
    let n = 0;
    for await (const o of store.list({ prefix })) {
      if (!lower.some((s) => o.key.toLowerCase().endsWith(s))) continue;
      add(await entry(store, o.key));
      n++;
    }
    if (n === 0) {
      throw new InputError(
        `input prefix ${JSON.stringify(spec)}: expected images (${lower.join(" ")}) under it in ` +
          `${store.url}, found none`,
      );
    }
  }
  return out;
}

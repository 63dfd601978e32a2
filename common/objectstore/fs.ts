/**
 * The embedded object store: a local directory. Keys map to files under the root; writes
 * are atomic (temp file in the same directory, fsync, rename, directory fsync).
 *
 * Layout: `<root>/<key>` holds the bytes; `<root>/.sluice-meta/<key>` holds a JSON sidecar
 * (etag = md5 hex, content type, user metadata, and the inode it describes). A sidecar whose
 * inode or size does not match its file (a crash between the two renames, or a file put
 * there by hand) is ignored and the etag recomputed. Temp files start with `.sluice-tmp-`.
 * Neither is ever listed, and keys that would name them are refused.
 *
 * Unlike S3, a key cannot be both an object and a "directory" (`a` and `a/b`): such a put
 * throws SluiceError("key_conflict"). Symlinks are followed only while they stay inside the
 * root; list() does not descend into or return symlinks.
 *
 * @example
 * ```ts
 * const store = await FsObjectStore.fromUrl("file:///var/lib/sluice/objects");
 * await store.put("images/ab/abcd.jpg", bytes, { contentType: "image/jpeg" });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import {
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rm,
  rmdir,
  stat,
  unlink,
} from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { SluiceError } from "../errors/mod.ts";
import {
  cancelUnread,
  createTemp,
  stageFile,
  TEMP_PREFIX,
  type TempFile,
  writeFileAtomic,
} from "./_atomic_file.ts";
import { compareKeys } from "./_key_order.ts";
import { parseListOptions, parsePutOptions } from "./_options.ts";
import {
  InvalidKeyError,
  type ListOptions,
  type ObjectInfo,
  ObjectNotFoundError,
  type ObjectStore,
  type PutOptions,
  validateKey,
} from "./contract.ts";

/** The hidden directory under the root that holds sidecars. */
export const META_DIR = ".sluice-meta";

interface Sidecar {
  v: 1;
  etag: string;
  size: number;
  ino: number | null;
  contentType?: string;
  metadata?: Record<string, string>;
}

function errCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : undefined;
}

function isMissing(err: unknown): boolean {
  const c = errCode(err);
  return c === "ENOENT" || c === "ENOTDIR";
}

/** A local-directory {@link ObjectStore}. */
/** Most directories a store remembers as existing (see `#dirs`). */
const MAX_REMEMBERED_DIRS = 4096;

export class FsObjectStore implements ObjectStore {
  readonly url: string;
  /** The root directory, symlinks resolved. */
  readonly root: string;
  readonly #metaRoot: string;
  /**
   * Directories this store created or checked, path → real path, so that a put into a known
   * directory skips the per-segment walk (a mkdir and an lstat per segment: a fifth of a
   * normalize worker's main-thread time at 10,000 images). Forgotten when a delete may have
   * removed them, and on ENOENT (another process's delete), after which the walk runs again.
   */
  readonly #dirs = new Map<string, string>();

  private constructor(root: string) {
    this.root = root;
    this.#metaRoot = join(root, META_DIR);
    this.url = pathToFileURL(root).href;
  }

  /**
   * Opens (creating if needed) a directory store from `file:///abs/dir` or a plain path.
   *
   * @example
   * ```ts
   * const store = await FsObjectStore.fromUrl("./.sluice/objects");
   * ```
   */
  static async fromUrl(url: string): Promise<FsObjectStore> {
    if (typeof url !== "string" || url.length === 0) {
      throw new SluiceError("invalid_url", "object store URL: expected a file:// URL or a path");
    }
    let path: string;
    if (url.startsWith("file:")) {
      try {
        path = fileURLToPath(url);
      } catch (err) {
        throw new SluiceError("invalid_url", `object store URL ${url}: ${String(err)}`);
      }
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
      throw new SluiceError(
        "invalid_url",
        `object store URL ${url}: expected file:// or a path, found another scheme`,
      );
    } else {
      path = resolve(url);
    }
    await mkdir(path, { recursive: true });
    const root = await realpath(path);
    if (!(await stat(root)).isDirectory()) {
      throw new SluiceError("invalid_url", `object store root ${root}: expected a directory`);
    }
    const meta = join(root, META_DIR);
    await mkdir(meta).catch((err) => {
      if (errCode(err) !== "EEXIST") throw err;
    });
    if (!(await lstat(meta)).isDirectory()) {
      throw new SluiceError(
        "invalid_url",
        `object store root ${root}: expected ${meta} to be a directory`,
      );
    }
    return new FsObjectStore(root);
  }

  uriFor(key: string): string {
    return pathToFileURL(this.#dataPath(key)).href;
  }

  async get(key: string): Promise<ReadableStream<Uint8Array>> {
    const real = await this.#resolveExisting(key);
    const file = await Deno.open(real, { read: true });
    return file.readable;
  }

  async getBytes(key: string): Promise<Uint8Array> {
    const real = await this.#resolveExisting(key);
    return new Uint8Array(await readFile(real));
  }

  async download(key: string, path: string): Promise<ObjectInfo> {
    const real = await this.#resolveExisting(key);
    const st = await stat(real);
    const sidecar = await this.#readSidecar(key);
    const fresh = sidecar && sidecarMatches(sidecar, st.ino, st.size) ? sidecar : null;
    const file = await Deno.open(real, { read: true });
    // etag and size come from the bytes actually copied, whatever happened since stat().
    const staged = await writeFileAtomic(resolve(path), file.readable);
    return {
      key,
      size: staged.size,
      etag: staged.md5,
      lastModified: st.mtime,
      ...(fresh?.contentType ? { contentType: fresh.contentType } : {}),
      ...(fresh?.metadata ? { metadata: fresh.metadata } : {}),
    };
  }

  async put(
    key: string,
    body: Uint8Array | ReadableStream<Uint8Array>,
    opts?: PutOptions,
  ): Promise<ObjectInfo> {
    let dataPath: string;
    let options: PutOptions;
    let tmp: TempFile | undefined;
    try {
      dataPath = this.#dataPath(key);
      options = parsePutOptions(opts);
      tmp = await this.#inDir(this.root, dirname(dataPath), key, createTemp);
      await this.#refuseDirectoryAt(join(tmp.dir, basename(dataPath)), key);
    } catch (err) {
      await cancelUnread(body);
      if (tmp) {
        await tmp.handle.close();
        await rm(tmp.tmpPath, { force: true });
      }
      throw err;
    }
    const staged = await stageFile(tmp, body);
    try {
      const sidecar: Sidecar = {
        v: 1,
        etag: staged.md5,
        size: staged.size,
        ino: staged.ino,
        ...(options.contentType ? { contentType: options.contentType } : {}),
        ...(options.metadata ? { metadata: options.metadata } : {}),
      };
      await this.#writeSidecar(key, sidecar);
      await staged.commit(join(tmp.dir, basename(dataPath)));
    } catch (err) {
      await staged.discard();
      throw err;
    }
    return {
      key,
      size: staged.size,
      etag: staged.md5,
      lastModified: staged.mtime,
      ...(options.contentType ? { contentType: options.contentType } : {}),
      ...(options.metadata ? { metadata: options.metadata } : {}),
    };
  }

  async putFile(key: string, path: string, opts?: PutOptions): Promise<ObjectInfo> {
    this.#dataPath(key);
    parsePutOptions(opts);
    const file = await Deno.open(path, { read: true });
    return await this.put(key, file.readable, opts);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    let real: string;
    try {
      real = await this.#resolveExisting(key);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return null;
      throw err;
    }
    return await this.#info(key, real);
  }

  async *list(opts?: ListOptions): AsyncIterable<ObjectInfo> {
    const { prefix = "", startAfter = "" } = parseListOptions(opts);
    yield* this.#walk(this.root, "", prefix, startAfter);
  }

  async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
    this.#dataPath(toKey);
    const real = await this.#resolveExisting(fromKey);
    if (fromKey === toKey) return await this.#info(fromKey, real);
    const st = await stat(real);
    const sidecar = await this.#readSidecar(fromKey);
    const fresh = sidecar && sidecarMatches(sidecar, st.ino, st.size) ? sidecar : null;
    const file = await Deno.open(real, { read: true });
    return await this.put(toKey, file.readable, {
      ...(fresh?.contentType ? { contentType: fresh.contentType } : {}),
      ...(fresh?.metadata ? { metadata: fresh.metadata } : {}),
    });
  }

  async delete(key: string): Promise<void> {
    const dataPath = this.#dataPath(key);
    const metaPath = this.#metaPath(key);
    // Never unlink through a directory symlink that leads out of the root.
    const dataDir = await this.#realInside(dirname(dataPath), key).catch((err) => {
      if (isMissing(err)) return null;
      throw err;
    });
    if (dataDir === null) return;
    const target = join(dataDir, basename(dataPath));
    try {
      const st = await lstat(target);
      if (st.isDirectory()) return; // a "directory" key holds no object
      await unlink(target);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    await unlink(metaPath).catch((err) => {
      if (!isMissing(err)) throw err;
    });
    // Emptied directories go: forget every remembered one rather than guess which.
    this.#dirs.clear();
    await removeEmptyDirs(dataDir, this.root);
    await removeEmptyDirs(dirname(metaPath), this.#metaRoot);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Validates a key and returns its path under the root (no I/O). */
  #dataPath(key: string): string {
    validateKey(key);
    const segs = key.split("/");
    if (segs[0] === META_DIR) {
      throw new InvalidKeyError(key, `expected no leading "${META_DIR}" (reserved by this store)`);
    }
    if (segs.some((s) => s.startsWith(TEMP_PREFIX))) {
      throw new InvalidKeyError(key, `expected no segment starting "${TEMP_PREFIX}" (reserved)`);
    }
    const path = join(this.root, ...segs);
    const rel = relative(this.root, path);
    if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
      throw new InvalidKeyError(key, `expected a path inside ${this.root}, found ${path}`);
    }
    return path;
  }

  #metaPath(key: string): string {
    return join(this.#metaRoot, ...key.split("/"));
  }

  /** The real path of an existing object file, checked to be inside the root. */
  async #resolveExisting(key: string): Promise<string> {
    const path = this.#dataPath(key);
    let real: string;
    try {
      real = await this.#realInside(path, key);
    } catch (err) {
      if (isMissing(err)) throw new ObjectNotFoundError(this.url, key);
      throw err;
    }
    const st = await stat(real).catch((err) => {
      if (isMissing(err)) throw new ObjectNotFoundError(this.url, key);
      throw err;
    });
    if (!st.isFile()) throw new ObjectNotFoundError(this.url, key);
    return real;
  }

  /** realpath(path), refused when a symlink leads outside the root. */
  async #realInside(path: string, key: string): Promise<string> {
    const real = await realpath(path);
    if (real !== this.root && !real.startsWith(this.root + sep)) {
      throw new InvalidKeyError(
        key,
        `expected a path inside ${this.root}, found a link to ${real}`,
      );
    }
    return real;
  }

  /**
   * `fn` in the real path of `dir` (created if needed). A concurrent delete may remove the
   * directory under us, remembered or just created: forget it, re-create it and retry.
   */
  async #inDir<T>(
    base: string,
    dir: string,
    key: string,
    fn: (real: string) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const real = await this.#ensureDir(base, dir, key);
      try {
        return await fn(real);
      } catch (err) {
        if (errCode(err) !== "ENOENT" || attempt >= 3) throw err;
        this.#dirs.delete(dir);
      }
    }
  }

  /** `#walkDir`, remembered (see `#dirs`). */
  async #ensureDir(base: string, dir: string, key: string): Promise<string> {
    const known = this.#dirs.get(dir);
    if (known !== undefined) return known;
    const real = await this.#walkDir(base, dir, key);
    // Bounded: a store writing into ever new directories must not grow without end.
    if (this.#dirs.size >= MAX_REMEMBERED_DIRS) this.#dirs.clear();
    this.#dirs.set(dir, real);
    return real;
  }

  /**
   * Creates `dir` (under `base`) one segment at a time so that no directory is ever created
   * through a symlink that leads outside the root. Returns the real directory path.
   */
  async #walkDir(base: string, dir: string, key: string): Promise<string> {
    const rel = relative(base, dir);
    let cur = base;
    if (rel === "") return cur;
    for (const seg of rel.split(sep)) {
      const next = join(cur, seg);
      try {
        await mkdir(next);
        cur = next;
        continue;
      } catch (err) {
        if (errCode(err) !== "EEXIST") throw err;
      }
      const st = await lstat(next);
      if (st.isSymbolicLink()) {
        cur = await this.#realInside(next, key);
        if (!(await stat(cur)).isDirectory()) throw keyConflict(key, next);
      } else if (st.isDirectory()) {
        cur = next;
      } else {
        throw keyConflict(key, next);
      }
    }
    return cur;
  }

  async #refuseDirectoryAt(path: string, key: string): Promise<void> {
    const st = await lstat(path).catch((err) => {
      if (isMissing(err)) return null;
      throw err;
    });
    if (st?.isDirectory()) throw keyConflict(key, path);
  }

  async #writeSidecar(key: string, sidecar: Sidecar): Promise<void> {
    const path = this.#metaPath(key);
    const bytes = new TextEncoder().encode(JSON.stringify(sidecar));
    await this.#inDir(
      this.#metaRoot,
      dirname(path),
      key,
      (dir) => writeFileAtomic(join(dir, basename(path)), bytes),
    );
  }

  /**
   * Creates a sidecar only where none exists (link(2) refuses to replace), so a cached etag
   * never overwrites the sidecar a concurrent put just wrote.
   */
  async #cacheSidecar(key: string, sidecar: Sidecar): Promise<void> {
    const path = this.#metaPath(key);
    const bytes = new TextEncoder().encode(JSON.stringify(sidecar));
    const [dir, staged] = await this.#inDir(
      this.#metaRoot,
      dirname(path),
      key,
      async (d) => [d, await stageFile(d, bytes)] as const,
    );
    try {
      await link(staged.tmpPath, join(dir, basename(path)));
    } catch (err) {
      if (errCode(err) !== "EEXIST") throw err;
    } finally {
      await staged.discard();
    }
  }

  async #readSidecar(key: string): Promise<Sidecar | null> {
    try {
      const parsed = JSON.parse(await readFile(this.#metaPath(key), "utf8"));
      if (parsed?.v === 1 && typeof parsed.etag === "string" && typeof parsed.size === "number") {
        return parsed as Sidecar;
      }
      return null;
    } catch {
      // Missing or torn sidecars are recomputed, never fatal.
      return null;
    }
  }

  async #info(key: string, real: string): Promise<ObjectInfo> {
    const st = await stat(real);
    const sidecar = await this.#readSidecar(key);
    if (sidecar && sidecarMatches(sidecar, st.ino, st.size)) {
      return {
        key,
        size: st.size,
        etag: sidecar.etag,
        lastModified: st.mtime,
        ...(sidecar.contentType ? { contentType: sidecar.contentType } : {}),
        ...(sidecar.metadata ? { metadata: sidecar.metadata } : {}),
      };
    }
    const etag = await md5File(real);
    const st2 = await stat(real);
    if (!sidecar && st2.ino === st.ino && st2.size === st.size) {
      await this.#cacheSidecar(key, { v: 1, etag, size: st.size, ino: st.ino }).catch(() => {});
    }
    return { key, size: st.size, etag, lastModified: st.mtime };
  }

  /** Depth-first walk in S3 key order, one directory listing in memory per level. */
  async *#walk(
    dir: string,
    keyPrefix: string,
    prefix: string,
    startAfter: string,
  ): AsyncIterable<ObjectInfo> {
    let entries: { name: string; sortKey: string; dir: boolean }[];
    try {
      const dirents = await readdir(dir, { withFileTypes: true });
      entries = [];
      for (const d of dirents) {
        if (d.name.startsWith(TEMP_PREFIX)) continue;
        if (keyPrefix === "" && d.name === META_DIR) continue;
        if (d.isDirectory()) entries.push({ name: d.name, sortKey: d.name + "/", dir: true });
        else if (d.isFile()) entries.push({ name: d.name, sortKey: d.name, dir: false });
      }
    } catch (err) {
      if (isMissing(err)) return; // removed by a concurrent delete
      throw err;
    }
    entries.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const e of entries) {
      const full = keyPrefix + e.sortKey;
      if (e.dir) {
        // Descend only where keys can both match the prefix and come after startAfter.
        if (!(prefix.startsWith(full) || full.startsWith(prefix))) continue;
        if (compareKeys(full, startAfter) < 0 && !startAfter.startsWith(full)) continue;
        yield* this.#walk(join(dir, e.name), full, prefix, startAfter);
      } else {
        if (!full.startsWith(prefix) || compareKeys(full, startAfter) <= 0) continue;
        try {
          validateKey(full);
        } catch {
          continue; // a file named so that get() would refuse it (made outside the store)
        }
        try {
          yield await this.#info(full, join(dir, e.name));
        } catch (err) {
          if (!isMissing(err)) throw err;
        }
      }
    }
  }
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf(sep) + 1);
}

function sidecarMatches(s: Sidecar, ino: number | null, size: number): boolean {
  return s.size === size && (s.ino === null || ino === null || s.ino === ino);
}

function keyConflict(key: string, path: string): SluiceError {
  return new SluiceError(
    "key_conflict",
    `object key ${JSON.stringify(key)}: expected ${path} to be free for a directory or object, ` +
      "found the other (a file store cannot hold both `a` and `a/b`)",
  );
}

async function md5File(path: string): Promise<string> {
  const hash = createHash("md5");
  const fh = await open(path, "r");
  try {
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest("hex");
}

/** Removes `dir` and its parents while empty, stopping at (and keeping) `stop`. */
async function removeEmptyDirs(dir: string, stop: string): Promise<void> {
  for (let d = dir; d !== stop && d.startsWith(stop + sep); d = dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return; // not empty, already gone, or not ours to remove
    }
  }
}

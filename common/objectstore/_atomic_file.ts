/**
 * Atomic local files: write to a hidden temp file in the target's own directory, fsync,
 * then rename over the target and fsync the directory, so a reader (or a crash) sees the
 * old file or the whole new one, never a prefix.
 * @module
 */
import { createHash, randomUUID } from "node:crypto";
import { type FileHandle, mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Temp files start with this; listings skip such names. */
export const TEMP_PREFIX = ".sluice-tmp-";

/** A fully written, fsynced temp file waiting to be renamed into place. */
export interface StagedFile {
  readonly tmpPath: string;
  readonly size: number;
  /** md5 hex of the content (S3's single-part ETag). */
  readonly md5: string;
  /** Inode of the temp file, kept by the rename; null where the OS does not report one. */
  readonly ino: number | null;
  readonly mtime: Date;
  /** Renames into `finalPath` (same directory) and fsyncs the directory. */
  commit(finalPath: string): Promise<void>;
  /** Removes the temp file; safe to call after a failed commit or twice. */
  discard(): Promise<void>;
}

export type FileBody = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** An open, empty temp file in its target directory. */
export interface TempFile {
  readonly dir: string;
  readonly tmpPath: string;
  readonly handle: FileHandle;
}

/**
 * Creates an empty temp file in `dir` (fails with ENOENT when `dir` is gone).
 *
 * @example
 * ```ts
 * const tmp = await createTemp("/data/out");
 * const staged = await stageFile(tmp, bytes);
 * ```
 */
export async function createTemp(dir: string): Promise<TempFile> {
  const tmpPath = join(dir, `${TEMP_PREFIX}${randomUUID()}`);
  return { dir, tmpPath, handle: await open(tmpPath, "wx", 0o644) };
}

/**
 * Writes `body` to a new temp file in `dir` (or into an already created one), hashing it on
 * the way. On any error the temp file is removed, an unread stream body is cancelled, and
 * the error rethrown.
 *
 * @example
 * ```ts
 * const staged = await stageFile("/data/out", bytes);
 * try { await staged.commit("/data/out/x.jpg"); } catch (e) { await staged.discard(); throw e; }
 * ```
 */
export async function stageFile(target: string | TempFile, body: FileBody): Promise<StagedFile> {
  let tmp: TempFile;
  try {
    tmp = typeof target === "string" ? await createTemp(target) : target;
  } catch (err) {
    await cancelUnread(body);
    throw err;
  }
  const { dir, tmpPath, handle: fh } = tmp;
  const hash = createHash("md5");
  let size = 0;
  let st: { ino: number; mtime: Date } | undefined;
  try {
    try {
      const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = body instanceof Uint8Array
        ? [body]
        : body;
      for await (const chunk of chunks) {
        hash.update(chunk);
        size += chunk.byteLength;
        let off = 0;
        while (off < chunk.byteLength) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
          off += bytesWritten;
        }
      }
      await fh.sync();
      st = await fh.stat();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await cancelUnread(body);
    await rm(tmpPath, { force: true });
    throw err;
  }
  const md5 = hash.digest("hex");
  const { ino, mtime } = st ?? { ino: 0, mtime: new Date() };
  return {
    tmpPath,
    size,
    md5,
    ino: Number.isFinite(ino) && ino > 0 ? ino : null,
    mtime,
    async commit(finalPath: string) {
      await rename(tmpPath, finalPath);
      await syncDir(dir);
    },
    async discard() {
      await rm(tmpPath, { force: true });
    },
  };
}

/**
 * Cancels a stream body nobody has started reading, so that the file or socket behind it
 * is released when a write fails before reading it.
 *
 * @example
 * ```ts
 * await cancelUnread(file.readable);
 * ```
 */
export async function cancelUnread(body: FileBody): Promise<void> {
  if (body instanceof ReadableStream && !body.locked) await body.cancel().catch(() => {});
}

/**
 * Makes a directory's entries (a rename, a new file) durable.
 *
 * @example
 * ```ts
 * await syncDir("/data/out");
 * ```
 */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes `body` to `path` atomically (temp + fsync + rename + dir fsync), creating the
 * parent directory if needed.
 *
 * @example
 * ```ts
 * const { size, md5 } = await writeFileAtomic("/tmp/out.bin", stream);
 * ```
 */
export async function writeFileAtomic(path: string, body: FileBody): Promise<StagedFile> {
  await mkdir(dirname(path), { recursive: true }).catch(async (err) => {
    await cancelUnread(body);
    throw err;
  });
  const staged = await stageFile(dirname(path), body);
  try {
    await staged.commit(path);
  } catch (err) {
    await staged.discard();
    throw err;
  }
  return staged;
}

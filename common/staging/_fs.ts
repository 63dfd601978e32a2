// Small filesystem helpers shared by the staging files.
import { lstat, readdir, statfs } from "node:fs/promises";
import { join } from "node:path";

/** Writes every byte: `FsFile.write` may write less than asked (a nearly full disk does). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) {
    off += await file.write(bytes.subarray(off));
  }
}

/** Makes a rename or unlink in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const f = await Deno.open(dir, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

/** What the free-space checks read from `statfs(2)` (tests inject a full disk through it). */
export type StatFs = (path: string) => Promise<{ bavail: number; bsize: number }>;

/** Bytes available to unprivileged writers on the filesystem holding `path`. */
export async function availableBytes(path: string, stat: StatFs = statfs): Promise<number> {
  const s = await stat(path);
  return s.bavail * s.bsize;
}

/** Total size of the regular files under `dir` (0 when it does not exist). Links are not followed. */
export async function treeBytes(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isNotFound(err)) return 0;
    throw err;
  }
  let total = 0;
  for (const e of entries) {
    const p = join(dir, e.name);
    try {
      if (e.isDirectory()) total += await treeBytes(p);
      else if (e.isFile()) total += (await lstat(p)).size;
    } catch (err) {
      // Released concurrently: it no longer counts.
      if (!isNotFound(err)) throw err;
    }
  }
  return total;
}

export function errorCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || errorCode(err) === "ENOENT";
}

export function isNoSpace(err: unknown): boolean {
  const code = errorCode(err);
  return code === "ENOSPC" || code === "EDQUOT" ||
    (err instanceof Error && /\(os error (28|122)\)/.test(err.message));
}

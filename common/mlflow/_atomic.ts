/**
 * Crash- and race-safe file writes for the file store and for downloads: readers see the old file
 * or the whole new one, never a torn one. Temporary files live in a caller-chosen directory on the
 * same filesystem (so the final rename is atomic) where MLflow's readers do not look.
 * @module
 */
import { dirname, join } from "node:path";

const TMP_PREFIX = ".sluice-tmp-";

/** A fresh temporary path inside `dir`. */
export function tempPath(dir: string): string {
  return join(dir, `${TMP_PREFIX}${crypto.randomUUID()}`);
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * Runs `write(tmp)` on a fresh temporary path in `tmpDir`, then renames it to `path`; on failure
 * the temporary file is removed and the error rethrown.
 */
async function viaTemp(
  path: string,
  tmpDir: string,
  write: (tmp: string) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tempPath(tmpDir);
  try {
    await write(tmp);
    await Deno.rename(tmp, path);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
}

/** Writes `data` to `path` through a temporary file in `tmpDir` (default: `path`'s directory). */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  tmpDir: string = dirname(path),
): Promise<void> {
  await viaTemp(path, tmpDir, async (tmp) => {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
  });
}

/**
 * Creates `path` with `data` only if it does not exist yet, atomically: the content is written to a
 * temporary file and hard-linked into place (`link` fails when the target exists, on every local
 * filesystem). Returns false when the file already existed (its content is left untouched).
 */
export async function createFileExclusive(
  path: string,
  data: string,
  tmpDir: string = dirname(path),
): Promise<boolean> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tempPath(tmpDir);
  await Deno.writeTextFile(tmp, data);
  try {
    await Deno.link(tmp, path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw err;
  } finally {
    await removeQuietly(tmp);
  }
}

/** Streams `body` into `path` through a temporary file beside it. */
export async function writeStreamAtomic(
  path: string,
  body: ReadableStream<Uint8Array>,
): Promise<void> {
  await viaTemp(path, dirname(path), async (tmp) => {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    await body.pipeTo(file.writable);
  });
}

/** Copies a file to `dest` through a temporary file in `tmpDir` (default: `dest`'s directory). */
export async function copyFileAtomic(
  src: string,
  dest: string,
  tmpDir: string = dirname(dest),
): Promise<void> {
  await viaTemp(dest, tmpDir, (tmp) => Deno.copyFile(src, tmp));
}

/** Whether a directory entry is one of our temporary files (skipped by listings). */
export function isTempName(name: string): boolean {
  return name.startsWith(TMP_PREFIX);
}

/**
 * Every file under `dir`, as sorted relative POSIX paths, depth-first with a directory's entries
 * in name order (so uploads happen in a stable, predictable order).
 */
export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(rel ? join(dir, rel) : dir)) entries.push(e);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (isTempName(e.name)) continue;
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await visit(child);
      else if (e.isFile) out.push(child);
    }
  };
  await visit("");
  return out;
}

/**
 * Artifacts under a `file://` root: the file store's own, and a tracking server's local artifact
 * store when it shares this host (MLflow's Python client copies files there directly, too).
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { copyFileAtomic, isTempName, walkFiles } from "./_atomic.ts";
import { ArtifactNotFoundError, MlflowError } from "./errors.ts";
import { artifactPathSegments } from "./model_uri.ts";
import type { ArtifactEntry } from "./tracker.ts";

/** The local path of a `file://` URI (or of a plain absolute path). */
export function fileUriToPath(uri: string): string {
  if (uri.startsWith("file:")) {
    return fileURLToPath(uri.startsWith("file://") ? uri : `file://${uri.slice(5)}`);
  }
  if (uri.startsWith("/")) return uri;
  throw new MlflowError(`artifact location ${JSON.stringify(uri)}: expected a file:// URI`, {
    errorCode: "INVALID_PARAMETER_VALUE",
  });
}

/** `root` joined with a checked artifact-relative path. */
export function localArtifactPath(root: string, relPath: string): string {
  return join(root, ...artifactPathSegments(relPath));
}

/** Direct children of `relPath` under `root`, as run-relative entries; [] when absent. */
export async function listLocal(root: string, relPath: string): Promise<ArtifactEntry[]> {
  const segs = artifactPathSegments(relPath);
  const dir = join(root, ...segs);
  const prefix = segs.join("/");
  const out: ArtifactEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (isTempName(e.name)) continue;
      const path = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory) {
        out.push({ path, isDir: true });
      } else if (e.isFile) {
        const { size } = await Deno.stat(join(dir, e.name));
        out.push(size > 0 ? { path, isDir: false, fileSize: size } : { path, isDir: false });
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return [];
    throw err;
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Copies one local artifact file to `dest` (atomically). */
export async function downloadLocalFile(src: string, dest: string, label: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(src);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new ArtifactNotFoundError(label, { cause: err });
    throw err;
  }
  if (!info.isFile) throw new ArtifactNotFoundError(label);
  await copyFileAtomic(src, dest);
  return dest;
}

/** Copies a local artifact directory tree into `destDir`; [] when `srcDir` is not a directory. */
export async function downloadLocalTree(srcDir: string, destDir: string): Promise<string[]> {
  try {
    if (!(await Deno.stat(srcDir)).isDirectory) return [];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  const files = await walkFiles(srcDir);
  for (const rel of files) {
    const dest = join(destDir, ...rel.split("/"));
    await Deno.mkdir(dirname(dest), { recursive: true });
    await copyFileAtomic(join(srcDir, ...rel.split("/")), dest);
  }
  return files;
}

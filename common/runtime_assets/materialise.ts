/**
 * Writes a set of files a binary carries (native libraries, the Python trainer) as real files into
 * a versioned, content-addressed directory of the runtime cache, once, and reuses it afterwards.
 *
 * The sources are read with `Deno.readFileSync`, which also reads the files a compiled binary
 * embeds (`deno compile --include`, npm packages); other programs (the dynamic loader, `python3`)
 * cannot read those, which is why they are copied out. The directory name is
 * `<name>-<sha256 of paths and contents>`, so a new build with other bytes gets a new directory and
 * an unchanged one reuses the old. Writing is atomic: files go to a private temporary directory
 * (fsynced, with a `.complete` record written last), which is renamed into place; when two
 * processes race, one rename wins and the other discards its copy and uses the winner's.
 *
 * Synchronous on purpose: native addons must be in place before the module that loads them is
 * evaluated, and module evaluation cannot wait for a promise of a sibling module.
 *
 * @example
 * ```ts
 * const dir = materialiseFiles({
 *   cacheDir: "/var/cache/sluice",
 *   name: "trainer",
 *   files: [{ from: "/app/stages/train/trainer/train.py", to: "train.py" }],
 * });
 * // dir = "/var/cache/sluice/trainer-3f2a…", holding train.py
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import { SluiceError } from "../errors/mod.ts";

/** Bump when the layout of a materialised directory changes (it is part of the hash). */
export const CACHE_FORMAT = 1;

/** Where fingerprints of already materialised sources point to their directories. */
export const INDEX_DIR = ".index";

/** The record written last into a complete directory. */
export const COMPLETE_FILE = ".complete";

/** One file to materialise. */
export interface AssetFile {
  /** Where to read it (a real path, or a path inside a compiled binary's embedded files). */
  from: string;
  /** Relative path inside the materialised directory. */
  to: string;
  /** File mode (default 0o644). */
  mode?: number;
}

/** What to materialise. */
export interface AssetSpec {
  /** Runtime cache root. */
  cacheDir: string;
  /** Directory name prefix, e.g. `sharp-0.35.5-linux-x64` (letters, digits, `.`, `_`, `-`). */
  name: string;
  files: readonly AssetFile[];
}

/** What {@link materialiseFiles} did. */
export interface MaterialisedAsset {
  /** The complete directory. */
  dir: string;
  /** True when this call wrote it, false when it was already there (or another process won). */
  written: boolean;
}

interface CompleteRecord {
  format: number;
  name: string;
  files: { path: string; size: number }[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkSpec(spec: AssetSpec): void {
  if (!NAME.test(spec.name)) {
    throw new SluiceError(
      "runtime_asset_invalid",
      `runtime asset name "${spec.name}": expected 1-128 of A-Z a-z 0-9 . _ -`,
    );
  }
  if (spec.files.length === 0) {
    throw new SluiceError(
      "runtime_asset_invalid",
      `runtime asset ${spec.name}: expected at least one file, found none`,
    );
  }
  const seen = new Set<string>();
  for (const f of spec.files) {
    const rel = normalize(f.to);
    if (isAbsolute(rel) || rel === ".." || rel.startsWith(`..${sep}`) || rel === COMPLETE_FILE) {
      throw new SluiceError(
        "runtime_asset_invalid",
        `runtime asset ${spec.name}: file "${f.to}" must be a relative path inside the directory`,
      );
    }
    if (seen.has(rel)) {
      throw new SluiceError(
        "runtime_asset_invalid",
        `runtime asset ${spec.name}: file "${f.to}" is listed twice`,
      );
    }
    seen.add(rel);
  }
}

function readSource(spec: AssetSpec, f: AssetFile): Uint8Array {
  try {
    return Deno.readFileSync(f.from);
  } catch (err) {
    throw new SluiceError(
      "runtime_asset_missing",
      `runtime asset ${spec.name}: cannot read ${f.from} (for ${f.to}): ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
}

/** Reads a complete directory's record; undefined when absent, unreadable or not matching. */
function readComplete(dir: string): CompleteRecord | undefined {
  let record: CompleteRecord;
  try {
    record = JSON.parse(Deno.readTextFileSync(join(dir, COMPLETE_FILE)));
  } catch {
    return undefined;
  }
  if (record?.format !== CACHE_FORMAT || !Array.isArray(record.files)) return undefined;
  for (const f of record.files) {
    try {
      if (Deno.statSync(join(dir, f.path)).size !== f.size) return undefined;
    } catch {
      return undefined;
    }
  }
  return record;
}

function writeDurably(path: string, data: Uint8Array, mode: number): void {
  const fd = openSync(path, "wx", mode);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  Deno.chmodSync(path, mode);
}

function errorCode(err: unknown): string | undefined {
  return (err as { code?: string })?.code;
}

/**
 * Materialises `spec` (see the module doc) and returns its directory. Throws a SluiceError naming
 * the file when a source cannot be read or the cache cannot be written.
 */
export function materialiseFiles(spec: AssetSpec): MaterialisedAsset {
  checkSpec(spec);
  const files = [...spec.files].map((f) => ({ ...f, to: normalize(f.to) }))
    .sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
  const identity = sourceIdentity(spec, files);
  const known = identity === undefined ? undefined : lookUp(spec.cacheDir, identity);
  if (known) return { dir: known, written: false };
  const result = materialiseContents(spec, files);
  if (identity !== undefined) remember(spec.cacheDir, identity, result.dir);
  return result;
}

/**
 * A cheap fingerprint of the sources (paths, sizes, modification times; in a compiled binary also
 * the binary's own), so that a start whose sources have not changed finds its directory through
 * `<cache>/.index/` without reading and hashing tens of megabytes. Undefined when a source cannot
 * be stat'ed (the full path then reports it).
 */
function sourceIdentity(spec: AssetSpec, files: readonly AssetFile[]): string | undefined {
  const h = createHash("sha256");
  h.update(`${CACHE_FORMAT}\0${spec.name}\0`);
  try {
    if (Deno.build.standalone) {
      const exe = Deno.statSync(Deno.execPath());
      h.update(`exe\0${Deno.execPath()}\0${exe.size}\0${exe.mtime?.getTime()}\0`);
    }
    for (const f of files) {
      const st = Deno.statSync(f.from);
      h.update(
        `${f.from}\0${f.to}\0${f.mode ?? 0o644}\0${st.size}\0${st.mtime?.getTime()}\0` +
          `${st.ctime?.getTime()}\0`,
      );
    }
  } catch {
    return undefined;
  }
  return h.digest("hex").slice(0, 32);
}

function lookUp(cacheDir: string, identity: string): string | undefined {
  try {
    const name = Deno.readTextFileSync(join(cacheDir, INDEX_DIR, identity)).trim();
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return undefined;
    const dir = join(cacheDir, name);
    return readComplete(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

function remember(cacheDir: string, identity: string, dir: string): void {
  try {
    const index = join(cacheDir, INDEX_DIR);
    Deno.mkdirSync(index, { recursive: true });
    const tmp = join(index, `.tmp-${identity}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
    Deno.writeTextFileSync(tmp, `${dir.split("/").pop()}\n`);
    Deno.renameSync(tmp, join(index, identity));
  } catch {
    // Only a shortcut: the next start hashes the sources again.
  }
}

function materialiseContents(spec: AssetSpec, files: readonly AssetFile[]): MaterialisedAsset {
  const contents = files.map((f) => readSource(spec, f));
  const hash = createHash("sha256");
  hash.update(`sluice-runtime-asset\0${CACHE_FORMAT}\0${spec.name}\0`);
  files.forEach((f, i) => {
    hash.update(`${f.to}\0${f.mode ?? 0o644}\0${contents[i].length}\0`);
    hash.update(contents[i]);
  });
  const dir = join(spec.cacheDir, `${spec.name}-${hash.digest("hex").slice(0, 24)}`);
  if (readComplete(dir)) return { dir, written: false };

  const tmp = join(
    spec.cacheDir,
    `.tmp-${spec.name}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
  );
  try {
    Deno.mkdirSync(tmp, { recursive: true });
  } catch (err) {
    throw new SluiceError(
      "runtime_cache_unwritable",
      `runtime cache ${spec.cacheDir}: cannot create ${tmp}: ${
        err instanceof Error ? err.message : String(err)
      } (set runtime.cacheDir / SLUICE_RUNTIME_CACHE_DIR to a writable directory)`,
      { cause: err },
    );
  }
  try {
    files.forEach((f, i) => {
      const path = join(tmp, f.to);
      Deno.mkdirSync(dirname(path), { recursive: true });
      writeDurably(path, contents[i], f.mode ?? 0o644);
    });
    const record: CompleteRecord = {
      format: CACHE_FORMAT,
      name: spec.name,
      files: files.map((f, i) => ({ path: f.to, size: contents[i].length })),
    };
    writeDurably(join(tmp, COMPLETE_FILE), new TextEncoder().encode(JSON.stringify(record)), 0o644);
    try {
      Deno.renameSync(tmp, dir);
      return { dir, written: true };
    } catch (err) {
      const code = errorCode(err);
      if (
        code !== "ENOTEMPTY" && code !== "EEXIST" && !(err instanceof Deno.errors.AlreadyExists)
      ) {
        throw err;
      }
      // Another process renamed its copy into place first: use it, if it is whole.
      if (readComplete(dir)) return { dir, written: false };
      // A directory without a valid record (a copy made by hand, a disk fault): move it aside,
      // then put ours in place.
      const aside = `${tmp}-broken`;
      Deno.renameSync(dir, aside);
      Deno.removeSync(aside, { recursive: true });
      Deno.renameSync(tmp, dir);
      return { dir, written: true };
    }
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new SluiceError(
      "runtime_cache_unwritable",
      `runtime asset ${spec.name}: cannot write ${dir}: ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  } finally {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch {
      // Renamed into place, or never created.
    }
  }
}

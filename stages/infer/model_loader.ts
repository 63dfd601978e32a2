/**
 * Fetching a model's files into the local (NVMe) cache and loading them: each version lives in
 * `<staging root>/models/<name>/<version>/`, downloaded once into a temporary directory beside
 * it and renamed into place whole, so a crash or a concurrent worker never leaves a half-written
 * model where a complete one is expected. `.sluice-model.json` inside marks it complete.
 *
 * Sources: the MLflow registry or a run (`models:/…`, `runs:/…`, through the tracker), an S3
 * prefix or `.onnx` object (`s3://…`), or a local directory or `.onnx` file (`file://…`). For
 * s3:// and file:// the version is `sha-<12 hex>` of the ONNX file: content decides.
 *
 * @example
 * ```ts
 * const fetched = await fetchModel(source, { root: staging.root, tracker, log });
 * const model = await loadModel(fetched, { provider: "auto", log });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { messageOf, SluiceError } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { Tracker } from "../../common/mlflow/mod.ts";
import { openObjectStore, type OpenOptions } from "../../common/objectstore/mod.ts";
import { safeFileName } from "../../common/staging/mod.ts";
import type { ExecutionProviderChoice } from "./config.ts";
import { DetectorSession } from "./detector_session.ts";
import type { LoadedModel } from "./inference_engine.ts";
import { detectorSpec } from "./model_card.ts";
import { describeModel, type ModelRef, type ModelSource } from "./model_resolver.ts";
import { cacheVersion } from "./model_registry.ts";
import { assertAllowedModelSource } from "./model_sources.ts";

/** Marks a complete cached model directory. */
export const MODEL_MARKER = ".sluice-model.json";
const SIBLINGS = ["model_card.json", "labels.json"];

/** A model's files on local disk. */
export interface FetchedModel {
  ref: ModelRef;
  /** `<root>/models/<name>/<version>`. */
  dir: string;
  onnxPath: string;
  cardPath: string | null;
  labelsPath: string | null;
  /** True when the files were already cached. */
  cached: boolean;
}

export interface FetchOptions {
  /** Staging root (the cache is `<root>/models/`). */
  root: string;
  /** Needed for `models:/` and `runs:/` sources (`resolveModelUri` to check where they point). */
  tracker?: Pick<Tracker, "downloadModel"> & Partial<Pick<Tracker, "resolveModelUri">>;
  /** S3 settings for `s3://` sources. */
  s3?: OpenOptions["s3"];
  /** Prefixes `s3://` and `file://` sources must lie under (see `model_sources.ts`). */
  allowedSources?: readonly string[];
  log?: Logger;
}

/** The model's files are missing or unusable. */
export class ModelFetchError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super("model_fetch_failed", message, options);
    this.name = "ModelFetchError";
  }
}

const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** A directory name for a model name or version: itself when safe, else a hashed safe form. */
function segment(s: string): string {
  return SAFE_SEGMENT.test(s) ? s : safeFileName(s);
}

/**
 * `<root>/models/<name>/<version>`.
 *
 * @example
 * ```ts
 * modelCacheDir("/mnt/nvme/sluice", "sluice-detector", "3"); // "/mnt/nvme/sluice/models/sluice-detector/3"
 * ```
 */
export function modelCacheDir(root: string, name: string, version: string): string {
  return join(root, "models", segment(name), segment(version));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function walk(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    if (e.name.startsWith(".")) continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...await walk(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

async function sha256File(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

/** Where the ONNX file and its card / labels are inside a downloaded model directory. */
async function locate(dir: string, what: string) {
  const files = await walk(dir);
  const onnx = files.filter((f) => f.endsWith(".onnx"));
  const pick = onnx.find((f) => basename(f) === "model.onnx") ??
    (onnx.length === 1 ? onnx[0] : undefined);
  if (!pick) {
    throw new ModelFetchError(
      `${what}: expected one .onnx file (or a model.onnx), found ${
        onnx.length ? onnx.join(", ") : "none"
      } among ${files.length} file(s)`,
    );
  }
  const find = (name: string) => {
    const beside = join(dirname(pick), name).replace(/^\.\//, "");
    const hit = files.find((f) => f === beside) ?? files.find((f) => basename(f) === name);
    return hit ? join(dir, hit) : null;
  };
  return {
    onnxPath: join(dir, pick),
    cardPath: find("model_card.json"),
    labelsPath: find("labels.json"),
  };
}

async function downloadInto(source: ModelSource, tmp: string, opts: FetchOptions): Promise<void> {
  const uri = source.uri;
  if (uri.startsWith("models:/") || uri.startsWith("runs:/")) {
    if (!opts.tracker) {
      throw new ModelFetchError(`${uri}: expected an MLflow tracker to download it`);
    }
    if (opts.allowedSources && opts.tracker.resolveModelUri) {
      // A registered version names its own location: check it before reading it.
      const resolved = await opts.tracker.resolveModelUri(uri);
      assertAllowedModelSource(resolved.artifactUri, opts.allowedSources);
    }
    await opts.tracker.downloadModel(uri, tmp);
    return;
  }
  if (uri.startsWith("file://")) {
    const path = fileURLToPath(uri);
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      throw new ModelFetchError(`${uri}: expected a model file or directory, found nothing`, {
        cause: err,
      });
    }
    if (st.isDirectory()) {
      for (const rel of await walk(path)) {
        await mkdir(dirname(join(tmp, rel)), { recursive: true });
        await copyFile(join(path, rel), join(tmp, rel));
      }
    } else {
      await copyFile(path, join(tmp, basename(path)));
      for (const name of SIBLINGS) {
        const p = join(dirname(path), name);
        if (await exists(p)) await copyFile(p, join(tmp, name));
      }
    }
    return;
  }
  if (uri.startsWith("s3://")) {
    const single = uri.endsWith(".onnx");
    const base = single ? uri.slice(0, uri.lastIndexOf("/")) : uri.replace(/\/+$/, "");
    const store = await openObjectStore(base, { s3: opts.s3 });
    try {
      const keys: string[] = [];
      if (single) {
        keys.push(uri.slice(base.length + 1));
        for (const name of SIBLINGS) if (await store.head(name)) keys.push(name);
      } else {
        for await (const o of store.list()) keys.push(o.key);
      }
      for (const key of keys) {
        await mkdir(dirname(join(tmp, key)), { recursive: true });
        await store.download(key, join(tmp, key));
      }
    } finally {
      await store.close();
    }
    return;
  }
  throw new ModelFetchError(`${uri}: expected a models:/, runs:/, s3:// or file:// URI`);
}

async function readMarker(dir: string): Promise<ModelRef | null> {
  try {
    const m = JSON.parse(await readFile(join(dir, MODEL_MARKER), "utf8")) as { ref?: ModelRef };
    return m.ref ?? null;
  } catch {
    return null;
  }
}

/**
 * Puts the model's files into the cache (or finds them there) and returns where they are.
 *
 * @example
 * ```ts
 * const f = await fetchModel({ name: "det", version: "3", uri: "models:/det/3", ... }, { root, tracker });
 * f.onnxPath; // <root>/models/det/3/model.onnx
 * ```
 */
export async function fetchModel(source: ModelSource, opts: FetchOptions): Promise<FetchedModel> {
  if (opts.allowedSources) assertAllowedModelSource(source.uri, opts.allowedSources);
  const hit = async (ref: ModelRef, dir: string): Promise<FetchedModel | null> => {
    if (!(await readMarker(dir))) return null;
    return { ref, dir, ...await locate(dir, describeModel(ref)), cached: true };
  };
  if (source.version !== null) {
    const dir = modelCacheDir(opts.root, source.name, cacheVersion(source, source.version));
    const cached = await hit({ ...source, version: source.version }, dir);
    if (cached) return cached;
  }
  const parent = join(opts.root, "models", segment(source.name));
  await mkdir(parent, { recursive: true });
  const rand = Array.from(
    crypto.getRandomValues(new Uint8Array(6)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  const tmp = join(parent, `.tmp-${rand}`);
  await mkdir(tmp);
  try {
    try {
      await downloadInto(source, tmp, opts);
    } catch (err) {
      if (err instanceof ModelFetchError) throw err;
      throw new ModelFetchError(`${describeModel(source)}: download failed: ${messageOf(err)}`, {
        cause: err,
      });
    }
    const found = await locate(tmp, describeModel(source));
    const version = source.version ?? `sha-${(await sha256File(found.onnxPath)).slice(0, 12)}`;
    const ref: ModelRef = { ...source, version };
    const dir = modelCacheDir(opts.root, source.name, cacheVersion(source, version));
    const cached = await hit(ref, dir);
    if (cached) return cached;
    await writeFile(
      join(tmp, MODEL_MARKER),
      JSON.stringify({
        ref,
        onnx: relative(tmp, found.onnxPath),
        fetchedAt: new Date().toISOString(),
      }) +
        "\n",
    );
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another worker on this host finished the same version first: use its copy.
      const other = await hit(ref, dir);
      if (other) return other;
      throw err;
    }
    opts.log?.info("model fetched", { model: describeModel(ref), dir });
    return { ref, dir, ...await locate(dir, describeModel(ref)), cached: false };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function readJson(path: string | null): Promise<unknown | null> {
  if (path === null) return null;
  const text = await readFile(path, "utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFetchError(`${path}: expected JSON, found ${messageOf(err)}`);
  }
}

export interface LoadOptions {
  provider?: ExecutionProviderChoice;
  intraOpThreads?: number;
  interOpThreads?: number;
  log?: Logger;
}

/**
 * Opens a session on a fetched model and checks it against its card.
 *
 * @example
 * ```ts
 * const model = await loadModel(fetched, { provider: "cpu", intraOpThreads: 2 });
 * model.spec.labels; // from model_card.json
 * ```
 */
export async function loadModel(
  fetched: FetchedModel,
  opts: LoadOptions = {},
): Promise<LoadedModel> {
  const card = await readJson(fetched.cardPath);
  const labels = await readJson(fetched.labelsPath);
  const session = await DetectorSession.open(fetched.onnxPath, opts);
  try {
    const spec = detectorSpec(card, labels, session.graph);
    opts.log?.info("model loaded", {
      model: describeModel(fetched.ref),
      provider: session.provider,
      input: `${spec.inputWidth}x${spec.inputHeight}`,
      labels: spec.labels,
      cached: fetched.cached,
    });
    return { ref: fetched.ref, spec, session, dir: fetched.dir };
  } catch (err) {
    await session.close();
    throw err;
  }
}

/**
 * Fixtures for the infer tests: real ONNX detectors built with /usr/bin/python3 + torch
 * (`testdata/make_models.py`), real encoded images with one known red box, ingested images
 * recorded through the real manifest (as ingest records them), models registered in a real
 * MLflow file store, and test configurations.
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { loadConfig } from "../../common/config/mod.ts";
import type { BBox, ManifestStore } from "../../common/manifest/mod.ts";
import type { Tracker } from "../../common/mlflow/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { type InferConfig, InferSettingsSchema } from "./config.ts";

const PYTHON = "/usr/bin/python3";
const MAKE_MODELS = fileURLToPath(new URL("./testdata/make_models.py", import.meta.url));

/** Whether Debian's python3 with torch is installed (the model builder needs it). */
export function torchAvailable(): boolean {
  try {
    Deno.statSync(PYTHON);
    Deno.statSync("/usr/lib/python3/dist-packages/torch");
    return true;
  } catch {
    return false;
  }
}

/** `ignore` for tests that need torch: skipped without it, except under CI=true (then they fail). */
export const NEEDS_TORCH = !torchAvailable() && Deno.env.get("CI") !== "true";

/**
 * Builds a detector with `make_models.py` into `dir` (model.onnx, model_card.json, labels.json,
 * and model.pt for `centernet`).
 */
export async function buildModel(
  kind: "boxfinder" | "centernet",
  dir: string,
  opts: { size?: number; classes?: number; width?: number } = {},
): Promise<string> {
  const args = [MAKE_MODELS, kind, "--out", dir];
  if (opts.size) args.push("--size", String(opts.size));
  if (kind === "centernet" && opts.classes) args.push("--classes", String(opts.classes));
  if (kind === "centernet" && opts.width) args.push("--width", String(opts.width));
  const out = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `make_models.py ${kind}: exit ${out.code}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return dir;
}

/** A grey gradient with a checker (R = G everywhere) and one pure red box at integer pixels. */
export function drawRedBox(width: number, height: number, box: BBox | null): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = 60 + Math.round((110 * (x + y)) / (width + height)) +
        ((((x >> 3) ^ (y >> 3)) & 1) ? 20 : 0);
      const i = (y * width + x) * 3;
      data[i] = data[i + 1] = data[i + 2] = v;
    }
  }
  if (box) {
    const [bx, by, bw, bh] = box;
    for (let y = by; y < by + bh; y++) {
      for (let x = bx; x < bx + bw; x++) {
        const i = (y * width + x) * 3;
        data[i] = 255;
        data[i + 1] = 0;
        data[i + 2] = 0;
      }
    }
  }
  return data;
}

/** Encodes RGB as PNG or JPEG (q95, 4:4:4 so colour edges stay sharp). */
export async function encode(
  rgb: Uint8Array,
  width: number,
  height: number,
  format: "png" | "jpeg",
): Promise<Uint8Array> {
  let p = sharp(rgb, { raw: { width, height, channels: 3 } });
  p = format === "png" ? p.png() : p.jpeg({ quality: 95, chromaSubsampling: "4:4:4" });
  return new Uint8Array(await p.toBuffer());
}

/** A JPEG cut short: the header parses, the data does not. */
export async function corruptJpeg(width: number, height: number): Promise<Uint8Array> {
  const full = await encode(drawRedBox(width, height, [5, 5, 20, 20]), width, height, "jpeg");
  const cut = full.slice(0, Math.floor(full.length / 3));
  // Garbage where the entropy-coded data continues, so the decoder fails rather than pads.
  return new Uint8Array([...cut, ...new Uint8Array(64).fill(0x5a)]);
}

/** sha256 hex of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What {@link seedIngested} recorded. */
export interface SeededImage {
  id: string;
  key: string;
  datasetUri: string;
  sourceUri: string;
}

/**
 * Records an image the way ingest does (source row, a claimed `ingest` item completed with the
 * image's hash, size, dimensions and dataset URI) and writes the dataset object. Call it for one
 * image at a time.
 */
export async function seedIngested(
  manifest: ManifestStore,
  store: ObjectStore,
  opts: { name: string; bytes: Uint8Array; format: "png" | "jpeg"; width: number; height: number },
): Promise<SeededImage> {
  const sha256 = sha256Hex(opts.bytes);
  const ext = opts.format === "png" ? "png" : "jpg";
  const key = `images/${sha256.slice(0, 2)}/${sha256}.${ext}`;
  await store.put(key, opts.bytes);
  const sourceUri = `s3://raw/${opts.name}`;
  const up = await manifest.upsertSourceObject({ sourceUri, sourceKey: opts.name, etag: sha256 });
  const claims = await manifest.claim("ingest", { max: 1, leaseMs: 60_000, owner: "seed" });
  if (claims.length !== 1 || claims[0].itemId !== up.image.id) {
    throw new Error(
      `seed ${opts.name}: expected to claim ${up.image.id}, found ${JSON.stringify(claims)}`,
    );
  }
  const datasetUri = store.uriFor(key);
  await manifest.complete(claims[0], {
    image: {
      status: "ingested",
      sha256,
      size: opts.bytes.byteLength,
      width: opts.width,
      height: opts.height,
      format: opts.format,
      datasetUri,
    },
  });
  return { id: up.image.id, key, datasetUri, sourceUri };
}

/**
 * Registers `modelDir` as a new version of `name` in the tracker (a run with the files under
 * `model/`, registered from `runs:/<run>/model`); returns the version.
 */
export async function registerModel(
  tracker: Tracker,
  name: string,
  modelDir: string,
): Promise<string> {
  const exp = await tracker.getOrCreateExperiment("sluice-infer-test");
  const run = await tracker.createRun(exp, { runName: `train-${name}` });
  await tracker.logArtifacts(run.runId, modelDir, "model");
  await tracker.updateRun(run.runId, "FINISHED");
  await tracker.getOrCreateRegisteredModel(name);
  return await tracker.createModelVersion(name, `runs:/${run.runId}/model`, run.runId);
}

/** A configuration with everything under `dir` (SQLite manifest, files store, file tracker). */
export async function testConfig(
  dir: string,
  env: Record<string, string> = {},
): Promise<InferConfig> {
  return await loadConfig({
    stage: "infer",
    stageSchema: InferSettingsSchema,
    cwd: dir,
    hostname: "test",
    pid: 1,
    env: {
      SLUICE_MANIFEST_URL: `sqlite://${join(dir, "manifest.db")}`,
      SLUICE_OBJECT_STORE_URL: join(dir, "objects"),
      SLUICE_STAGING_ROOT: join(dir, "nvme"),
      SLUICE_STAGING_MIN_FREE_MB: "0",
      SLUICE_MLFLOW_LOCAL_DIR: join(dir, "mlruns"),
      SLUICE_MLFLOW_MODEL_NAME: "det",
      SLUICE_HTTP_PORT: "0",
      SLUICE_LOG_LEVEL: "warn",
      SLUICE_WORKER_IDLE_POLL_MS: "50",
      ...env,
    },
  });
}

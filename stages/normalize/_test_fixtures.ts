/**
 * Fixtures for the normalize tests: real encoded images drawn with known coloured boxes, a
 * decompression-bomb PNG header, ingested images recorded through the real manifest (as ingest
 * records them), an object store decorator that counts writes, and test configurations.
 * @module
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { loadConfig } from "../../common/config/mod.ts";
import { createLogger, type Logger } from "../../common/log/mod.ts";
import type { BBox, ManifestStore } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { VariantSpecInput } from "../../common/images/variant_spec.ts";
import { findColouredBox } from "../../common/images/_test_images.ts";
import { type NormalizeConfig, NormalizeSettingsSchema } from "./config.ts";

/** Interleaved 8-bit RGB. */
export interface Rgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A grey (R = G = B) gradient with a checker, with saturated red rectangles drawn on it. */
export function drawImage(width: number, height: number, redBoxes: BBox[] = []): Rgb {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = 50 + Math.round((120 * (x + y)) / (width + height)) +
        ((((x >> 4) ^ (y >> 4)) & 1) ? 16 : 0);
      const i = (y * width + x) * 3;
      data[i] = data[i + 1] = data[i + 2] = v;
    }
  }
  for (const [bx, by, bw, bh] of redBoxes) {
    for (let y = by; y < by + bh; y++) {
      for (let x = bx; x < bx + bw; x++) {
        const i = (y * width + x) * 3;
        data[i] = 230;
        data[i + 1] = 20;
        data[i + 2] = 20;
      }
    }
  }
  return { data, width, height };
}

/** Encodes drawn pixels: JPEG q95 4:4:4 (sharp colour edges) or PNG; optional EXIF orientation. */
export async function encodeImage(
  img: Rgb,
  format: "jpeg" | "png" = "jpeg",
  orientation?: number,
): Promise<Uint8Array> {
  let p = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  p = format === "jpeg" ? p.jpeg({ quality: 95, chromaSubsampling: "4:4:4" }) : p.png();
  if (orientation) p = p.withMetadata({ orientation });
  return new Uint8Array(await p.toBuffer());
}

/** Decodes any encoded image to RGB. */
export async function decodeImage(bytes: Uint8Array): Promise<Rgb> {
  const { data, info } = await sharp(bytes).toColourspace("srgb").removeAlpha().raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** The pixel at (x, y). */
export function pixelAt(img: Rgb, x: number, y: number): [number, number, number] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

/**
 * Where the red rectangle lies in a decoded image, to sub-pixel precision: each pixel's red
 * excess over grey, normalised by the plateau level, is its coverage; the coverage centroid and
 * the plateau row/column sums (width, height) give the box. Resampling blur keeps both.
 */
export function measureRedBox(img: Rgb): BBox | null {
  return findColouredBox(img, "red");
}

/** Largest absolute difference between two boxes' coordinates. */
export function boxError(a: BBox, b: BBox): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

/**
 * A valid PNG that claims `width × height` pixels but holds a single tiny IDAT: what a
 * decompression bomb looks like from its header.
 */
export function pngBombHeader(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(12 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter, no interlace
  // zlib stream of a few zero bytes: far fewer than the header promises.
  const idat = new Uint8Array([0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
  const sig = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const parts = [sig, chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", new Uint8Array())];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** sha256 hex of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What {@link seedIngested} recorded. */
export interface SeededImage {
  id: string;
  sha256: string;
  key: string;
  datasetUri: string;
}

/**
 * Records an image the way ingest does: the source row, a claimed `ingest` item completed with
 * the image's status, hash, size and dataset URI, and the `normalize` enqueue. The dataset object
 * is written to `store` under `images/<aa>/<sha256>.<ext>` unless `writeObject` is false.
 * Call it for one image at a time (it claims the single pending ingest item).
 */
export async function seedIngested(
  manifest: ManifestStore,
  store: ObjectStore,
  opts: {
    name: string;
    bytes: Uint8Array;
    ext?: string;
    width?: number;
    height?: number;
    writeObject?: boolean;
    enqueue?: boolean;
  },
): Promise<SeededImage> {
  const sha256 = sha256Hex(opts.bytes);
  const key = `images/${sha256.slice(0, 2)}/${sha256}.${opts.ext ?? "jpg"}`;
  if (opts.writeObject !== false) await store.put(key, opts.bytes);
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
      width: opts.width ?? null,
      height: opts.height ?? null,
      format: opts.ext === "png" ? "png" : "jpeg",
      datasetUri,
    },
    enqueue: opts.enqueue === false ? [] : [{ stage: "normalize", itemId: up.image.id }],
  });
  return { id: up.image.id, sha256, key, datasetUri };
}

/** Calls counted by {@link countingStore}. */
export interface WriteCounts {
  put: number;
  putFile: number;
  copy: number;
  delete: number;
  /** Keys written (put, putFile, copy targets), in order. */
  keys: string[];
}

/** Wraps a real store, counting every call that writes; reads pass through untouched. */
export function countingStore(inner: ObjectStore): { store: ObjectStore; writes: WriteCounts } {
  const writes: WriteCounts = { put: 0, putFile: 0, copy: 0, delete: 0, keys: [] };
  const store: ObjectStore = {
    get url() {
      return inner.url;
    },
    uriFor: (key) => inner.uriFor(key),
    get: (key) => inner.get(key),
    getBytes: (key) => inner.getBytes(key),
    download: (key, path) => inner.download(key, path),
    put: (key, body, opts) => {
      writes.put++;
      writes.keys.push(key);
      return inner.put(key, body, opts);
    },
    putFile: (key, path, opts) => {
      writes.putFile++;
      writes.keys.push(key);
      return inner.putFile(key, path, opts);
    },
    head: (key) => inner.head(key),
    list: (opts) => inner.list(opts),
    copy: (from, to) => {
      writes.copy++;
      writes.keys.push(to);
      return inner.copy(from, to);
    },
    delete: (key) => {
      writes.delete++;
      return inner.delete(key);
    },
    close: () => inner.close(),
  };
  return { store, writes };
}

/** Total writes counted. */
export function totalWrites(w: WriteCounts): number {
  return w.put + w.putFile + w.copy + w.delete;
}

/** A temp directory removed by `dispose`. */
export async function tempDir(
  prefix = "sluice-normalize-",
): Promise<AsyncDisposable & { path: string }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }),
  };
}

/** A quiet logger that keeps its lines (JSON) for assertions. */
export function captureLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    stage: "normalize",
    level: "debug",
    json: true,
    sink: (line) => lines.push(JSON.parse(line)),
  });
  return { log, lines };
}

/**
 * A normalize configuration rooted in `dir` (manifest, objects and staging inside it, no HTTP
 * server, CPU resizer, no free-space reserve), with `variants` and extra env settings.
 */
export async function testConfig(
  dir: string,
  variants?: VariantSpecInput[],
  env: Record<string, string> = {},
): Promise<NormalizeConfig> {
  return await loadConfig({
    stage: "normalize",
    stageSchema: NormalizeSettingsSchema,
    cwd: dir,
    hostname: "test",
    pid: 1,
    env: {
      SLUICE_MANIFEST_URL: `sqlite://${join(dir, "manifest.db")}`,
      SLUICE_OBJECT_STORE_URL: join(dir, "objects"),
      SLUICE_STAGING_ROOT: join(dir, "staging"),
      SLUICE_STAGING_MIN_FREE_MB: "0",
      SLUICE_HTTP_PORT: "0",
      SLUICE_WORKER_IDLE_POLL_MS: "20",
      SLUICE_NORMALIZE_RESIZER: "cpu",
      SLUICE_LOG_LEVEL: "error",
      ...(variants ? { SLUICE_NORMALIZE_VARIANTS: JSON.stringify(variants) } : {}),
      ...env,
    },
  });
}

/**
 * Benchmark corpus: real photographs from Debian wallpaper packages (`apt-get download` +
 * `dpkg -x`, no install), cached under `.sluice/bench-corpus/`, topped up with generated ~12 MP
 * JPEGs when fewer real photos than asked for can be had.
 * @module
 */
import { createHash } from "node:crypto";
import { copyFile, lstat, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";

/** Debian packages with real photographs. */
export const WALLPAPER_PACKAGES = [
  "lomiri-wallpapers-16.04",
  "lomiri-wallpapers-20.04",
  "mate-backgrounds",
  "plasma-workspace-wallpapers",
] as const;

/** Default cache directory: `<repo>/.sluice/bench-corpus`. */
export const DEFAULT_CORPUS_DIR = fileURLToPath(
  new URL("../../.sluice/bench-corpus", import.meta.url),
);

export interface CorpusImage {
  path: string;
  width: number;
  height: number;
  bytes: number;
  progressive: boolean;
  source: "debian" | "generated";
  /** Package-relative origin, or "generated". */
  origin: string;
}

export interface CorpusOptions {
  dir?: string;
  /** Smallest real photo to keep, in megapixels (default 2: skips thumbnails and phone-size art). */
  minMegapixels?: number;
  /** Generated 12 MP JPEGs are added until there are at least this many images (default 24). */
  minCount?: number;
  /** Use at most this many images (largest first; default all). */
  maxCount?: number;
  log?: (line: string) => void;
}

/**
 * Prepares (or reuses) the corpus and returns its images, real photos first (largest first).
 *
 * @example
 * ```ts
 * const images = await prepareCorpus({ minCount: 24 });
 * ```
 */
export async function prepareCorpus(opts: CorpusOptions = {}): Promise<CorpusImage[]> {
  const dir = opts.dir ?? DEFAULT_CORPUS_DIR;
  const log = opts.log ?? ((l: string) => console.log(l));
  const minMp = opts.minMegapixels ?? 2;
  const index = join(dir, "corpus.json");
  let images: CorpusImage[] | null = null;
  try {
    images = JSON.parse(await readFile(index, "utf8")) as CorpusImage[];
    for (const i of images) await stat(i.path);
  } catch {
    images = null;
  }
  if (!images) {
    images = [...await realPhotos(dir, minMp, log)];
    await writeFile(index, JSON.stringify(images, null, 1));
  }
  let real = images.filter((i) => i.source === "debian" && i.width * i.height >= minMp * 1e6);
  real.sort((a, b) => b.width * b.height - a.width * a.height);
  if (opts.maxCount !== undefined) real = real.slice(0, opts.maxCount);
  const want = Math.min(opts.minCount ?? 24, opts.maxCount ?? Infinity);
  const generated: CorpusImage[] = [];
  for (let i = 0; real.length + generated.length < want; i++) {
    generated.push(await generatedPhoto(dir, i));
  }
  return [...real, ...generated];
}

async function realPhotos(
  dir: string,
  minMp: number,
  log: (l: string) => void,
): Promise<CorpusImage[]> {
  const debs = join(dir, "debs"), extract = join(dir, "extract"), photos = join(dir, "photos");
  for (const d of [debs, extract, photos]) await mkdir(d, { recursive: true });
  const have = new Set(await readdir(debs));
  for (const pkg of WALLPAPER_PACKAGES) {
    if ([...have].some((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"))) continue;
    const out = await new Deno.Command("apt-get", {
      args: ["download", pkg],
      cwd: debs,
      stdout: "null",
      stderr: "piped",
    })
      .output().catch((e) => ({ success: false, stderr: new TextEncoder().encode(String(e)) }));
    if (!out.success) {
      log(
        `corpus: apt-get download ${pkg} failed: ${
          new TextDecoder().decode(out.stderr).trim().split("\n").pop()
        }`,
      );
    }
  }
  for (const deb of (await readdir(debs)).filter((f) => f.endsWith(".deb"))) {
    const out = await new Deno.Command("dpkg", {
      args: ["-x", join(debs, deb), extract],
      stdout: "null",
      stderr: "piped",
    })
      .output().catch(() => null);
    if (!out?.success) log(`corpus: dpkg -x ${deb} failed`);
  }
  const seen = new Set<string>();
  const found: CorpusImage[] = [];
  for (const file of await walk(extract)) {
    if (!/\.jpe?g$/i.test(file)) continue;
    if ((await lstat(file)).isSymbolicLink()) continue;
    const bytes = await readFile(file);
    const sha = createHash("sha256").update(bytes).digest("hex");
    if (seen.has(sha)) continue;
    seen.add(sha);
    const meta = await sharp(bytes).metadata().catch(() => null);
    if (!meta || meta.format !== "jpeg" || meta.width * meta.height < minMp * 1e6) continue;
    const path = join(photos, `${sha.slice(0, 16)}.jpg`);
    await copyFile(file, path);
    found.push({
      path,
      width: meta.width,
      height: meta.height,
      bytes: bytes.byteLength,
      progressive: meta.isProgressive === true,
      source: "debian",
      origin: file.slice(extract.length + 1),
    });
  }
  log(
    `corpus: ${found.length} real JPEG photos ≥ ${minMp} MP from ${WALLPAPER_PACKAGES.join(", ")}`,
  );
  return found;
}

async function generatedPhoto(dir: string, i: number): Promise<CorpusImage> {
  const path = join(dir, "generated", `gen_${String(i).padStart(3, "0")}.jpg`);
  const width = 4000, height = 3000;
  try {
    const s = await stat(path);
    return {
      path,
      width,
      height,
      bytes: s.size,
      progressive: false,
      source: "generated",
      origin: "generated",
    };
  } catch { /* make it */ }
  await mkdir(join(dir, "generated"), { recursive: true });
  // Smooth gradients plus per-pixel noise: compresses (and decodes) like a detailed photo.
  const raw = new Uint8Array(width * height * 3);
  let s = 0x9e3779b9 ^ i;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const n = (s >>> 24) & 31;
      const o = (y * width + x) * 3;
      raw[o] = (x * 255 / width + n + i * 40) & 255;
      raw[o + 1] = (y * 255 / height + n) & 255;
      raw[o + 2] = (((x + y) >> 4) * 7 + n) & 255;
    }
  }
  const bytes = await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 })
    .toBuffer();
  await writeFile(path, bytes);
  return {
    path,
    width,
    height,
    bytes: bytes.byteLength,
    progressive: false,
    source: "generated",
    origin: "generated",
  };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await walk(p));
    else out.push(p);
  }
  return out;
}

/**
 * Normalize benchmark: the normalize and ingest stages end to end, as whole processes, against the
 * strongest baselines, in one run on one corpus. Every row is one process tree run under
 * `_rusage.py` (getrusage of the children), so each row reports wall time, CPU-seconds (user + sys
 * of the whole tree: CPU / wall ≈ 2 means both cores were busy) and the peak RSS of its largest
 * process (per worker). Rounds are paired: every round runs every row once, in a rotated order;
 * the table shows medians, and each ratio is the median of the per-round ratios to the bare script.
 *
 * Rows:
 * - `bare sharp script` (`_bare_sharp.ts`): read file, one decode to 1280, three encodes (1280 fit
 *   / 640 letterbox / 320 cover, JPEG q85), 2 images in flight. The yardstick (1.00).
 * - `sluice render path` (`_normalize_child.ts --arrangement sluice`): the stage's CPU step alone.
 * - `vipsthumbnail best`: one invocation per variant over half the corpus, 2 workers.
 * - `imagemagick` (when `magick` or `convert` is on PATH): one process per image writing all three
 *   variants from one read, 2 workers.
 * - `sluice-normalize once (local)`: the stage's CLI (SQLite manifest, file object store) given the
 *   baselines' three variants (`SLUICE_NORMALIZE_VARIANTS`, so every row renders the same outputs),
 *   the corpus already ingested by the row below in the same round.
 * - `sluice-ingest once (local)` and `ingest + normalize (local)` (sum of the two).
 * - The same three stage rows over S3 (the loopback emulator of `tests/harness/s3.ts`, run inside
 *   this process: its CPU is reported separately, not in the rows).
 * - Fused ingest (`fused-local`, `fused-s3`): `sluice-ingest once` with `ingest.renderVariants`
 *   (its verifying decode renders and records the variants), then `sluice-normalize once`, which
 *   finds them recorded; `ingest (fused) + normalize` is their sum, compared with the plain
 *   `sluice-normalize once` row of the same round.
 *
 * Corpus (`--corpus DIR`): a directory of JPEGs is used as it is (recursively); otherwise DIR is the
 * cache of Debian's wallpaper photos (default `.sluice/bench-corpus`), filled on first use with
 * `apt-get download lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds
 * plasma-workspace-wallpapers` and `dpkg -x` (no install). Where apt cannot reach a mirror, the
 * corpus falls back to generated 12 MP JPEGs (`--min-count`, default 24).
 *
 * Options: `--images N` (at most N photos), `--min-count N`, `--rounds R` (default 5), `--corpus DIR`,
 * `--rows a,b` (a subset: bare, render, vips, magick, local, s3, fused-local, fused-s3), `--keep` (keep the work dir).
 *
 * @example
 * ```sh
 * deno task bench normalize --rounds 5                     # full corpus, all rows
 * deno task bench normalize --images 4 --min-count 4 --rounds 1   # smoke check
 * ```
 * @module
 */
import { link, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { type S3TestServer, startS3Server } from "../harness/s3.ts";
import { type CorpusImage, DEFAULT_CORPUS_DIR, prepareCorpus } from "./_corpus.ts";
import { BENCH_VARIANTS } from "./_normalize_child.ts";

const TARGET_RSS_MB = 600;
const ROWS = [
  "bare",
  "render",
  "vips",
  "magick",
  "local",
  "s3",
  "fused-local",
  "fused-s3",
] as const;
const HERE = fileURLToPath(new URL(".", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));

const OptionsSchema = z.strictObject({
  images: z.int().positive().optional(),
  minCount: z.int().min(0).default(24),
  rounds: z.int().positive().default(5),
  corpus: z.string().min(1).default(DEFAULT_CORPUS_DIR),
  rows: z.array(z.enum(ROWS)).min(1).default([...ROWS]),
  keep: z.boolean().default(false),
});
type Options = z.infer<typeof OptionsSchema>;

function parseOptions(args: string[]): Options {
  const raw: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      if (i + 1 >= args.length) {
        throw new SluiceError("invalid_options", `${a}: expected a value, found none`);
      }
      return args[++i];
    };
    if (a === "--images") raw.images = Number(value());
    else if (a === "--min-count") raw.minCount = Number(value());
    else if (a === "--rounds") raw.rounds = Number(value());
    else if (a === "--corpus") raw.corpus = value();
    else if (a === "--rows") raw.rows = value().split(",").filter(Boolean);
    else if (a === "--keep") raw.keep = true;
    else throw new SluiceError("invalid_options", `normalize bench: unknown option ${a}`);
  }
  const r = OptionsSchema.safeParse(raw);
  if (!r.success) {
    throw new SluiceError(
      "invalid_options",
      `normalize bench: ${
        r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
      }`,
    );
  }
  return r.data;
}

/** One measured process tree. */
interface Usage {
  wall_s: number;
  cpu_s: number;
  max_rss_mb: number;
  rc: number;
}

async function measured(
  work: string,
  cmd: string[],
  opts: { env?: Record<string, string>; cwd?: string; what: string },
): Promise<Usage> {
  const usage = join(work, `usage-${crypto.randomUUID()}.json`);
  const r = await new Deno.Command("/usr/bin/python3", {
    args: [join(HERE, "_rusage.py"), usage, "--", ...cmd],
    env: { MALLOC_ARENA_MAX: "2", ...opts.env },
    cwd: opts.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    const err = new TextDecoder().decode(r.stderr).trim().split("\n").slice(-15).join("\n");
    throw new SluiceError(
      "bench_failed",
      `${opts.what}: expected exit 0, found ${r.code}\n${err}`,
    );
  }
  return JSON.parse(await Deno.readTextFile(usage)) as Usage;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function which(name: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    const p = join(dir, name);
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch { /* next */ }
  }
  return null;
}

/** ImageMagick's command when a real one is installed (`-version` names it), else null. */
async function imageMagick(): Promise<string | null> {
  for (const name of ["magick", "convert"]) {
    const path = await which(name);
    if (!path) continue;
    const r = await new Deno.Command(path, { args: ["-version"], stdout: "piped", stderr: "null" })
      .output().catch(() => null);
    if (r?.success && /ImageMagick/.test(new TextDecoder().decode(r.stdout))) return path;
  }
  return null;
}

/** Loads `dir` as a plain directory of JPEGs, or null when it holds none (then: the cache). */
async function plainCorpus(dir: string, max?: number): Promise<CorpusImage[] | null> {
  const files: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory() && !["debs", "extract", "photos", "generated"].includes(e.name)) {
        await walk(p);
      } else if (e.isFile() && /\.jpe?g$/i.test(e.name)) files.push(p);
    }
  };
  await walk(dir);
  if (files.length === 0) return null;
  const images: CorpusImage[] = [];
  for (const path of files.sort()) {
    const m = await sharp(path).metadata();
    images.push({
      path,
      width: m.width,
      height: m.height,
      bytes: (await Deno.stat(path)).size,
      progressive: m.isProgressive === true,
      source: "debian",
      origin: path,
    });
  }
  images.sort((a, b) => b.width * b.height - a.width * a.height);
  return max === undefined ? images : images.slice(0, max);
}

/** The stage CLI arguments every stage row shares (cwd = the round's own directory). */
function stageArgs(dir: string): string[] {
  return [
    "--manifest-url",
    `sqlite://${join(dir, "manifest.db")}`,
    "--staging-root",
    join(dir, "nvme"),
    "--staging-min-free-mb",
    "0",
    "--http-port",
    "0",
    "--log-level",
    "error",
    "--worker-idle-poll-ms",
    "20",
  ];
}

interface StageRun {
  ingest: Usage;
  normalize: Usage;
}

async function stageRound(
  work: string,
  images: CorpusImage[],
  where: "local" | "s3",
  round: number,
  s3?: S3TestServer,
  fused = false,
): Promise<StageRun> {
  const tag = fused ? "-fused" : "";
  const dir = join(work, `${where}${tag}-${round}`);
  await mkdir(join(dir, "raw"), { recursive: true });
  const env: Record<string, string> = {};
  const args = stageArgs(dir);
  if (where === "local") {
    for (const i of images) await link(i.path, join(dir, "raw", basename(i.path)));
    args.push("--source-url", join(dir, "raw"), "--object-store-url", join(dir, "objects"));
  } else {
    const s = s3!;
    const raw = `raw${tag}-${round}`, data = `data${tag}-${round}`;
    await s.createBucket(raw);
    await s.createBucket(data);
    const opts = {
      s3: {
        endpoint: s.endpoint,
        region: s.region,
        forcePathStyle: true,
        accessKeyId: s.accessKeyId,
        secretAccessKey: s.secretAccessKey,
      },
    };
    const store = await openObjectStore(`s3://${raw}`, opts);
    for (const i of images) await store.put(basename(i.path), await Deno.readFile(i.path));
    Object.assign(env, {
      SLUICE_S3_ENDPOINT: s.endpoint,
      SLUICE_S3_REGION: s.region,
      SLUICE_S3_FORCE_PATH_STYLE: "true",
      SLUICE_S3_ACCESS_KEY_ID: s.accessKeyId,
      SLUICE_S3_SECRET_ACCESS_KEY: s.secretAccessKey,
    });
    args.push("--source-url", `s3://${raw}`, "--object-store-url", `s3://${data}/dataset`);
  }
  const stage = (name: string) => ["run", "-A", join(REPO, `stages/${name}/main.ts`), "once"];
  const variants = { SLUICE_NORMALIZE_VARIANTS: JSON.stringify(BENCH_VARIANTS) };
  const ingest = await measured(work, [Deno.execPath(), ...stage("ingest"), ...args], {
    // Fused: ingest reads normalize's section (the same variants) from the same environment.
    env: fused ? { ...env, ...variants, SLUICE_INGEST_RENDER_VARIANTS: "true" } : env,
    cwd: dir,
    what: `sluice-ingest once (${where})`,
  });
  const normalize = await measured(work, [Deno.execPath(), ...stage("normalize"), ...args], {
    // The baselines' three variants, so every row renders the same outputs.
    env: { ...env, ...variants },
    cwd: dir,
    what: `sluice-normalize once (${where})`,
  });
  await rm(dir, { recursive: true, force: true });
  return { ingest, normalize };
}

function cpuSeconds(): number {
  // utime + stime of this process (the in-process S3 emulator), clock ticks of 100 Hz.
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Runs the benchmark; see the module documentation for options. */
export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const images = await plainCorpus(o.corpus, o.images) ??
    await prepareCorpus({ dir: o.corpus, maxCount: o.images, minCount: o.minCount });
  const real = images.filter((i) => i.source === "debian");
  const mp = images.map((i) => i.width * i.height / 1e6);
  console.log(
    `corpus: ${images.length} images (${real.length} photos, ${
      images.length - real.length
    } generated 12 MP; ` +
      `${images.filter((i) => i.progressive).length} progressive); ` +
      `${Math.min(...mp).toFixed(1)}–${Math.max(...mp).toFixed(1)} MP, median ${
        median(mp).toFixed(1)
      } MP`,
  );
  console.log(
    `cores: ${navigator.hardwareConcurrency}; rounds: ${o.rounds}; every row renders the same ` +
      `three variants: 1280 fit / 640 letterbox / 320 cover, JPEG q85 (stages: --normalize-variants)`,
  );
  for (const i of images) await Deno.readFile(i.path); // warm the page cache

  const magick = o.rows.includes("magick") ? await imageMagick() : null;
  const vips = o.rows.includes("vips") ? await which("vipsthumbnail") : null;
  if (o.rows.includes("vips") && !vips) console.log("vipsthumbnail not on PATH: row skipped");
  if (o.rows.includes("magick") && !magick) console.log("ImageMagick not on PATH: row skipped");

  const work = await mkdtemp(join(tmpdir(), "sluice-bench-normalize-"));
  let s3: S3TestServer | undefined;
  try {
    if (o.rows.includes("s3")) s3 = await startS3Server();
    const list = join(work, "list.txt");
    await writeFile(list, images.map((i) => i.path).join("\n"));
    const halves = [0, 1].map((h) => images.filter((_, n) => n % 2 === h).map((i) => i.path));
    const deno = Deno.execPath();

    type RowFn = (round: number) => Promise<Record<string, Usage>>;
    const rows: Array<[string, RowFn]> = [];
    const outDir = async (name: string, round: number) => {
      const d = join(work, `${name}-${round}`);
      await mkdir(d, { recursive: true });
      return d;
    };
    if (o.rows.includes("bare")) {
      rows.push(["bare", async (round) => {
        const out = await outDir("bare", round);
        const u = await measured(
          work,
          [deno, "run", "-A", join(HERE, "_bare_sharp.ts"), "--list", list, "--out", out],
          { what: "bare sharp script" },
        );
        await rm(out, { recursive: true });
        return { "bare sharp script": u };
      }]);
    }
    if (o.rows.includes("render")) {
      rows.push(["render", async (round) => {
        const out = await outDir("render", round);
        const u = await measured(work, [
          deno,
          "run",
          "-A",
          join(HERE, "_normalize_child.ts"),
          "--list",
          list,
          "--out",
          out,
          "--arrangement",
          "sluice",
        ], { what: "sluice render path" });
        await rm(out, { recursive: true });
        return { "sluice render path": u };
      }]);
    }
    if (vips) {
      rows.push(["vips", async (round) => {
        const out = await outDir("vips", round);
        // One invocation per variant over half the corpus, 2 workers (one per half).
        const variants = [
          ["--size", "1280x1280", "-o", `${out}/%s_1280.jpg[Q=85]`],
          ["--size", "640x640", "-o", `${out}/%s_640.jpg[Q=85]`],
          ["--size", "320x320", "--smartcrop", "centre", "-o", `${out}/%s_320.jpg[Q=85]`],
        ];
        const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
        const script = halves.filter((h) =>
          h.length
        ).map((h) =>
          "( " + variants.map((v) => `${vips} ${v.map(q).join(" ")} ${h.map(q).join(" ")}`)
            .join(" && ") +
          " ) &"
        ).join("\n") + "\nfor j in $(jobs -p); do wait $j || exit 1; done";
        const u = await measured(work, ["bash", "-c", script], { what: "vipsthumbnail best" });
        await rm(out, { recursive: true });
        return { "vipsthumbnail best": u };
      }]);
    }
    if (magick) {
      rows.push(["magick", async (round) => {
        const out = await outDir("magick", round);
        // One process per image, one read, three outputs; 2 workers (xargs -P 2).
        const script = `${magick} "$1" -define jpeg:size=2560x2560 -auto-orient -quality 85 ` +
          `\\( +clone -resize 1280x1280 -write "${out}/$(basename "$1")_1280.jpg" +delete \\) ` +
          `\\( +clone -resize 640x640 -background black -gravity center -extent 640x640 ` +
          `-write "${out}/$(basename "$1")_640.jpg" +delete \\) ` +
          `-resize 320x320^ -gravity center -extent 320x320 "${out}/$(basename "$1")_320.jpg"`;
        const u = await measured(work, [
          "bash",
          "-c",
          `xargs -d '\\n' -P 2 -n 1 bash -c '${script.replaceAll("'", `'\\''`)}' _ < ${list}`,
        ], { what: "imagemagick" });
        await rm(out, { recursive: true });
        return { "imagemagick": u };
      }]);
    }
    for (const where of ["local", "s3"] as const) {
      if (!o.rows.includes(where)) continue;
      rows.push([where, async (round) => {
        const r = await stageRound(work, images, where, round, s3);
        return {
          [`sluice-normalize once (${where})`]: r.normalize,
          [`sluice-ingest once (${where})`]: r.ingest,
          [`ingest + normalize (${where})`]: {
            wall_s: r.ingest.wall_s + r.normalize.wall_s,
            cpu_s: r.ingest.cpu_s + r.normalize.cpu_s,
            max_rss_mb: Math.max(r.ingest.max_rss_mb, r.normalize.max_rss_mb),
            rc: 0,
          },
        };
      }]);
    }

    for (const where of ["local", "s3"] as const) {
      if (!o.rows.includes(`fused-${where}`)) continue;
      rows.push([`fused-${where}`, async (round) => {
        const r = await stageRound(work, images, where, round, s3, true);
        return {
          [`sluice-ingest once, fused (${where})`]: r.ingest,
          [`sluice-normalize once after it (${where})`]: r.normalize,
          [`ingest (fused) + normalize (${where})`]: {
            wall_s: r.ingest.wall_s + r.normalize.wall_s,
            cpu_s: r.ingest.cpu_s + r.normalize.cpu_s,
            max_rss_mb: Math.max(r.ingest.max_rss_mb, r.normalize.max_rss_mb),
            rc: 0,
          },
        };
      }]);
    }

    const results: Record<string, Usage[]> = {};
    const ratios: Record<string, number[]> = {};
    let emulatorCpu = 0;
    for (let round = 1; round <= o.rounds; round++) {
      const k = (round - 1) % rows.length;
      const order = [...rows.slice(k), ...rows.slice(0, k)];
      const got: Record<string, Usage> = {};
      for (const [name, fn] of order) {
        const c0 = cpuSeconds();
        Object.assign(got, await fn(round));
        if (name.endsWith("s3")) emulatorCpu += cpuSeconds() - c0;
      }
      for (const [name, u] of Object.entries(got)) (results[name] ??= []).push(u);
      const bare = got["bare sharp script"];
      if (bare) {
        for (const [name, u] of Object.entries(got)) {
          (ratios[name] ??= []).push(u.wall_s / bare.wall_s);
        }
      }
      console.log(
        `round ${round}: ` +
          Object.entries(got).map(([n, u]) => `${n} ${u.wall_s.toFixed(2)} s`).join(", "),
      );
    }

    const w = Math.max(...Object.keys(results).map((n) => n.length));
    console.log(
      `\nresults: ${images.length} images, median of ${o.rounds} round(s); ratio = wall time / ` +
        `bare script's, per round, median`,
    );
    console.log(
      `  ${"row".padEnd(w)}  ${"wall s".padStart(8)}  ${"ratio".padStart(6)}  ${
        "CPU s".padStart(7)
      }  ${"CPU/wall".padStart(8)}  ${"img/s".padStart(6)}  peak RSS/worker`,
    );
    for (const [name, us] of Object.entries(results)) {
      const wall = median(us.map((u) => u.wall_s));
      const cpu = median(us.map((u) => u.cpu_s));
      const rss = Math.max(...us.map((u) => u.max_rss_mb));
      const ratio = ratios[name] ? median(ratios[name]).toFixed(2) : "-";
      console.log(
        `  ${name.padEnd(w)}  ${wall.toFixed(2).padStart(8)}  ${ratio.padStart(6)}  ${
          cpu.toFixed(2).padStart(7)
        }  ${(cpu / wall).toFixed(2).padStart(8)}  ${
          (images.length / wall).toFixed(2).padStart(6)
        }  ${rss.toFixed(0)} MB${rss > TARGET_RSS_MB ? ` (over ${TARGET_RSS_MB})` : ""}`,
      );
    }
    if (s3) {
      console.log(
        `  (S3 emulator in the bench process: ${
          (emulatorCpu / o.rounds).toFixed(2)
        } CPU s per round for all S3 rows together, not in them; upload of the raw corpus included)`,
      );
    }
    const med = (n: string) => results[n] ? median(results[n].map((u) => u.wall_s)) : NaN;
    for (const where of ["local", "s3"]) {
      const both = med(`ingest + normalize (${where})`),
        norm = med(`sluice-normalize once (${where})`),
        fusedBoth = med(`ingest (fused) + normalize (${where})`);
      if (!Number.isNaN(both)) {
        console.log(
          `  (${where}) ingest + normalize / normalize alone = ${(both / norm).toFixed(2)}× ` +
            `(target ≤ 1.3×)`,
        );
      }
      if (!Number.isNaN(fusedBoth) && !Number.isNaN(norm)) {
        console.log(
          `  (${where}) ingest (fused) + normalize / normalize alone = ${
            (fusedBoth / norm).toFixed(2)
          }× (target ≤ 1.3×)`,
        );
      }
    }
    if (results["sluice-normalize once (s3)"] && results["sluice-normalize once (local)"]) {
      console.log(
        `  S3 / local: normalize ${
          (med("sluice-normalize once (s3)") / med("sluice-normalize once (local)")).toFixed(2)
        }×, ingest + normalize ${
          (med("ingest + normalize (s3)") / med("ingest + normalize (local)")).toFixed(2)
        }× (target ≤ 1.3×)`,
      );
    }
  } finally {
    await s3?.stop();
    if (o.keep) console.log(`work dir kept: ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.main) await run(Deno.args);

/**
 * Normalize benchmark: Sluice's sharp resizer against `vipsthumbnail`, same run, same corpus,
 * same three variants (1280 fit / 640 letterbox / 320 cover, JPEG q85).
 *
 * - Baseline: `vipsthumbnail` once per variant per image (its letterbox is a plain 640 fit: the
 *   baseline skips the padding, which only favours it), 2 processes at a time so both cores
 *   are busy.
 * - Sluice: `SharpResizer` at its defaults in a child `deno run` (MALLOC_ARENA_MAX=2, as a
 *   worker is run), whose peak RSS (VmHWM) is reported.
 *
 * Targets: ratio ≥ 1.5× vipsthumbnail, peak RSS ≤ 600 MB. Absolute numbers are noisy when the
 * machine is shared; the ratio from the same run is what counts (median over `--rounds`).
 *
 * Options: `--images N` (at most N real photos), `--rounds R` (default 1), `--vips-procs P`
 * (default 2), `--vips-threads T` (VIPS_CONCURRENCY for each vipsthumbnail; default libvips'
 * own, one per core), `--in-flight N`, `--threads T`, `--compare` (also time the other arrangements:
 * variants one after another, and one sharp pipeline per variant), `--min-count N` (top up with
 * generated 12 MP JPEGs to N images, default 24), `--corpus DIR`.
 *
 * @example
 * ```sh
 * deno task bench normalize --rounds 3 --compare
 * ```
 * @module
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SluiceError } from "../../common/errors/mod.ts";
import { type CorpusImage, DEFAULT_CORPUS_DIR, prepareCorpus } from "./_corpus.ts";

const TARGET_RATIO = 1.5;
const TARGET_RSS_MB = 600;

interface Options {
  images?: number;
  rounds: number;
  vipsProcs: number;
  vipsThreads?: number;
  inFlight?: number;
  threads?: number;
  compare: boolean;
  minCount: number;
  corpus: string;
}

function parseOptions(args: string[]): Options {
  const o: Options = {
    rounds: 1,
    vipsProcs: 2,
    compare: false,
    minCount: 24,
    corpus: DEFAULT_CORPUS_DIR,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const num = () => {
      const v = Number(args[++i]);
      if (!(Number.isInteger(v) && v > 0)) {
        throw new SluiceError(
          "invalid_options",
          `${a}: expected a positive integer, found ${args[i]}`,
        );
      }
      return v;
    };
    if (a === "--images") o.images = num();
    else if (a === "--rounds") o.rounds = num();
    else if (a === "--vips-procs") o.vipsProcs = num();
    else if (a === "--vips-threads") o.vipsThreads = num();
    else if (a === "--in-flight") o.inFlight = num();
    else if (a === "--threads") o.threads = num();
    else if (a === "--min-count") o.minCount = num();
    else if (a === "--compare") o.compare = true;
    else if (a === "--corpus") o.corpus = args[++i];
    else throw new SluiceError("invalid_options", `normalize bench: unknown option ${a}`);
  }
  return o;
}

interface ChildResult {
  arrangement: string;
  images: number;
  seconds: number;
  peakRssMb: number;
  inFlight: number;
  threads: number;
}

async function runVips(
  images: CorpusImage[],
  out: string,
  procs: number,
  threads?: number,
): Promise<number> {
  const env: Record<string, string> = threads ? { VIPS_CONCURRENCY: String(threads) } : {};
  const jobs = images.flatMap((img, n) => [
    [img.path, "--size", "1280x1280", "-o", join(out, `${n}_1280.jpg[Q=85]`)],
    [img.path, "--size", "640x640", "-o", join(out, `${n}_640.jpg[Q=85]`)],
    [img.path, "--size", "320x320", "--smartcrop", "centre", "-o", join(out, `${n}_320.jpg[Q=85]`)],
  ]);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: procs }, async () => {
    while (next < jobs.length) {
      const args = jobs[next++];
      const r = await new Deno.Command("vipsthumbnail", {
        args,
        env,
        stdout: "null",
        stderr: "piped",
      })
        .output();
      if (!r.success) {
        throw new Error(`vipsthumbnail ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
      }
    }
  }));
  return (performance.now() - t0) / 1000;
}

async function runChild(
  list: string,
  out: string,
  arrangement: string,
  o: Options,
): Promise<ChildResult> {
  const child = fileURLToPath(new URL("./_normalize_child.ts", import.meta.url));
  const args = ["run", "-A", child, "--list", list, "--out", out, "--arrangement", arrangement];
  if (o.inFlight) args.push("--in-flight", String(o.inFlight));
  if (o.threads) args.push("--threads", String(o.threads));
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    env: { MALLOC_ARENA_MAX: "2" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout).trim();
  if (!r.success) {
    throw new Error(
      `normalize child (${arrangement}) failed: ${new TextDecoder().decode(r.stderr)}`,
    );
  }
  return JSON.parse(text.split("\n").pop()!) as ChildResult;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Runs the benchmark; see the module documentation for options. */
export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const vips = await new Deno.Command("vipsthumbnail", {
    args: ["--vips-version"],
    stdout: "piped",
    stderr: "null",
  })
    .output().catch(() => null);
  if (!vips?.success) {
    console.log(
      "normalize bench: vipsthumbnail not found (apt-get install libvips-tools); baseline skipped",
    );
  }
  const images = await prepareCorpus({ dir: o.corpus, maxCount: o.images, minCount: o.minCount });
  const real = images.filter((i) => i.source === "debian");
  const mp = images.map((i) => i.width * i.height / 1e6);
  console.log(
    `corpus: ${images.length} images: ${real.length} real photos from Debian wallpaper packages ` +
      `(${real.filter((i) => i.width * i.height >= 8e6).length} ≥ 8 MP, ${
        real.filter((i) => i.progressive).length
      } progressive)` +
      ` + ${images.length - real.length} generated 12 MP JPEGs; median ${
        median(mp).toFixed(1)
      } MP, ` +
      `largest ${Math.max(...mp).toFixed(1)} MP`,
  );
  console.log(
    `variants: 1280 fit / 640 letterbox / 320 cover, JPEG q85; cores: ${navigator.hardwareConcurrency}`,
  );
  // Warm the page cache so both sides measure decoding, not the disk.
  for (const i of images) await Deno.readFile(i.path);

  const work = await mkdtemp(join(tmpdir(), "sluice-bench-normalize-"));
  try {
    const list = join(work, "list.txt");
    await writeFile(list, images.map((i) => i.path).join("\n"));
    const arrangements = o.compare ? ["sluice", "sluice-seq", "three-pipelines"] : ["sluice"];
    const vipsRates: number[] = [];
    const rates: Record<string, number[]> = {};
    const rss: Record<string, number[]> = {};
    let last: ChildResult | null = null;
    for (let round = 1; round <= o.rounds; round++) {
      if (vips?.success) {
        const out = join(work, `vips-${round}`);
        await Deno.mkdir(out);
        const s = await runVips(images, out, o.vipsProcs, o.vipsThreads);
        vipsRates.push(images.length / s);
        await rm(out, { recursive: true });
      }
      for (const arr of arrangements) {
        const out = join(work, `${arr}-${round}`);
        const r = await runChild(list, out, arr, o);
        (rates[arr] ??= []).push(r.images / r.seconds);
        (rss[arr] ??= []).push(r.peakRssMb);
        if (arr === "sluice") last = r;
        await rm(out, { recursive: true });
      }
      console.log(
        `round ${round}: ` +
          (vipsRates.length ? `vipsthumbnail ${vipsRates.at(-1)!.toFixed(2)} img/s, ` : "") +
          arrangements.map((a) =>
            `${a} ${rates[a].at(-1)!.toFixed(2)} img/s (peak ${rss[a].at(-1)!.toFixed(0)} MB)`
          )
            .join(", "),
      );
    }
    const sluice = median(rates.sluice);
    const peak = Math.max(...rss.sluice);
    console.log(`\nresults (median of ${o.rounds} round${o.rounds > 1 ? "s" : ""}):`);
    if (vipsRates.length) {
      const threads = o.vipsThreads ? ` × ${o.vipsThreads} thread` : "";
      console.log(
        `  vipsthumbnail (${o.vipsProcs} processes${threads})      ${
          median(vipsRates).toFixed(2)
        } img/s`,
      );
    }
    console.log(
      `  sluice sharp resizer (${last?.inFlight} in flight × ${last?.threads} thread) ${
        sluice.toFixed(2)
      } img/s, ` +
        `peak RSS ${peak.toFixed(0)} MB (target ≤ ${TARGET_RSS_MB}: ${
          peak <= TARGET_RSS_MB ? "met" : "MISSED"
        })`,
    );
    for (const a of arrangements.slice(1)) {
      console.log(
        `  ${a.padEnd(38)} ${median(rates[a]).toFixed(2)} img/s, peak RSS ${
          Math.max(...rss[a]).toFixed(0)
        } MB`,
      );
    }
    if (vipsRates.length) {
      const ratio = sluice / median(vipsRates);
      console.log(
        `  RATIO sluice / vipsthumbnail = ${ratio.toFixed(2)}× (target ≥ ${TARGET_RATIO}×: ` +
          `${ratio >= TARGET_RATIO ? "met" : "MISSED"})`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.main) await run(Deno.args);

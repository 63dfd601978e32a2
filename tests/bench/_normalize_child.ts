/**
 * Child process of the normalize benchmark: renders the three benchmark variants of every image
 * in a list with one arrangement and prints one JSON line (images, seconds, peak RSS). Run in its
 * own process so its peak RSS (VmHWM) is its own.
 *
 * Arrangements: `sluice` (the normalize stage's `renderVariants`: header limits, then SharpResizer's
 * one decode, variants in parallel), `sluice-seq` (one
 * decode, variants one after another), `three-pipelines` (sharp, one full pipeline, hence one
 * decode, per variant: the straightforward way).
 * @module
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { recommendedItemsInFlight, SharpResizer } from "../../common/images/sharp_resizer.ts";
import { renderVariants } from "../../stages/normalize/render_variants.ts";
import {
  parseVariantSpecs,
  VARIANT_EXTENSIONS,
  type VariantSpec,
} from "../../common/images/variant_spec.ts";

/** The three variants every arrangement renders. */
export const BENCH_VARIANTS: VariantSpec[] = parseVariantSpecs([
  { name: "1280", width: 1280, height: 1280, mode: "fit", format: "jpeg", quality: 85 },
  { name: "640", width: 640, height: 640, mode: "letterbox", format: "jpeg", quality: 85 },
  { name: "320", width: 320, height: 320, mode: "cover", format: "jpeg", quality: 85 },
]);

interface ChildArgs {
  list: string;
  out: string;
  arrangement: string;
  inFlight: number;
  threads: number | null;
  fastShrinkOnLoad: boolean;
}

function parseArgs(argv: string[]): ChildArgs {
  const get = (k: string) => {
    const i = argv.indexOf(`--${k}`);
    return i === -1 ? undefined : argv[i + 1];
  };
  return {
    list: get("list")!,
    out: get("out")!,
    arrangement: get("arrangement") ?? "sluice",
    inFlight: Number(get("in-flight") ?? recommendedItemsInFlight()),
    threads: get("threads") ? Number(get("threads")) : null,
    fastShrinkOnLoad: get("fast-shrink-on-load") !== "false",
  };
}

async function main() {
  const a = parseArgs(Deno.args);
  const files = (await Deno.readTextFile(a.list)).split("\n").filter(Boolean);
  await mkdir(a.out, { recursive: true });
  const resizer = new SharpResizer({
    ...(a.threads ? { threads: a.threads } : {}),
    fastShrinkOnLoad: a.fastShrinkOnLoad,
    parallelVariants: a.arrangement !== "sluice-seq",
  });
  const one = async (file: string, n: number) => {
    if (a.arrangement === "three-pipelines") {
      await Promise.all(BENCH_VARIANTS.map(async (s) => {
        const fit = s.mode === "letterbox" ? "contain" : s.mode === "cover" ? "cover" : "inside";
        const bytes = await sharp(file).rotate()
          .resize(s.width, s.height, { fit, background: s.background })
          .jpeg({ quality: s.quality }).toBuffer();
        await writeFile(join(a.out, `${n}_${s.name}.jpg`), bytes);
      }));
      return;
    }
    // The stage's own CPU step: header limits, then one decode for all variants.
    const bytes = await Deno.readFile(file);
    const limits = { maxBytes: 512 << 20, maxPixels: 200_000_000 };
    for (const v of await renderVariants(bytes, BENCH_VARIANTS, { resizer, limits, name: file })) {
      await writeFile(join(a.out, `${n}_${v.spec.name}.${VARIANT_EXTENSIONS[v.format]}`), v.bytes);
    }
  };
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.max(1, a.inFlight) }, async () => {
      while (next < files.length) {
        const n = next++;
        await one(files[n], n);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await resizer.close();
  const status = await Deno.readTextFile("/proc/self/status");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  console.log(JSON.stringify({
    arrangement: a.arrangement,
    images: files.length,
    seconds,
    peakRssMb: hwm / 1024,
    inFlight: a.inFlight,
    threads: sharp.concurrency(),
  }));
}

if (import.meta.main) await main();

/**
 * Strictness check of ingest's reduced-scale verification on real photos (issue 15): every JPEG
 * of a corpus directory is verified intact, truncated at 50 % and 97 %, and with 64 bytes of its
 * entropy-coded data overwritten in the middle, at `failOn` error and warning, once with
 * `decodeScale: "reduced"` (what ingest runs) and once with `"full"`; any verdict that differs is
 * printed and the exit status is 1. With `--fused`, the fused ingest's verdict
 * (`stages/ingest/fused_render.ts`: the strict render decode, `inspectImage` for anything flagged)
 * is compared too, rendering the bench variants. `--limit N` checks the first N photos only.
 * Not a timed benchmark: a check that needs the bench corpus
 * (`deno task bench normalize` fetches it), which CI does not have, so it is not a test.
 *
 * @example
 * ```sh
 * deno run -A tests/bench/verify_scale.ts [--corpus .sluice/bench-corpus/photos] [--fused] [--limit N]
 * ```
 * @module
 */
import { join } from "node:path";
import sharp from "sharp";
import { ImageError, inspectImage } from "../../common/images/verify.ts";
import { DEFAULT_CORPUS_DIR } from "./_corpus.ts";
import { openManifest } from "../../common/manifest/mod.ts";
import { NormalizeSettingsSchema } from "../../stages/normalize/config.ts";
import { FusedRender } from "../../stages/ingest/fused_render.ts";
import { BENCH_VARIANTS } from "./_normalize_child.ts";

// As in ingest: a cached decode replays no decoder warnings.
sharp.cache(false);

const LIMITS = { maxBytes: 1 << 28, maxPixels: 200_000_000 };

async function verdict(
  bytes: Uint8Array,
  failOn: "error" | "warning",
  decodeScale: "reduced" | "full",
): Promise<string> {
  try {
    const info = await inspectImage(bytes, LIMITS, { failOn, decodeScale });
    return info.decodeWarning ? "accepted with a warning" : "accepted";
  } catch (err) {
    if (err instanceof ImageError) return `refused: ${err.code}`;
    throw err;
  }
}

async function fusedVerdict(
  fused: FusedRender,
  bytes: Uint8Array,
  failOn: "error" | "warning",
): Promise<string> {
  try {
    const r = await fused.verifyAndRender(bytes, {
      name: "photo",
      limits: LIMITS,
      failOn,
      keepMetadata: false,
    });
    return r.info.decodeWarning ? "accepted with a warning" : "accepted";
  } catch (err) {
    if (err instanceof ImageError) return `refused: ${err.code}`;
    throw err;
  }
}

/** Damaged copies of one photo, named. */
function damaged(b: Uint8Array): Array<[string, Uint8Array]> {
  const mid = Math.floor(b.length / 2);
  const corrupt = b.slice();
  for (let i = 0; i < 64; i++) corrupt[mid + i] = (i * 37 + 11) % 255;
  return [
    ["intact", b],
    ["truncated at 50%", b.subarray(0, mid)],
    ["truncated at 97%", b.subarray(0, Math.floor(b.length * 0.97))],
    ["64 corrupt bytes mid-scan", corrupt],
  ];
}

/** Runs the check; returns the number of verdicts that differ. */
export async function run(args: string[]): Promise<number> {
  const i = args.indexOf("--corpus");
  const dir = i >= 0 ? args[i + 1] : join(DEFAULT_CORPUS_DIR, "photos");
  const l = args.indexOf("--limit");
  const files = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && /\.jpe?g$/i.test(e.name))
    .map((e) => join(dir, e.name))
    .sort()
    .slice(0, l >= 0 ? Number(args[l + 1]) : undefined);
  const manifest = args.includes("--fused") ? await openManifest("sqlite::memory:") : null;
  const fused = manifest
    ? new FusedRender(manifest, NormalizeSettingsSchema.parse({ variants: BENCH_VARIANTS }))
    : null;
  if (files.length === 0) throw new Error(`verify_scale: expected JPEGs in ${dir}, found none`);
  const counts: Record<string, number> = {};
  let compared = 0, differ = 0;
  for (const file of files) {
    for (const [name, bytes] of damaged(await Deno.readFile(file))) {
      for (const level of ["error", "warning"] as const) {
        const full = await verdict(bytes, level, "full");
        const reduced = await verdict(bytes, level, "reduced");
        compared++;
        counts[`${name} @${level}: ${full}`] = (counts[`${name} @${level}: ${full}`] ?? 0) + 1;
        if (full !== reduced) {
          differ++;
          console.log(`DIFFERS ${file} ${name} @${level}: full ${full}, reduced ${reduced}`);
        }
        const f = fused ? await fusedVerdict(fused, bytes, level) : full;
        if (f !== full) {
          differ++;
          console.log(`DIFFERS ${file} ${name} @${level}: full ${full}, fused ${f}`);
        }
      }
    }
  }
  await fused?.close();
  await manifest?.close();
  console.log(
    JSON.stringify({ photos: files.length, fused: !!fused, compared, differ, counts }, null, 1),
  );
  return differ;
}

if (import.meta.main) Deno.exit((await run(Deno.args)) === 0 ? 0 : 1);

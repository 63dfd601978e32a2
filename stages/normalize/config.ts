/**
 * The normalize stage's own configuration section (`normalize` in the config file,
 * `SLUICE_NORMALIZE_*` in the environment, `--normalize-*` flags). The shared sections
 * (manifest, objectStore, staging, worker, http, log, s3) come from common/config.
 *
 * @example
 * ```ts
 * const config = await loadConfig({ stage: "normalize", stageSchema: NormalizeSettingsSchema });
 * config.stage.variants.map((v) => v.name); // ["320", "640", "1280"]
 * ```
 * @module
 */
import { z } from "zod";
import type { StageConfig } from "../../common/config/mod.ts";
import { RESIZER_CHOICES } from "../../common/images/select_resizer.ts";
import { DEFAULT_SHARP_THREADS } from "../../common/images/sharp_resizer.ts";
import {
  DEFAULT_VARIANTS,
  type VariantSpec,
  VariantSpecListSchema,
} from "../../common/images/variant_spec.ts";
import { compileNormalizeKeyTemplate, DEFAULT_NORMALIZE_KEY_TEMPLATE } from "./variant_keys.ts";

/** Default largest dataset object accepted, bytes (256 MiB). */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
/** Default largest width × height accepted (decompression-bomb guard): 100 MP. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/** A copy of the default variants (callers may mutate what they get). */
function defaultVariants(): VariantSpec[] {
  return DEFAULT_VARIANTS.map((s) => ({ ...s }));
}

/** The `normalize` section. */
export const NormalizeSettingsSchema = z.strictObject({
  variants: VariantSpecListSchema.default(defaultVariants).describe(
    "Variants to render, as a JSON list of {name, width, height, mode: fit|letterbox|cover|" +
      "stretch, format: jpeg|webp|png|avif, quality}",
  ),
  keyTemplate: z.string().default(DEFAULT_NORMALIZE_KEY_TEMPLATE).superRefine((t, ctx) => {
    try {
      compileNormalizeKeyTemplate(t);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  }).describe(
    "Variant object key template; placeholders {prefix} {variant} {stem} {ext} {sha256} {aa} " +
      "{specHash} {version} ({stem} = <specHash>/<aa>/<sha256>)",
  ),
  prefix: z.string().regex(/^([A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*)?$/, {
    error: "expected a key prefix like variants or data/variants (no leading or trailing /)",
  }).default("variants").describe("Key prefix ({prefix}) of variant objects"),
  resizer: z.enum(RESIZER_CHOICES).default("auto").describe(
    "Resizer: auto (GPU when one is usable, else CPU), cpu (sharp) or gpu (fail without one)",
  ),
  python: z.string().min(1).optional().describe("Python with torch for the GPU resizer"),
  sharpThreads: z.int().min(1).max(64).default(DEFAULT_SHARP_THREADS).describe(
    "libvips threads per sharp pipeline (parallelism comes from images in flight)",
  ),
  cpuSlots: z.int().min(0).max(256).default(0).describe(
    "Images decoded and resized at once (0 = one per core / sharpThreads); other items in " +
      "flight download and upload meanwhile",
  ),
  maxBytes: z.int().min(1).default(DEFAULT_MAX_BYTES).describe(
    "Largest dataset object accepted, bytes",
  ),
  maxPixels: z.int().min(1).default(DEFAULT_MAX_PIXELS).describe(
    "Largest width x height accepted (decompression-bomb guard)",
  ),
  backfillNewSpecs: z.boolean().default(true).describe(
    "At start-up, enqueue every ingested image lacking a variant whose spec is new",
  ),
});

/** The normalize section as written (defaults may be left out). */
export type NormalizeSettingsInput = z.input<typeof NormalizeSettingsSchema>;
/** The validated normalize section. */
export type NormalizeSettings = z.output<typeof NormalizeSettingsSchema>;
/** The whole configuration the normalize stage runs with. */
export type NormalizeConfig = StageConfig<typeof NormalizeSettingsSchema>;

/**
 * CPU slots for a configuration: `cpuSlots`, or one per core divided by `sharpThreads`.
 *
 * @example
 * ```ts
 * cpuSlotsFor({ cpuSlots: 0, sharpThreads: 1 }); // 2 on a 2-core machine
 * ```
 */
export function cpuSlotsFor(s: Pick<NormalizeSettings, "cpuSlots" | "sharpThreads">): number {
  if (s.cpuSlots > 0) return s.cpuSlots;
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  return Math.max(1, Math.floor(cores / s.sharpThreads));
}

/**
 * Items in flight when `worker.concurrency` is not set explicitly: the CPU slots plus two, so
 * that while every slot decodes or encodes, one item uploads its variants and records them while
 * the next one is already fetched and hashed (its render starts the moment a slot frees).
 *
 * @example
 * ```ts
 * recommendedConcurrency({ cpuSlots: 0, sharpThreads: 1 }); // 4 on a 2-core machine
 * ```
 */
export function recommendedConcurrency(
  s: Pick<NormalizeSettings, "cpuSlots" | "sharpThreads">,
): number {
  return cpuSlotsFor(s) + 2;
}

/**
 * Items in flight for a loaded configuration: `worker.concurrency` when it was set (file, env or
 * flag, as listed in `sources`), else {@link recommendedConcurrency}.
 *
 * @example
 * ```ts
 * const { config, sources } = await parseStageArgs(Deno.args, { ... });
 * effectiveConcurrency(config, sources); // 4 on 2 cores unless --worker-concurrency was given
 * ```
 */
export function effectiveConcurrency(
  config: Pick<NormalizeConfig, "worker" | "stage">,
  sources: Readonly<Record<string, string>>,
): number {
  if (sources["worker.concurrency"] !== undefined) return config.worker.concurrency;
  return recommendedConcurrency(config.stage);
}

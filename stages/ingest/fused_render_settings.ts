/**
 * Where a fused ingest (`ingest.renderVariants`) gets normalize's settings: the `normalize`
 * section of the same configuration sources normalize reads (the config file and the
 * `SLUICE_NORMALIZE_*` environment; normalize's own `--normalize-*` flags are not seen by ingest).
 *
 * @example
 * ```ts
 * const normalize = config.stage.renderVariants
 *   ? await loadFusedRenderSettings({ argv: Deno.args })
 *   : undefined;
 * const fused = fusedRenderFor(config.stage, manifest, normalize); // undefined when off
 * ```
 * @module
 */
import { loadConfig } from "../../common/config/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import { NormalizeSettingsSchema } from "../normalize/config.ts";
import { FusedRender, type FusedRenderSettings } from "./fused_render.ts";

export type { FusedRenderSettings };

/**
 * Normalize's section of the configuration file `configFile` (if any) and `env`.
 *
 * @example
 * ```ts
 * (await loadFusedRenderSettings({ argv: Deno.args, env: {} })).variants.map((v) => v.name); // ["320", "640", "1280"]
 * ```
 */
export async function loadFusedRenderSettings(o: {
  /** Ingest's command line: only its `--config <file>` is used. */
  argv?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
}): Promise<FusedRenderSettings> {
  const configFile = configPathOf(o.argv ?? []);
  const config = await loadConfig({
    stage: "normalize",
    stageSchema: NormalizeSettingsSchema,
    argv: configFile !== undefined ? ["--config", configFile] : [],
    ...(o.env ? { env: o.env } : {}),
    ...(o.cwd ? { cwd: o.cwd } : {}),
    // Ingest's own variables are reported by ingest's load; not again here.
    onWarning: () => {},
  });
  return config.stage;
}

/** The last `--config <file>` / `--config=<file>` of a command line (the file ingest reads). */
function configPathOf(argv: readonly string[]): string | undefined {
  let path: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--") break;
    if (argv[i] === "--config" && i + 1 < argv.length) path = argv[++i];
    else if (argv[i].startsWith("--config=")) path = argv[i].slice("--config=".length);
  }
  return path;
}

/**
 * The fused renderer when `renderVariants` is on (with `normalize`, or normalize's defaults),
 * else undefined.
 *
 * @example
 * ```ts
 * fusedRenderFor({ renderVariants: false }, manifest); // undefined
 * ```
 */
export function fusedRenderFor(
  s: { renderVariants: boolean },
  manifest: Pick<ManifestStore, "registerVariantSpec" | "listVariantSpecs">,
  normalize?: FusedRenderSettings,
): FusedRender | undefined {
  if (!s.renderVariants) return undefined;
  return new FusedRender(manifest, normalize ?? NormalizeSettingsSchema.parse({}));
}

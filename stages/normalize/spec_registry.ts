/**
 * Registers the configured variant specs in the manifest: each (name, spec hash) gets a version,
 * and a spec that changed under an existing name gets the next version instead of replacing the
 * old one, so the old version's rows and objects stay valid.
 *
 * @example
 * ```ts
 * const specs = await registerVariantSpecs(manifest, config.stage.variants);
 * specs[0]; // { spec, specHash: "5d1c…", version: 1, created: true }
 * ```
 * @module
 */
import type { ManifestStore } from "../../common/manifest/mod.ts";
import { specHash, type VariantSpec } from "../../common/images/variant_spec.ts";

/** A configured variant with its manifest identity. */
export interface RegisteredSpec {
  spec: VariantSpec;
  specHash: string;
  /** Manifest version of (name, specHash): 1 for the first spec of a name, then 2, 3, ... */
  version: number;
  /** This call created the version (no other process had registered it before). */
  created: boolean;
}

/**
 * Registers every spec (idempotent) and returns them in configuration order.
 *
 * @example
 * ```ts
 * const [v320] = await registerVariantSpecs(manifest, [{ ...spec320, quality: 70 }]);
 * v320.version; // 2 when quality 85 was registered before
 * ```
 */
export async function registerVariantSpecs(
  manifest: Pick<ManifestStore, "registerVariantSpec" | "listVariantSpecs">,
  specs: readonly VariantSpec[],
): Promise<RegisteredSpec[]> {
  const known = new Set(
    (await manifest.listVariantSpecs()).map((r) => `${r.name}\u0000${r.specHash}`),
  );
  const out: RegisteredSpec[] = [];
  for (const spec of specs) {
    const hash = specHash(spec);
    const row = await manifest.registerVariantSpec(spec.name, hash, spec);
    out.push({
      spec,
      specHash: hash,
      version: row.version,
      created: !known.has(`${spec.name}\u0000${hash}`),
    });
  }
  return out;
}

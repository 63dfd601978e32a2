/**
 * Checks that the native addons a target's binaries embed are installed: npm installs sharp's
 * platform packages (`@img/sharp-linux-<arch>`, `@img/sharp-libvips-linux-<arch>`) for this
 * machine only, so a cross-compiled binary would otherwise start without its image library.
 * onnxruntime-node ships every Linux architecture in one package.
 *
 * @example
 * ```ts
 * missingNativePackages("aarch64-unknown-linux-gnu", ".");
 * // ["@img/sharp-linux-arm64", "@img/sharp-libvips-linux-arm64"] on an x86_64 machine
 * ```
 * @module
 */
import { join } from "node:path";
import type { Target } from "./stages.ts";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The npm packages (or package parts) `target` needs that `root`'s node_modules lacks. */
export function missingNativePackages(target: Target, root: string): string[] {
  const arch = target.startsWith("aarch64") ? "arm64" : "x64";
  const store = join(root, "node_modules", ".deno");
  let entries: string[] = [];
  try {
    entries = [...Deno.readDirSync(store)].map((e) => e.name);
  } catch {
    // No node_modules: everything is missing.
  }
  const missing = [`@img/sharp-linux-${arch}`, `@img/sharp-libvips-linux-${arch}`].filter((p) =>
    !entries.some((e) => e.startsWith(`${p.replace("/", "+")}@`))
  );
  const ort = entries.find((e) => e.startsWith("onnxruntime-node@"));
  if (
    !ort || !exists(join(store, ort, "node_modules/onnxruntime-node/bin/napi-v6/linux", arch))
  ) missing.push(`onnxruntime-node (bin/napi-v6/linux/${arch})`);
  return missing;
}

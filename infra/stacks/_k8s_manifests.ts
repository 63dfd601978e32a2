/**
 * Puts Kubernetes objects into a stack as `kubernetes_manifest` resources (one per object, named
 * `<kind>_<name>`), validated first, with the image reference swapped for the `image` variable so
 * the Deployments, the ConfigMap's SLUICE_TRAIN_K8S_IMAGE and hence the train Job keep one image
 * setting at deploy time too.
 *
 * @example
 * ```ts
 * addManifests(stack, stageObjects(settings), { image: imageRef(settings.image) });
 * ```
 * @module
 */
import type { Construct } from "constructs";
import { TerraformVariable } from "cdktf";
import type { ITerraformDependable, TerraformProvider } from "cdktf";
import { Manifest } from "@cdktf/provider-kubernetes/lib/manifest/index.js";
import type { K8sObject } from "../k8s/stage_objects.ts";
import { validateObjects } from "../k8s/validate_objects.ts";

/** How the manifests are added. */
export interface ManifestOptions {
  /** The image reference in the objects, replaced by `${var.image}` (default = it). */
  image: string;
  provider?: TerraformProvider;
  /** Terraform `count` expression (e.g. `${var.in_cluster ? 1 : 0}`). */
  count?: string;
  dependsOn?: ITerraformDependable[];
}

/** Terraform-safe resource name of an object. */
export function manifestId(o: K8sObject): string {
  return `${o.kind}_${o.metadata?.name ?? "unnamed"}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

function swapImage(v: unknown, image: string): unknown {
  if (typeof v === "string") return v === image ? "${var.image}" : v;
  if (Array.isArray(v)) return v.map((x) => swapImage(x, image));
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swapImage(x, image)]));
  }
  return v;
}

/**
 * Adds the `image` variable and one `kubernetes_manifest` per object; namespaced objects wait
 * for the Namespace (and the StorageClass) manifests.
 *
 * @example
 * ```ts
 * const m = addManifests(stack, objects, { image: "ghcr.io/sluice/sluice:1.2.0" });
 * m.get("deployment_sluice_ingest");
 * ```
 */
export function addManifests(
  scope: Construct,
  objects: readonly K8sObject[],
  o: ManifestOptions,
): Map<string, Manifest> {
  validateObjects(objects);
  new TerraformVariable(scope, "image", {
    type: "string",
    default: o.image,
    description: "Container image of every stage and of the train Job",
  });
  const out = new Map<string, Manifest>();
  const first: Manifest[] = [];
  for (const obj of objects) {
    const clusterScoped = obj.kind === "Namespace" || obj.kind === "StorageClass";
    const m = new Manifest(scope, manifestId(obj), {
      manifest: swapImage(obj, o.image) as Record<string, unknown>,
      ...(o.provider ? { provider: o.provider } : {}),
      dependsOn: [...(o.dependsOn ?? []), ...(clusterScoped ? [] : first)],
    });
    if (o.count) m.addOverride("count", o.count);
    if (clusterScoped) first.push(m);
    out.set(manifestId(obj), m);
  }
  return out;
}

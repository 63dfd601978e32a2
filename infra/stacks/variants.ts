/**
 * The four deployment variants and the files synthesized from them: `infra/<variant>/main.tf.json`
 * (what OpenTofu or Terraform applies; no cdktf at deploy time) and `infra/k8s/sluice.k8s.json`
 * (the stage objects as a `v1/List` for `kubectl apply -f`).
 *
 * @example
 * ```ts
 * const files = renderInfraFiles(); // Map { "infra/aws/main.tf.json" => "{...}", ... }
 * ```
 * @module
 */
import { K8sSettingsSchema } from "../k8s/k8s_settings.ts";
import { stageObjects } from "../k8s/stage_objects.ts";
import { validateObjects } from "../k8s/validate_objects.ts";
import { synthStack, type TfJson } from "./_tf_json.ts";
import { AwsSettingsSchema, AwsStack } from "./aws_stack.ts";
import { EksSettingsSchema, EksStack } from "./eks_stack.ts";
import { OpenshiftSettingsSchema, OpenshiftStack } from "./openshift_stack.ts";
import { Rke2SettingsSchema, Rke2Stack } from "./rke2_stack.ts";

/** The variants, each a directory under `infra/`. */
export const VARIANTS = ["aws", "eks", "openshift", "rke2"] as const;
/** One of {@link VARIANTS}. */
export type Variant = typeof VARIANTS[number];

/**
 * Terraform JSON of one variant with its default settings.
 *
 * @example
 * ```ts
 * Object.keys(synthVariant("aws").resource as object); // ["aws_autoscaling_group", ...]
 * ```
 */
export function synthVariant(v: Variant): TfJson {
  switch (v) {
    case "aws":
      return synthStack((app) => new AwsStack(app, v, AwsSettingsSchema.parse({})));
    case "eks":
      return synthStack((app) => new EksStack(app, v, EksSettingsSchema.parse({})));
    case "openshift":
      return synthStack((app) => new OpenshiftStack(app, v, OpenshiftSettingsSchema.parse({})));
    case "rke2":
      return synthStack((app) => new Rke2Stack(app, v, Rke2SettingsSchema.parse({})));
  }
}

/** Path (relative to the repository root) of a variant's Terraform JSON. */
export function variantFile(v: Variant): string {
  return `infra/${v}/main.tf.json`;
}

/** Path of the kubectl-ready list of stage objects. */
export const K8S_LIST_FILE = "infra/k8s/sluice.k8s.json";

/**
 * Every generated file and its text.
 *
 * @example
 * ```ts
 * renderInfraFiles().get("infra/rke2/main.tf.json")!.startsWith("{"); // true
 * ```
 */
export function renderInfraFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const v of VARIANTS) {
    files.set(variantFile(v), JSON.stringify(synthVariant(v), null, 2) + "\n");
  }
  const objects = stageObjects(K8sSettingsSchema.parse({}));
  validateObjects(objects);
  files.set(
    K8S_LIST_FILE,
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2) + "\n",
  );
  return files;
}

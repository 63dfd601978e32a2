/**
 * The train Indexed Job and its headless Service exactly as the train launcher writes them
 * (`stages/train/k8s.ts`), rendered with the deployment's image, namespace and staging path, so
 * the Job the launcher writes at run time and the one validated here are the same objects.
 *
 * @example
 * ```ts
 * const [job, service] = trainJobObjects(plan, K8sSettingsSchema.parse({}));
 * job.kind; // "Job"
 * ```
 * @module
 */
import { k8sObjects } from "../../stages/train/k8s.ts";
import type { LaunchPlan } from "../../stages/train/training_inputs.ts";
import { imageRef } from "../image.ts";
import type { K8sSettings } from "./k8s_settings.ts";
import type { K8sObject } from "./stage_objects.ts";

/**
 * Job + Service for `plan` under the deployment's settings.
 *
 * @example
 * ```ts
 * trainJobObjects(plan, settings)[0].spec.template.spec.containers[0].image; // settings' image
 * ```
 */
export function trainJobObjects(plan: LaunchPlan, s: K8sSettings): K8sObject[] {
  const hostPath = s.staging.kind === "hostPath" ? s.staging.path : undefined;
  const { job, service } = k8sObjects(plan, {
    namespace: s.namespace,
    image: imageRef(s.image),
    // The image puts the binaries on PATH (the launcher's own default names the host path).
    binPath: "sluice-train",
    masterPort: s.trainMasterPort,
    gpusPerNode: s.trainGpusPerNode,
    // The launcher mounts the parent of the staging root and stages under <mount>/sluice.
    ...(hostPath ? { stagingHostPath: hostPath.replace(/\/sluice\/?$/, "") || "/" } : {}),
    ...(s.staging.kind === "localPV"
      ? { stagingClaim: { storageClass: s.staging.storageClass, size: s.staging.size } }
      : {}),
  });
  return [job as K8sObject, service as K8sObject];
}

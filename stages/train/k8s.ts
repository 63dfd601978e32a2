/**
 * Kubernetes definitions for a multi-host run: an Indexed Job (`completions = parallelism =
 * nodes`, one pod per rank, the rank from the completion index) and a headless Service whose DNS
 * name gives every pod a stable address, so rank 0 is `<job>-0.<service>` (MASTER_ADDR). Each pod
 * runs `sluice-train node --plan <launch.json key>`, which stages its shard on the node's NVMe
 * and runs one trainer rank; rank 0 also tracks, registers and promotes. Shared settings
 * (manifest, stores, MLflow) come from the `sluice-config` ConfigMap and `sluice-secrets` Secret.
 *
 * @example
 * ```ts
 * const { job, service, jobName } = renderK8s(plan, { namespace: "ml", image: "reg/sluice:1.2", ... });
 * await store.put(`${plan.keys.dir}/k8s/job.yaml`, new TextEncoder().encode(job));
 * ```
 * @module
 */
import { toYaml, type YamlValue } from "../../common/yaml/mod.ts";
import type { LaunchPlan } from "./training_inputs.ts";

/** Settings of the rendered objects. */
export interface K8sOptions {
  namespace: string;
  image: string;
  /** The sluice-train binary inside the image. */
  binPath: string;
  masterPort: number;
  gpusPerNode: number;
  /** Host path of the NVMe scratch mount (staging root's parent). */
  stagingHostPath?: string;
  /**
   * An ephemeral volume per rank instead of the hostPath: OpenShift's restricted SCC refuses
   * hostPath volumes, and local PersistentVolumes reach the same NVMe through a StorageClass.
   */
  stagingClaim?: { storageClass: string; size: string };
  /** Where the staging root is mounted in the pod (default `/mnt/nvme`). */
  stagingMountPath?: string;
  configMap?: string;
  secret?: string;
}

/** The rendered YAML documents and the names in them. */
export interface K8sDefinitions {
  jobName: string;
  serviceName: string;
  /** `<job>-0.<service>.<namespace>.svc`, what every rank connects to. */
  masterAddr: string;
  job: string;
  service: string;
}

/** A DNS label from the snapshot and layout ids: `sluice-train-<10 hex>-<6 hex>`. */
export function jobNameFor(plan: Pick<LaunchPlan, "snapshotId" | "layout">): string {
  const snap = plan.snapshotId.replace(/^snap-/, "").slice(0, 10);
  const layout = plan.layout.replace(/^run-/, "").slice(0, 6);
  return `sluice-train-${snap}-${layout}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

/** The Job and the Service as objects (what `renderK8s` writes as YAML). */
export interface K8sObjects extends Omit<K8sDefinitions, "job" | "service"> {
  job: YamlValue;
  service: YamlValue;
}

/**
 * Renders the Job and the Service for `plan`.
 *
 * @example
 * ```ts
 * renderK8s(plan, { namespace: "default", image: "sluice:latest", binPath: "/usr/local/bin/sluice-train",
 *   masterPort: 29500, gpusPerNode: 1 }).job; // "apiVersion: \"batch/v1\"\nkind: \"Job\"…"
 * ```
 */
export function renderK8s(plan: LaunchPlan, opts: K8sOptions): K8sDefinitions {
  const { job, service, ...names } = k8sObjects(plan, opts);
  return {
    ...names,
    job: toYaml(job, { quoteStrings: true }),
    service: toYaml(service, { quoteStrings: true }),
  };
}

/**
 * The Job and the Service for `plan` as objects (infra validates and deploys these).
 *
 * @example
 * ```ts
 * k8sObjects(plan, opts).job; // { apiVersion: "batch/v1", kind: "Job", ... }
 * ```
 */
export function k8sObjects(plan: LaunchPlan, opts: K8sOptions): K8sObjects {
  const jobName = jobNameFor(plan);
  const serviceName = jobName;
  const nodes = plan.settings.nodes;
  const masterAddr = `${jobName}-0.${serviceName}.${opts.namespace}.svc`;
  const labels = {
    "app.kubernetes.io/name": "sluice-train",
    "app.kubernetes.io/part-of": "sluice",
    "sluice.dev/snapshot": plan.snapshotId,
    "sluice.dev/layout": plan.layout,
  };
  const mountPath = opts.stagingMountPath ?? "/mnt/nvme";
  const env: YamlValue[] = [
    {
      name: "RANK",
      valueFrom: {
        fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
      },
    },
    { name: "WORLD_SIZE", value: String(nodes) },
    { name: "LOCAL_RANK", value: "0" },
    { name: "LOCAL_WORLD_SIZE", value: "1" },
    { name: "MASTER_ADDR", value: masterAddr },
    { name: "MASTER_PORT", value: String(opts.masterPort) },
    { name: "SLUICE_STAGING_ROOT", value: `${mountPath}/sluice` },
    { name: "SLUICE_HTTP_HOSTNAME", value: "0.0.0.0" },
  ];
  const resources: YamlValue = opts.gpusPerNode > 0
    ? {
      limits: { "nvidia.com/gpu": opts.gpusPerNode },
      requests: { "nvidia.com/gpu": opts.gpusPerNode },
    }
    : {};
  const job: YamlValue = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: jobName, namespace: opts.namespace, labels },
    spec: {
      completionMode: "Indexed",
      completions: nodes,
      parallelism: nodes,
      // A distributed run with a lost rank cannot continue; start the whole Job again instead.
      backoffLimit: 0,
      template: {
        metadata: { labels },
        spec: {
          subdomain: serviceName,
          restartPolicy: "Never",
          containers: [{
            name: "trainer",
            image: opts.image,
            command: [opts.binPath, "node", "--plan", plan.keys.launch],
            env,
            envFrom: [
              { configMapRef: { name: opts.configMap ?? "sluice-config", optional: true } },
              { secretRef: { name: opts.secret ?? "sluice-secrets", optional: true } },
            ],
            ports: [{ name: "rendezvous", containerPort: opts.masterPort }],
            resources,
            volumeMounts: [{ name: "staging", mountPath }],
          }],
          volumes: [stagingVolume(opts)],
        },
      },
    },
  };
  const service: YamlValue = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: serviceName, namespace: opts.namespace, labels },
    spec: {
      clusterIP: "None",
      // Ranks resolve each other before they are ready: rendezvous happens during start-up.
      publishNotReadyAddresses: true,
      selector: { "job-name": jobName },
      ports: [{ name: "rendezvous", port: opts.masterPort, targetPort: opts.masterPort }],
    },
  };
  return { jobName, serviceName, masterAddr, job, service };
}

function stagingVolume(opts: K8sOptions): YamlValue {
  if (!opts.stagingClaim) {
    return {
      name: "staging",
      hostPath: { path: opts.stagingHostPath ?? "/mnt/nvme", type: "Directory" },
    };
  }
  return {
    name: "staging",
    ephemeral: {
      volumeClaimTemplate: {
        metadata: { labels: { "app.kubernetes.io/part-of": "sluice" } },
        spec: {
          accessModes: ["ReadWriteOnce"],
          storageClassName: opts.stagingClaim.storageClass,
          resources: { requests: { storage: opts.stagingClaim.size } },
        },
      },
    },
  };
}

/**
 * Typed settings of the stages' Kubernetes objects: namespace, image, staging volume (hostPath
 * or a local PersistentVolume class), per-stage replicas and resources, non-secret configuration
 * (ConfigMap) and the name of the Secret that holds the rest.
 *
 * @example
 * ```ts
 * const s = K8sSettingsSchema.parse({ namespace: "ml", image: { tag: "1.2.0" } });
 * s.staging.kind; // "hostPath"
 * ```
 * @module
 */
import { z } from "zod";
import { ImageSettingsSchema } from "../image.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/;
/** Environment names whose values are secrets: these belong in the Secret, never the ConfigMap. */
const SECRET_NAME = /(SECRET|PASSWORD|TOKEN|ACCESS_KEY|API_KEY|PRIVATE_KEY|CREDENTIAL)/;

/** The long-running workloads, each a Deployment. */
export const WORKLOADS = ["ingest", "normalize", "train", "infer"] as const;
/** One of {@link WORKLOADS}. */
export type Workload = typeof WORKLOADS[number];

const quantity = (what: string) =>
  z.string().regex(QUANTITY, {
    error: `expected a Kubernetes quantity for ${what} (e.g. 500m, 2Gi)`,
  });

const WorkloadSchema = z.strictObject({
  replicas: z.int().min(0).max(1000),
  cpuRequest: quantity("cpu"),
  cpuLimit: quantity("cpu").optional(),
  memoryRequest: quantity("memory"),
  memoryLimit: quantity("memory"),
  gpus: z.int().min(0).max(16).default(0),
});

/** Replicas and resources of one Deployment. */
export type WorkloadSettings = z.infer<typeof WorkloadSchema>;

const DEFAULT_WORKLOADS: Record<Workload, z.input<typeof WorkloadSchema>> = {
  ingest: {
    replicas: 2,
    cpuRequest: "500m",
    cpuLimit: "2",
    memoryRequest: "1Gi",
    memoryLimit: "2Gi",
  },
  normalize: {
    replicas: 2,
    cpuRequest: "2",
    cpuLimit: "4",
    memoryRequest: "2Gi",
    memoryLimit: "4Gi",
  },
  train: {
    replicas: 1,
    cpuRequest: "250m",
    cpuLimit: "1",
    memoryRequest: "512Mi",
    memoryLimit: "1Gi",
  },
  infer: { replicas: 1, cpuRequest: "1", cpuLimit: "4", memoryRequest: "2Gi", memoryLimit: "4Gi" },
};

/** Where `/mnt/nvme/sluice` in the pod comes from. */
export const StagingSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("hostPath"),
    /** The node's staging directory, prepared by `infra/bootstrap/nvme.sh`. */
    path: z.string().startsWith("/").default("/mnt/nvme/sluice"),
  }),
  z.strictObject({
    kind: z.literal("localPV"),
    /** A StorageClass of local PersistentVolumes on the nodes' NVMe (created here). */
    storageClass: z.string().regex(DNS_LABEL).default("sluice-nvme"),
    /** Size each pod claims. */
    size: quantity("storage").default("100Gi"),
  }),
]);

/** Settings of all the stage objects. */
export const K8sSettingsSchema = z.strictObject({
  namespace: z.string().regex(DNS_LABEL, { error: "expected a DNS label" }).default("sluice"),
  image: ImageSettingsSchema.prefault({}),
  staging: StagingSchema.default({ kind: "hostPath", path: "/mnt/nvme/sluice" }),
  /** Mount path of the staging volume inside the pods (SLUICE_STAGING_ROOT). */
  stagingMountPath: z.string().startsWith("/").default("/mnt/nvme/sluice"),
  workloads: z.strictObject(
    Object.fromEntries(
      WORKLOADS.map((w) => [w, WorkloadSchema.prefault(DEFAULT_WORKLOADS[w])]),
    ) as Record<Workload, z.ZodPrefault<typeof WorkloadSchema>>,
  ).prefault({}),
  /** Non-secret SLUICE_* / MLFLOW_* / AWS_* settings for the ConfigMap. */
  config: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/), z.string()).default({}).superRefine(
    (env, ctx) => {
      for (const [k, v] of Object.entries(env)) {
        if (SECRET_NAME.test(k)) {
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: `expected ${k} in the Secret, not the ConfigMap (it names a secret)`,
          });
        }
        if (/^[a-z]+:\/\/[^/@]*:[^/@]*@/.test(v)) {
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: `expected ${k} without a password in its URL (put the URL in the Secret)`,
          });
        }
      }
    },
  ),
  configMap: z.string().regex(DNS_LABEL).default("sluice-config"),
  /** The Secret (created by the operator, never here) with SLUICE_MANIFEST_URL, tokens, keys. */
  secret: z.string().regex(DNS_LABEL).default("sluice-secrets"),
  /** Annotations per workload's ServiceAccount (e.g. eks.amazonaws.com/role-arn for IRSA). */
  serviceAccountAnnotations: z.partialRecord(z.enum(WORKLOADS), z.record(z.string(), z.string()))
    .default({}),
  /** Node labels the pods require (e.g. the NVMe node group's). */
  nodeSelector: z.record(z.string(), z.string()).default({}),
  /** Fixed UID; unset on OpenShift, which assigns one from the namespace range. */
  runAsUser: z.int().min(1).optional(),
  ingestServiceType: z.enum(["ClusterIP", "NodePort", "LoadBalancer"]).default("ClusterIP"),
  /** torch.distributed port of the train Indexed Job. */
  trainMasterPort: z.int().min(1).max(65535).default(29500),
  trainGpusPerNode: z.int().min(0).max(16).default(0),
});

/** Parsed settings. */
export type K8sSettings = z.infer<typeof K8sSettingsSchema>;
/** Settings as written by a caller (defaults filled in by the schema). */
export type K8sSettingsInput = z.input<typeof K8sSettingsSchema>;

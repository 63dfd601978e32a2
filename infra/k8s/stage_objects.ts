/**
 * The stages' Kubernetes objects: a Deployment per long-running stage (ingest events, normalize,
 * infer, train worker) under the OpenShift restricted SCC (no fixed UID, no privilege escalation,
 * all capabilities dropped, RuntimeDefault seccomp, read-only root filesystem with emptyDirs for
 * /tmp and the cache), probes on /healthz and /readyz, Prometheus scrape annotations, a
 * PodDisruptionBudget each, a ServiceAccount each, the ingest Service (webhook + metrics), the
 * ConfigMap of non-secret settings, the Namespace and, for local PVs, their StorageClass.
 * Secrets are referenced (`envFrom.secretRef`), never written.
 *
 * @example
 * ```ts
 * const objects = stageObjects(K8sSettingsSchema.parse({ image: { tag: "1.2.0" } }));
 * validateObjects(objects); // throws on any object the Kubernetes schema rejects
 * ```
 * @module
 */
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IStorageClass } from "kubernetes-models/storage.k8s.io/v1/StorageClass";
import type { IIoK8sApiCoreV1Volume } from "kubernetes-models/v1/Volume";
import { DEFAULT_HTTP_PORTS } from "../../common/config/schema.ts";
import { imageRef } from "../image.ts";
import { type K8sSettings, type Workload, WORKLOADS } from "./k8s_settings.ts";

/** Any object this module (or the train launcher) produces. */
export type K8sObject =
  | INamespace
  | IConfigMap
  | IServiceAccount
  | IService
  | IDeployment
  | IPodDisruptionBudget
  | IStorageClass
  | { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string } };

/** Binary and arguments of each workload's container (the image has `sluice-*` on PATH). */
export const WORKLOAD_COMMANDS: Readonly<Record<Workload, readonly string[]>> = {
  ingest: ["sluice-ingest", "events"],
  normalize: ["sluice-normalize", "run"],
  train: ["sluice-train", "worker"],
  infer: ["sluice-infer", "run"],
};

/** Deployment name of a workload (`sluice-train-worker` for train). */
export function workloadName(w: Workload): string {
  return w === "train" ? "sluice-train-worker" : `sluice-${w}`;
}

/** Container port of a workload's HTTP server (health, readiness, metrics, webhook). */
export function workloadPort(w: Workload): number {
  return DEFAULT_HTTP_PORTS[w];
}

function labelsOf(w: Workload): Record<string, string> {
  return {
    "app.kubernetes.io/name": workloadName(w),
    "app.kubernetes.io/component": w,
    "app.kubernetes.io/part-of": "sluice",
  };
}

function stagingVolume(s: K8sSettings): IIoK8sApiCoreV1Volume {
  if (s.staging.kind === "hostPath") {
    return { name: "staging", hostPath: { path: s.staging.path, type: "Directory" } };
  }
  return {
    name: "staging",
    ephemeral: {
      volumeClaimTemplate: {
        metadata: { labels: { "app.kubernetes.io/part-of": "sluice" } },
        spec: {
          accessModes: ["ReadWriteOnce"],
          storageClassName: s.staging.storageClass,
          resources: { requests: { storage: s.staging.size } },
        },
      },
    },
  };
}

function deployment(w: Workload, s: K8sSettings): IDeployment {
  const name = workloadName(w);
  const port = workloadPort(w);
  const r = s.workloads[w];
  const gpu: Record<string, string> = r.gpus > 0 ? { "nvidia.com/gpu": String(r.gpus) } : {};
  const limits: Record<string, string> = { memory: r.memoryLimit, ...gpu };
  if (r.cpuLimit) limits.cpu = r.cpuLimit;
  const labels = labelsOf(w);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: s.namespace, labels },
    spec: {
      replicas: r.replicas,
      selector: { matchLabels: { "app.kubernetes.io/name": name } },
      // Staging is per pod and leases expire: replacing pods one at a time is enough.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      template: {
        metadata: {
          labels,
          annotations: {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(port),
            "prometheus.io/path": "/metrics",
          },
        },
        spec: {
          serviceAccountName: name,
          automountServiceAccountToken: false,
          // The stages drain their leases on SIGTERM (systemd gives them 90 s too).
          terminationGracePeriodSeconds: 90,
          ...(Object.keys(s.nodeSelector).length > 0 ? { nodeSelector: s.nodeSelector } : {}),
          securityContext: {
            runAsNonRoot: true,
            ...(s.runAsUser !== undefined ? { runAsUser: s.runAsUser } : {}),
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [{
            name: w,
            image: imageRef(s.image),
            command: [...WORKLOAD_COMMANDS[w]],
            ports: [{ name: "http", containerPort: port, protocol: "TCP" }],
            env: [
              // Each pod is its own worker: lease owner and staging directory name.
              { name: "SLUICE_WORKER_ID", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
              { name: "SLUICE_HTTP_HOSTNAME", value: "0.0.0.0" },
              { name: "SLUICE_HTTP_PORT", value: String(port) },
              { name: "SLUICE_STAGING_ROOT", value: s.stagingMountPath },
              { name: "XDG_CACHE_HOME", value: "/var/cache/sluice" },
              { name: "TMPDIR", value: "/tmp" },
              { name: "MALLOC_ARENA_MAX", value: "2" },
            ],
            envFrom: [
              { configMapRef: { name: s.configMap } },
              { secretRef: { name: s.secret } },
            ],
            resources: {
              requests: { cpu: r.cpuRequest, memory: r.memoryRequest, ...gpu },
              limits,
            },
            startupProbe: {
              httpGet: { path: "/healthz", port: "http" },
              periodSeconds: 5,
              failureThreshold: 60,
            },
            livenessProbe: {
              httpGet: { path: "/healthz", port: "http" },
              periodSeconds: 10,
              timeoutSeconds: 5,
              failureThreshold: 6,
            },
            readinessProbe: {
              httpGet: { path: "/readyz", port: "http" },
              periodSeconds: 5,
              timeoutSeconds: 5,
              failureThreshold: 3,
            },
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              capabilities: { drop: ["ALL"] },
              seccompProfile: { type: "RuntimeDefault" },
            },
            volumeMounts: [
              { name: "staging", mountPath: s.stagingMountPath },
              { name: "tmp", mountPath: "/tmp" },
              { name: "cache", mountPath: "/var/cache/sluice" },
            ],
          }],
          volumes: [
            stagingVolume(s),
            { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
            // Binaries materialise their native libraries and the trainer here on first start.
            { name: "cache", emptyDir: { sizeLimit: "2Gi" } },
          ],
        },
      },
    },
  };
}

function pdb(w: Workload, s: K8sSettings): IPodDisruptionBudget {
  const name = workloadName(w);
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name, namespace: s.namespace, labels: labelsOf(w) },
    spec: { maxUnavailable: 1, selector: { matchLabels: { "app.kubernetes.io/name": name } } },
  };
}

function serviceAccount(w: Workload, s: K8sSettings): IServiceAccount {
  const annotations = s.serviceAccountAnnotations[w];
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: {
      name: workloadName(w),
      namespace: s.namespace,
      labels: labelsOf(w),
      ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    automountServiceAccountToken: false,
  };
}

/** The ConfigMap's data: the caller's settings plus the ones every deployment needs. */
export function configData(s: K8sSettings): Record<string, string> {
  return {
    SLUICE_LOG_FORMAT: "json",
    // The train launcher's Indexed Job uses the same image as the Deployments.
    SLUICE_TRAIN_K8S_IMAGE: imageRef(s.image),
    SLUICE_TRAIN_K8S_NAMESPACE: s.namespace,
    // The image has the binaries on PATH; the Job the launcher writes runs this.
    SLUICE_TRAIN_BIN_PATH: WORKLOAD_COMMANDS.train[0],
    // The Job the launcher writes at run time stages where the Deployments do.
    ...(s.staging.kind === "localPV"
      ? {
        SLUICE_TRAIN_K8S_STAGING_STORAGE_CLASS: s.staging.storageClass,
        SLUICE_TRAIN_K8S_STAGING_SIZE: s.staging.size,
      }
      : {}),
    ...s.config,
  };
}

/**
 * Every object of the stages, in apply order.
 *
 * @example
 * ```ts
 * stageObjects(K8sSettingsSchema.parse({})).map((o) => o.kind); // ["Namespace", "ConfigMap", ...]
 * ```
 */
export function stageObjects(s: K8sSettings): K8sObject[] {
  const ns: INamespace = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: s.namespace,
      labels: {
        "app.kubernetes.io/part-of": "sluice",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
      },
    },
  };
  const config: IConfigMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: s.configMap, namespace: s.namespace },
    data: configData(s),
  };
  const ingestService: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: workloadName("ingest"),
      namespace: s.namespace,
      labels: labelsOf("ingest"),
    },
    spec: {
      type: s.ingestServiceType,
      selector: { "app.kubernetes.io/name": workloadName("ingest") },
      // POST /events (S3 notifications) and GET /metrics on the same port.
      ports: [{ name: "http", port: workloadPort("ingest"), targetPort: "http", protocol: "TCP" }],
    },
  };
  const storage: IStorageClass[] = s.staging.kind === "localPV"
    ? [{
      apiVersion: "storage.k8s.io/v1",
      kind: "StorageClass",
      metadata: { name: s.staging.storageClass, labels: { "app.kubernetes.io/part-of": "sluice" } },
      provisioner: "kubernetes.io/no-provisioner",
      volumeBindingMode: "WaitForFirstConsumer",
      reclaimPolicy: "Delete",
    }]
    : [];
  return [
    ns,
    ...storage,
    config,
    ...WORKLOADS.map((w) => serviceAccount(w, s)),
    ingestService,
    ...WORKLOADS.map((w) => deployment(w, s)),
    ...WORKLOADS.map((w) => pdb(w, s)),
  ];
}

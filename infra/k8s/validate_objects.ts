/**
 * Offline validation of Kubernetes objects against the Kubernetes OpenAPI schemas shipped by
 * `kubernetes-models` (ajv-compiled validators, one per API kind). OpenShift's Route and
 * MachineConfig have no published npm schema package; they are checked against zod schemas of the
 * fields Sluice sets. An object of any other kind is refused, so nothing passes unchecked.
 *
 * @example
 * ```ts
 * validateObjects(stageObjects(settings)); // throws "Deployment sluice-ingest: data/spec/..."
 * ```
 * @module
 */
import { z } from "zod";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { PersistentVolume } from "kubernetes-models/v1/PersistentVolume";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Job } from "kubernetes-models/batch/v1/Job";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { StorageClass } from "kubernetes-models/storage.k8s.io/v1/StorageClass";
import type { K8sObject } from "./stage_objects.ts";

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

const MODELS: Record<string, ModelClass> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "v1/PersistentVolume": PersistentVolume,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "storage.k8s.io/v1/StorageClass": StorageClass,
};

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const Meta = z.object({
  name: z.string().regex(DNS_SUBDOMAIN),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

/** route.openshift.io/v1 Route, the fields of openshift/api route/v1 that Sluice sets. */
const RouteSchema = z.strictObject({
  apiVersion: z.literal("route.openshift.io/v1"),
  kind: z.literal("Route"),
  metadata: Meta,
  spec: z.strictObject({
    host: z.string().optional(),
    path: z.string().startsWith("/").optional(),
    to: z.strictObject({
      kind: z.literal("Service"),
      name: z.string().regex(DNS_SUBDOMAIN),
      weight: z.int().min(0).max(256).optional(),
    }),
    port: z.strictObject({ targetPort: z.union([z.string().min(1), z.int().min(1)]) }),
    tls: z.strictObject({
      termination: z.enum(["edge", "passthrough", "reencrypt"]),
      insecureEdgeTerminationPolicy: z.enum(["None", "Allow", "Redirect"]).optional(),
    }).optional(),
  }),
});

/** machineconfiguration.openshift.io/v1 MachineConfig carrying an Ignition 3.x config. */
const MachineConfigSchema = z.strictObject({
  apiVersion: z.literal("machineconfiguration.openshift.io/v1"),
  kind: z.literal("MachineConfig"),
  metadata: Meta.extend({
    labels: z.record(z.string(), z.string()).refine(
      (l) => typeof l["machineconfiguration.openshift.io/role"] === "string",
      { error: "expected the machineconfiguration.openshift.io/role label" },
    ),
  }),
  spec: z.strictObject({
    config: z.strictObject({
      ignition: z.strictObject({ version: z.string().regex(/^3\.\d+\.\d+$/) }),
      storage: z.strictObject({
        files: z.array(z.strictObject({
          path: z.string().startsWith("/"),
          mode: z.int().min(0).max(0o7777),
          overwrite: z.boolean().optional(),
          contents: z.strictObject({ source: z.string().startsWith("data:") }),
        })),
      }).optional(),
      systemd: z.strictObject({
        units: z.array(z.strictObject({
          name: z.string().regex(/^[A-Za-z0-9@._-]+\.(service|mount|target|timer)$/),
          enabled: z.boolean().optional(),
          contents: z.string().min(1),
        })),
      }).optional(),
    }),
  }),
});

const CRDS: Record<string, z.ZodType> = {
  "route.openshift.io/v1/Route": RouteSchema,
  "machineconfiguration.openshift.io/v1/MachineConfig": MachineConfigSchema,
};

/** `Kind name` of an object, for messages. */
export function objectLabel(o: K8sObject): string {
  return `${o.kind} ${o.metadata?.name ?? "(no name)"}`;
}

/**
 * Problems of one object against its schema (empty = valid).
 *
 * @example
 * ```ts
 * objectProblems({ apiVersion: "v1", kind: "Pod" }); // ["Pod (no name): no schema for v1/Pod ..."]
 * ```
 */
export function objectProblems(o: K8sObject): string[] {
  const key = `${o.apiVersion}/${o.kind}`;
  const label = objectLabel(o);
  const Model = MODELS[key];
  if (Model) {
    if (!o.metadata?.name) return [`${label}: expected metadata.name, found none`];
    try {
      new Model(o as never).validate();
      return [];
    } catch (e) {
      return [`${label}: ${e instanceof Error ? e.message : String(e)}`];
    }
  }
  const crd = CRDS[key];
  if (crd) {
    const r = crd.safeParse(o);
    return r.success
      ? []
      : r.error.issues.map((i) => `${label}: ${i.path.join(".")}: ${i.message}`);
  }
  return [
    `${label}: no schema for ${key} (expected one of ${
      [...Object.keys(MODELS), ...Object.keys(CRDS)].join(", ")
    })`,
  ];
}

/**
 * Throws one error listing every invalid object.
 *
 * @example
 * ```ts
 * validateObjects([{ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" } }]);
 * ```
 */
export function validateObjects(objects: readonly K8sObject[]): void {
  const problems = objects.flatMap(objectProblems);
  if (problems.length > 0) {
    throw new Error(`invalid Kubernetes objects:\n  ${problems.join("\n  ")}`);
  }
}

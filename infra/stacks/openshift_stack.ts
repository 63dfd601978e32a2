/**
 * The `openshift` variant, against an existing cluster through the Kubernetes provider: the
 * namespace and the stage workloads under the restricted SCC (arbitrary UID, no privilege
 * escalation; staging on local PersistentVolumes, since restricted forbids hostPath), a
 * MachineConfig that formats and mounts the workers' NVMe at /mnt/nvme with the NVMe bootstrap
 * (and labels the staging directories for containers), local PVs on the named nodes, and a Route
 * for the ingest webhook.
 *
 * @example
 * ```ts
 * synthStack((app) => new OpenshiftStack(app, "openshift", OpenshiftSettingsSchema.parse({})));
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import type { Construct } from "constructs";
import { TerraformOutput, TerraformStack, TerraformVariable } from "cdktf";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { Manifest } from "@cdktf/provider-kubernetes/lib/manifest/index.js";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { imageRef } from "../image.ts";
import { K8sSettingsSchema, WORKLOADS } from "../k8s/k8s_settings.ts";
import { type K8sObject, stageObjects, workloadName, workloadPort } from "../k8s/stage_objects.ts";
import { validateObjects } from "../k8s/validate_objects.ts";
import { nvmeArgs, NvmeSettingsSchema, stagingPath } from "../nvme_settings.ts";
import { shellQuote } from "../bootstrap/user_data.ts";
import { addManifests, manifestId } from "./_k8s_manifests.ts";

/** Most local PVs one node offers (the MachineConfig creates this many directories). */
export const MAX_VOLUMES_PER_NODE = 16;

/** Build-time settings of the openshift variant. */
export const OpenshiftSettingsSchema = z.strictObject({
  /** Pods run as an arbitrary UID in group 0: the staging directory is root:0 2770. */
  nvme: NvmeSettingsSchema.prefault({
    owner: "root",
    group: "0",
    mode: "2770",
    mountMethod: "systemd",
  }),
  k8s: K8sSettingsSchema.prefault({ staging: { kind: "localPV" } }),
  /** MachineConfigPool role whose nodes get the NVMe MachineConfig. */
  machineConfigRole: z.string().regex(/^[a-z0-9-]+$/).default("worker"),
});

/** Parsed openshift settings. */
export type OpenshiftSettings = z.infer<typeof OpenshiftSettingsSchema>;

/** The MachineConfig: nvme.sh as a file, and a unit that runs it before kubelet. */
export function nvmeMachineConfig(s: OpenshiftSettings): K8sObject {
  const script = readFileSync(new URL("../bootstrap/nvme.sh", import.meta.url));
  const dir = stagingPath(s.nvme);
  const volumes = Array.from({ length: MAX_VOLUMES_PER_NODE }, (_, i) => `${dir}/pv-${i}`);
  const unit = [
    "[Unit]",
    "Description=Sluice NVMe staging (format and mount instance NVMe, local PV directories)",
    "After=local-fs.target",
    "Before=kubelet.service",
    "ConditionPathExists=/usr/local/bin/sluice-nvme.sh",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=/usr/local/bin/sluice-nvme.sh ${nvmeArgs(s.nvme).map(shellQuote).join(" ")}`,
    `ExecStartPost=/usr/bin/install -d -o ${s.nvme.owner} -g ${
      s.nvme.group ?? s.nvme.owner
    } -m ${s.nvme.mode} ${volumes.join(" ")}`,
    // SELinux: containers may write only container_file_t.
    `ExecStartPost=/usr/bin/chcon -R -t container_file_t ${dir}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
  return {
    apiVersion: "machineconfiguration.openshift.io/v1",
    kind: "MachineConfig",
    metadata: {
      name: `99-${s.machineConfigRole}-sluice-nvme`,
      labels: { "machineconfiguration.openshift.io/role": s.machineConfigRole },
    },
    spec: {
      config: {
        ignition: { version: "3.2.0" },
        storage: {
          files: [{
            path: "/usr/local/bin/sluice-nvme.sh",
            mode: 0o755,
            overwrite: true,
            contents: {
              source: `data:text/plain;base64,${Buffer.from(script).toString("base64")}`,
            },
          }],
        },
        systemd: { units: [{ name: "sluice-nvme.service", enabled: true, contents: unit }] },
      },
    },
  } as K8sObject;
}

/** The Route of the ingest webhook (edge TLS, HTTP redirected). */
export function ingestRoute(namespace: string): K8sObject {
  return {
    apiVersion: "route.openshift.io/v1",
    kind: "Route",
    metadata: { name: workloadName("ingest"), namespace },
    spec: {
      path: "/events",
      to: { kind: "Service", name: workloadName("ingest"), weight: 100 },
      port: { targetPort: "http" },
      tls: { termination: "edge", insecureEdgeTerminationPolicy: "Redirect" },
    },
  } as K8sObject;
}

/** The openshift variant. */
export class OpenshiftStack extends TerraformStack {
  constructor(scope: Construct, id: string, s: OpenshiftSettings) {
    super(scope, id);
    const v = (name: string, o: ConstructorParameters<typeof TerraformVariable>[2]) =>
      new TerraformVariable(this, name, o);
    v("kubeconfig_path", { type: "string", default: "~/.kube/config" });
    v("kube_context", { type: "string", default: "", description: "Context (empty = current)" });
    v("nvme_nodes", {
      type: "list(string)",
      default: [],
      description: "Node names that get local PVs on their NVMe staging directory",
    });
    v("volumes_per_node", {
      type: "number",
      default: 4,
      description: `Local PVs per node (at most ${MAX_VOLUMES_PER_NODE}; one per pod)`,
      validation: [{
        condition:
          `\${var.volumes_per_node >= 1 && var.volumes_per_node <= ${MAX_VOLUMES_PER_NODE}}`,
        errorMessage: `Expected volumes_per_node between 1 and ${MAX_VOLUMES_PER_NODE}.`,
      }],
    });
    v("pv_capacity", {
      type: "string",
      default: "200Gi",
      description: "Capacity each local PV reports",
    });
    v("route_host", { type: "string", default: "", description: "Route host (empty = generated)" });

    const k8s = new KubernetesProvider(this, "kubernetes", {
      configPath: "${var.kubeconfig_path}",
      configContext: '${var.kube_context != "" ? var.kube_context : null}',
    });
    const settings = s.k8s;
    if (settings.staging.kind !== "localPV") {
      throw new Error(
        `openshift: expected k8s.staging.kind "localPV" (the restricted SCC forbids hostPath), found "${settings.staging.kind}"`,
      );
    }
    const route = ingestRoute(settings.namespace);
    const machineConfig = nvmeMachineConfig(s);
    validateObjects([route, machineConfig]);
    const objects = [...stageObjects(settings), route];
    const manifests = addManifests(this, objects, {
      image: imageRef(settings.image),
      provider: k8s,
    });
    const routeManifest = manifests.get(manifestId(route))!;
    routeManifest.addOverride(
      "manifest.spec.host",
      '${var.route_host != "" ? var.route_host : null}',
    );
    new Manifest(this, "machineconfig_nvme", {
      provider: k8s,
      manifest: machineConfig as unknown as Record<string, unknown>,
    });

    // Local PVs: <volumes_per_node> per named node, each a directory the MachineConfig made.
    const pv = new Manifest(this, "local_pv", {
      provider: k8s,
      manifest: {
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: {
          name: "sluice-nvme-${each.key}",
          labels: { "app.kubernetes.io/part-of": "sluice" },
        },
        spec: {
          capacity: { storage: "${var.pv_capacity}" },
          accessModes: ["ReadWriteOnce"],
          persistentVolumeReclaimPolicy: "Delete",
          storageClassName: settings.staging.storageClass,
          volumeMode: "Filesystem",
          local: { path: `${stagingPath(s.nvme)}/pv-\${each.value.index}` },
          nodeAffinity: {
            required: {
              nodeSelectorTerms: [{
                matchExpressions: [{
                  key: "kubernetes.io/hostname",
                  operator: "In",
                  values: ["${each.value.node}"],
                }],
              }],
            },
          },
        },
      },
      dependsOn: [
        manifests.get(
          manifestId({
            apiVersion: "storage.k8s.io/v1",
            kind: "StorageClass",
            metadata: { name: settings.staging.storageClass },
          }),
        )!,
      ],
    });
    pv.addOverride(
      "for_each",
      '${{ for p in setproduct(var.nvme_nodes, range(var.volumes_per_node)) : "${p[0]}-${p[1]}" => { node = p[0], index = p[1] } }}',
    );

    const out = (name: string, value: unknown, description: string) =>
      new TerraformOutput(this, name, { value, description });
    out("namespace", settings.namespace, "Namespace of the stages and of the train Jobs");
    out(
      "ingest_webhook_host",
      "${kubernetes_manifest.route_sluice_ingest.object.spec.host}",
      "Route host: S3 notifications go to https://<host>/events",
    );
    out(
      "staging_path",
      stagingPath(s.nvme),
      "NVMe staging directory on the nodes (local PVs under it)",
    );
    out(
      "machine_config",
      machineConfig.metadata!.name,
      "MachineConfig that formats and mounts NVMe",
    );
    out(
      "local_pvs",
      "${[for k, p in kubernetes_manifest.local_pv : p.manifest.metadata.name]}",
      "Local PVs",
    );
    out(
      "metrics_endpoints",
      Object.fromEntries(
        WORKLOADS.map((w) => [w, `http://${workloadName(w)} pods :${workloadPort(w)}/metrics`]),
      ),
      "Prometheus targets (pods annotated prometheus.io/scrape)",
    );
  }
}

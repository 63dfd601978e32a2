/**
 * The `rke2` variant, for local hosts reached over SSH: RKE2 server and agent configuration and
 * installation, the NVMe bootstrap on every host, the stage binaries as systemd units on the
 * hosts named in `stage_hosts`, and (with `in_cluster = true`) the stages as Kubernetes objects
 * through the Kubernetes provider instead. Hosts are `terraform_data` resources with file and
 * remote-exec provisioners: no cloud provider is involved.
 *
 * @example
 * ```ts
 * synthStack((app) => new Rke2Stack(app, "rke2", Rke2SettingsSchema.parse({})));
 * ```
 * @module
 */
import type { Construct } from "constructs";
import { DataResource, TerraformOutput, TerraformStack, TerraformVariable } from "cdktf";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { z } from "zod";
import { DEFAULT_HTTP_PORTS } from "../../common/config/schema.ts";
import { imageRef } from "../image.ts";
import { K8sSettingsSchema } from "../k8s/k8s_settings.ts";
import { stageObjects } from "../k8s/stage_objects.ts";
import { NvmeSettingsSchema, stagingPath } from "../nvme_settings.ts";
import { SLUICE_RELEASE } from "../release.ts";
import { hostBootstrapScript } from "../bootstrap/user_data.ts";
import { addManifests } from "./_k8s_manifests.ts";

/** Build-time settings of the rke2 variant. */
export const Rke2SettingsSchema = z.strictObject({
  /**
   * Owned by the `sluice` user of the systemd units, group 0 and setgid so pods (arbitrary UID,
   * group 0) can write too. Local disks rarely have the AWS model string: list them.
   */
  nvme: NvmeSettingsSchema.prefault({
    model: "NVMe|nvme",
    group: "0",
    mode: "2770",
  }),
  k8s: K8sSettingsSchema.prefault({ nodeSelector: { "sluice.dev/nvme": "true" } }),
});

/** Parsed rke2 settings. */
export type Rke2Settings = z.infer<typeof Rke2SettingsSchema>;

const HOSTS = "list(object({ address = string, user = string }))";

/** The rke2 variant. */
export class Rke2Stack extends TerraformStack {
  constructor(scope: Construct, id: string, s: Rke2Settings) {
    super(scope, id);
    const v = (name: string, o: ConstructorParameters<typeof TerraformVariable>[2]) =>
      new TerraformVariable(this, name, o);
    v("servers", {
      type: HOSTS,
      description: "RKE2 server hosts (the first initialises the cluster)",
    });
    v("agents", { type: HOSTS, default: [], description: "RKE2 agent hosts" });
    v("stage_hosts", {
      type: "map(list(string))",
      default: {},
      description:
        'Host address => stages run there as systemd units (e.g. { "10.0.0.5" = ["ingest"] })',
    });
    v("stage_host_user", {
      type: "string",
      default: "root",
      description: "SSH user of stage hosts",
    });
    v("ssh_private_key_path", { type: "string", description: "SSH key for every host" });
    v("rke2_token", { type: "string", sensitive: true, description: "RKE2 cluster join token" });
    v("rke2_install_url", { type: "string", default: "https://get.rke2.io" });
    v("release", { type: "string", default: SLUICE_RELEASE });
    v("artifacts_url", {
      type: "string",
      default: "",
      description:
        "Where stage hosts fetch bin/ and systemd/ (s3://, https://…/ with bundle.tar.gz, file://)",
    });
    v("in_cluster", {
      type: "bool",
      default: false,
      description: "Also run the stages in the RKE2 cluster (Kubernetes provider)",
    });
    v("kubeconfig_path", {
      type: "string",
      default: "~/.kube/config",
      description:
        "Kubeconfig of the cluster (copy /etc/rancher/rke2/rke2.yaml from the first server)",
    });

    const connection = (user: string) => ({
      type: "ssh" as const,
      host: "${each.value.address}",
      user,
      privateKey: "${file(pathexpand(var.ssh_private_key_path))}",
    });
    const rke2Config = (role: "server" | "agent") =>
      [
        "# Written by Sluice's rke2 variant",
        role === "server"
          ? '${each.value.index > 0 ? "server: https://${var.servers[0].address}:9345" : ""}'
          : "server: https://${var.servers[0].address}:9345",
        'token: "${var.rke2_token}"',
        "node-label:",
        '  - "sluice.dev/nvme=true"',
        ...(role === "server"
          ? ['write-kubeconfig-mode: "0600"', "tls-san:", '  - "${each.value.address}"']
          : []),
        "",
      ].join("\n");
    const host = (
      name: string,
      forEach: string,
      user: string,
      script: string,
      config?: string,
      dependsOn: DataResource[] = [],
    ) => {
      const r = new DataResource(this, name, {
        // A changed script or configuration runs the host's bootstrap again (it is idempotent).
        triggersReplace: { script, config: config ?? "" },
        connection: connection(user),
        provisioners: [
          ...(config
            ? [{
              type: "file" as const,
              content: config,
              destination: "/tmp/sluice-rke2-config.yaml",
            }]
            : []),
          { type: "file" as const, content: script, destination: "/tmp/sluice-bootstrap.sh" },
          {
            type: "remote-exec" as const,
            inline: [
              ...(config
                ? [
                  "sudo install -d -m 0755 /etc/rancher/rke2",
                  "sudo install -m 0600 /tmp/sluice-rke2-config.yaml /etc/rancher/rke2/config.yaml",
                ]
                : []),
              "sudo bash /tmp/sluice-bootstrap.sh",
            ],
          },
        ],
        dependsOn,
      });
      r.addOverride("for_each", forEach);
      return r;
    };
    const servers = host(
      "server",
      "${{ for i, h in var.servers : h.address => merge(h, { index = i }) }}",
      "${each.value.user}",
      hostBootstrapScript({
        nvme: s.nvme,
        rke2: "server",
        rke2InstallUrl: "${var.rke2_install_url}",
      }),
      rke2Config("server"),
    );
    const agents = host(
      "agent",
      "${{ for h in var.agents : h.address => h }}",
      "${each.value.user}",
      hostBootstrapScript({
        nvme: s.nvme,
        rke2: "agent",
        rke2InstallUrl: "${var.rke2_install_url}",
      }),
      rke2Config("agent"),
      [servers],
    );
    host(
      "stage_host",
      "${{ for addr, stages in var.stage_hosts : addr => { address = addr, stages = stages } }}",
      "${var.stage_host_user}",
      hostBootstrapScript({
        nvme: s.nvme,
        stageList: '${join(",", each.value.stages)}',
        release: "${var.release}",
        artifacts: "${var.artifacts_url}",
      }),
      undefined,
      [servers, agents],
    );

    const k8s = new KubernetesProvider(this, "kubernetes", {
      configPath: "${var.in_cluster ? var.kubeconfig_path : null}",
    });
    addManifests(this, stageObjects(s.k8s), {
      image: imageRef(s.k8s.image),
      provider: k8s,
      count: "${var.in_cluster ? 1 : 0}",
      dependsOn: [servers, agents],
    });

    const ports = JSON.stringify(DEFAULT_HTTP_PORTS).replace(/"(\w+)":/g, "$1 = ").replace(
      /,/g,
      ", ",
    );
    const out = (name: string, value: unknown, description: string) =>
      new TerraformOutput(this, name, { value, description });
    out(
      "server_url",
      "https://${var.servers[0].address}:9345",
      "RKE2 supervisor (agents join here)",
    );
    out(
      "kubernetes_api",
      "https://${var.servers[0].address}:6443",
      "Kubernetes API of the cluster",
    );
    out(
      "kubeconfig",
      "/etc/rancher/rke2/rke2.yaml on ${var.servers[0].address}",
      "Where the admin kubeconfig is",
    );
    out("staging_path", stagingPath(s.nvme), "NVMe staging directory on every host");
    out(
      "metrics_endpoints",
      `\${{ for addr, stages in var.stage_hosts : addr => [for st in stages : "http://\${addr}:\${lookup(${ports}, st)}/metrics"] }}`,
      "Prometheus targets of the systemd stages, per host",
    );
    out(
      "in_cluster_namespace",
      '${var.in_cluster ? "' + s.k8s.namespace + '" : ""}',
      "Namespace of in-cluster stages",
    );
  }
}

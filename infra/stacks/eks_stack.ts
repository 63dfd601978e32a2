/**
 * The `eks` variant: the aws variant's buckets and queue, an EKS cluster with managed node groups
 * on NVMe instance store (launch template whose user data runs the NVMe bootstrap, staging at
 * /mnt/nvme/sluice as hostPath), the stages' Kubernetes objects, and IRSA roles per stage with
 * the same least-privilege policies (plus one for the train Job's ranks, which run under the
 * namespace's default ServiceAccount).
 *
 * @example
 * ```ts
 * synthStack((app) => new EksStack(app, "eks", EksSettingsSchema.parse({})));
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import type { Construct } from "constructs";
import { Fn, TerraformLocal, TerraformOutput, TerraformStack } from "cdktf";
import { awsBaseVariables } from "./_aws_variables.ts";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js";
import { IamOpenidConnectProvider } from "@cdktf/provider-aws/lib/iam-openid-connect-provider/index.js";
import { EksCluster } from "@cdktf/provider-aws/lib/eks-cluster/index.js";
import { EksNodeGroup } from "@cdktf/provider-aws/lib/eks-node-group/index.js";
import { LaunchTemplate } from "@cdktf/provider-aws/lib/launch-template/index.js";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { Annotations } from "@cdktf/provider-kubernetes/lib/annotations/index.js";
import { z } from "zod";
import { imageRef } from "../image.ts";
import { K8sSettingsSchema, type Workload, WORKLOADS } from "../k8s/k8s_settings.ts";
import { stageObjects, workloadName, workloadPort } from "../k8s/stage_objects.ts";
import { NvmeSettingsSchema, stagingPath } from "../nvme_settings.ts";
import { hostBootstrapScript, mimeUserData } from "../bootstrap/user_data.ts";
import { type PolicyDocument, serviceTrust, stagePolicy } from "./_iam.ts";
import { addStorage } from "./_storage.ts";
import { addManifests, manifestId } from "./_k8s_manifests.ts";

/** Build-time settings of the eks variant. */
export const EksSettingsSchema = z.strictObject({
  /** Pods run as an arbitrary non-root UID with group 0: the staging directory is root:0 2770. */
  nvme: NvmeSettingsSchema.prefault({ owner: "root", group: "0", mode: "2770" }),
  k8s: K8sSettingsSchema.prefault({
    nodeSelector: { "sluice.dev/nvme": "true" },
    workloads: {
      infer: {
        replicas: 1,
        cpuRequest: "2",
        cpuLimit: "4",
        memoryRequest: "4Gi",
        memoryLimit: "8Gi",
        gpus: 1,
      },
    },
  }),
});

/** Parsed eks settings. */
export type EksSettings = z.infer<typeof EksSettingsSchema>;

const MANAGED = "arn:${data.aws_partition.partition.partition}:iam::aws:policy";

/** The eks variant. */
export class EksStack extends TerraformStack {
  constructor(scope: Construct, id: string, s: EksSettings) {
    super(scope, id);
    const { v, region, prefix } = awsBaseVariables(this);
    const subnets = v("subnet_ids", {
      type: "list(string)",
      description: "Subnets of the cluster and its nodes (private subnets with a NAT)",
    });
    const k8sVersion = v("kubernetes_version", { type: "string", default: "1.33" });
    v("api_public_cidrs", {
      type: "list(string)",
      default: [],
      description: "CIDRs allowed to reach the public API endpoint (empty = private endpoint only)",
    });
    v("cpu_instance_types", {
      type: "list(string)",
      default: ["i4i.2xlarge"],
      description:
        "NVMe instance-store types of the CPU node group (ingest, normalize, train worker)",
    });
    v("gpu_instance_types", {
      type: "list(string)",
      default: ["g5.2xlarge"],
      description: "NVMe instance-store GPU types (infer, train Job ranks)",
    });
    v("cpu_nodes", { type: "number", default: 2 });
    v("gpu_nodes", { type: "number", default: 1 });

    new AwsProvider(this, "aws", {
      region: region.stringValue,
      defaultTags: [{ tags: { "sluice:deployment": prefix.stringValue } }],
    });
    new DataAwsPartition(this, "partition");
    const storage = addStorage(this, prefix.stringValue);

    // The cluster.
    const clusterRole = new IamRole(this, "cluster_role", {
      name: `${prefix.stringValue}-eks-cluster`,
      assumeRolePolicy: JSON.stringify(serviceTrust("eks.amazonaws.com")),
    });
    new IamRolePolicyAttachment(this, "cluster_policy", {
      role: clusterRole.name,
      policyArn: `${MANAGED}/AmazonEKSClusterPolicy`,
    });
    const cluster = new EksCluster(this, "cluster", {
      name: prefix.stringValue,
      version: k8sVersion.stringValue,
      roleArn: clusterRole.arn,
      vpcConfig: {
        subnetIds: subnets.listValue,
        endpointPrivateAccess: true,
        endpointPublicAccess: "${length(var.api_public_cidrs) > 0}" as unknown as boolean,
        publicAccessCidrs:
          "${length(var.api_public_cidrs) > 0 ? var.api_public_cidrs : null}" as unknown as string[],
      },
      accessConfig: { authenticationMode: "API_AND_CONFIG_MAP" },
    });
    const oidc = new IamOpenidConnectProvider(this, "oidc", {
      url: "${aws_eks_cluster.cluster.identity[0].oidc[0].issuer}",
      clientIdList: ["sts.amazonaws.com"],
    });

    // Nodes: NVMe instance store, bootstrapped before kubelet starts.
    const nodeRole = new IamRole(this, "node_role", {
      name: `${prefix.stringValue}-eks-node`,
      assumeRolePolicy: JSON.stringify(serviceTrust("ec2.amazonaws.com")),
    });
    for (
      const p of [
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
      ]
    ) {
      new IamRolePolicyAttachment(this, `node_${p.toLowerCase()}`, {
        role: nodeRole.name,
        policyArn: `${MANAGED}/${p}`,
      });
    }
    const template = new LaunchTemplate(this, "node_template", {
      name: `${prefix.stringValue}-eks-nvme`,
      // No Terraform expression inside: encoded here, byte for byte what the nodes run.
      userData: Buffer.from(mimeUserData(hostBootstrapScript({ nvme: s.nvme }))).toString("base64"),
      metadataOptions: {
        httpTokens: "required",
        httpEndpoint: "enabled",
        httpPutResponseHopLimit: 2,
      },
      blockDeviceMappings: [{
        deviceName: "/dev/xvda",
        ebs: { volumeSize: 80, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" },
      }],
      updateDefaultVersion: true,
    });
    const groups = (["cpu", "gpu"] as const).map((kind) =>
      new EksNodeGroup(this, `${kind}_node_group`, {
        clusterName: cluster.name,
        nodeGroupName: `${prefix.stringValue}-${kind}`,
        nodeRoleArn: nodeRole.arn,
        subnetIds: subnets.listValue,
        instanceTypes: `\${var.${kind}_instance_types}` as unknown as string[],
        amiType: kind === "gpu" ? "AL2023_x86_64_NVIDIA" : "AL2023_x86_64_STANDARD",
        scalingConfig: {
          desiredSize: `\${var.${kind}_nodes}` as unknown as number,
          minSize: 0,
          maxSize: `\${max(var.${kind}_nodes, 1) * 4}` as unknown as number,
        },
        launchTemplate: { id: template.id, version: template.latestVersion.toString() },
        labels: { "sluice.dev/nvme": "true", "sluice.dev/accelerator": kind },
      })
    );

    // IRSA: one role per stage ServiceAccount, and one for the train Job's ranks.
    // A local, so the policy JSON holds no quotes inside its interpolations.
    const issuer = new TerraformLocal(
      this,
      "oidc_issuer",
      '${replace(aws_eks_cluster.cluster.identity[0].oidc[0].issuer, "https://", "")}',
    ).asString;
    const ns = s.k8s.namespace;
    const irsa = (name: string, sa: string, policy: PolicyDocument) => {
      const role = new IamRole(this, `irsa_${name}`, {
        name: `${prefix.stringValue}-${name.replaceAll("_", "-")}`,
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{
            Effect: "Allow",
            Principal: { Federated: oidc.arn },
            Action: "sts:AssumeRoleWithWebIdentity",
            Condition: {
              StringEquals: {
                [`${issuer}:sub`]: `system:serviceaccount:${ns}:${sa}`,
                [`${issuer}:aud`]: "sts.amazonaws.com",
              },
            },
          }],
        }),
      });
      new IamRolePolicy(this, `irsa_${name}_data`, {
        name: "data",
        role: role.id,
        policy: JSON.stringify(policy),
      });
      return role;
    };
    const roles = Object.fromEntries(
      WORKLOADS.map((w) => [w, irsa(w, workloadName(w), stagePolicy(w, storage.arns))]),
    ) as Record<Workload, IamRole>;
    const trainJobRole = irsa("train_job", "default", stagePolicy("train", storage.arns));

    const k8s = new KubernetesProvider(this, "kubernetes", {
      host: cluster.endpoint,
      clusterCaCertificate: Fn.base64decode(cluster.certificateAuthority.get(0).data),
      exec: [{
        apiVersion: "client.authentication.k8s.io/v1beta1",
        command: "aws",
        args: ["eks", "get-token", "--cluster-name", cluster.name, "--region", region.stringValue],
      }],
    });
    const settings = K8sSettingsSchema.parse({
      ...s.k8s,
      serviceAccountAnnotations: Object.fromEntries(
        WORKLOADS.map((w) => [w, { "eks.amazonaws.com/role-arn": roles[w].arn }]),
      ),
      config: {
        SLUICE_SOURCE_URL: `s3://${storage.buckets.raw.bucket}`,
        SLUICE_OBJECT_STORE_URL: `s3://${storage.buckets.dataset.bucket}`,
        SLUICE_INGEST_SQS_QUEUE_URL: storage.queue.url,
        SLUICE_S3_REGION: region.stringValue,
        ...s.k8s.config,
      },
    });
    const manifests = addManifests(this, stageObjects(settings), {
      image: imageRef(settings.image),
      provider: k8s,
      dependsOn: groups,
    });
    new Annotations(this, "train_job_irsa", {
      provider: k8s,
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default", namespace: ns },
      annotations: { "eks.amazonaws.com/role-arn": trainJobRole.arn },
      dependsOn: [
        manifests.get(manifestId({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }))!,
      ],
    });

    const out = (name: string, value: unknown, description: string) =>
      new TerraformOutput(this, name, { value, description });
    out("cluster_name", cluster.name, "EKS cluster (aws eks update-kubeconfig --name …)");
    out("cluster_endpoint", cluster.endpoint, "Kubernetes API endpoint");
    out("node_groups", groups.map((g) => g.id), "Managed node groups on NVMe instance store");
    out(
      "bucket_names",
      Object.fromEntries(
        Object.entries(storage.buckets).map(([k, b]) => [k, b.bucket]),
      ),
      "Bucket per role",
    );
    out("queue_url", storage.queue.url, "SQS queue of raw-bucket events");
    out(
      "irsa_role_arns",
      Object.fromEntries(WORKLOADS.map((w) => [w, roles[w].arn])),
      "IRSA role per stage",
    );
    out("namespace", ns, "Namespace of the stages and of the train Jobs");
    out("staging_path", stagingPath(s.nvme), "NVMe staging directory on every node (hostPath)");
    out(
      "metrics_endpoints",
      Object.fromEntries(
        WORKLOADS.map((w) => [w, `http://${workloadName(w)} pods :${workloadPort(w)}/metrics`]),
      ),
      "Prometheus targets (pods annotated prometheus.io/scrape)",
    );
    out(
      "ingest_webhook",
      `http://${workloadName("ingest")}.${ns}.svc:${workloadPort("ingest")}/events`,
      "In-cluster S3 event webhook",
    );
  }
}

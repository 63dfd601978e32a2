/**
 * The `aws` variant: buckets and the event queue, one launch template + auto scaling group per
 * stage on NVMe instance-store types (user data: NVMe bootstrap, artifacts, systemd units), an
 * instance profile per stage with least privilege, security groups that open only the metrics
 * and webhook ports to named CIDRs, and an optional RDS PostgreSQL for the manifest.
 *
 * @example
 * ```ts
 * synthStack((app) => new AwsStack(app, "aws", AwsSettingsSchema.parse({})));
 * ```
 * @module
 */
import type { Construct } from "constructs";
import { Fn, TerraformLocal, TerraformOutput, TerraformStack } from "cdktf";
import { awsBaseVariables } from "./_aws_variables.ts";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { DataAwsSsmParameter } from "@cdktf/provider-aws/lib/data-aws-ssm-parameter/index.js";
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity/index.js";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile/index.js";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group/index.js";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule/index.js";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule/index.js";
import { LaunchTemplate } from "@cdktf/provider-aws/lib/launch-template/index.js";
import { AutoscalingGroup } from "@cdktf/provider-aws/lib/autoscaling-group/index.js";
import { DbSubnetGroup } from "@cdktf/provider-aws/lib/db-subnet-group/index.js";
import { DbInstance } from "@cdktf/provider-aws/lib/db-instance/index.js";
import { DbParameterGroup } from "@cdktf/provider-aws/lib/db-parameter-group/index.js";
import { z } from "zod";
import { DEFAULT_HTTP_PORTS } from "../../common/config/schema.ts";
import { NvmeSettingsSchema, stagingPath } from "../nvme_settings.ts";
import { SLUICE_RELEASE } from "../release.ts";
import { hostBootstrapScript } from "../bootstrap/user_data.ts";
import { artifactsPolicy, serviceTrust, stagePolicy } from "./_iam.ts";
import { addStorage } from "./_storage.ts";

/** The stages that run on EC2 hosts, one auto scaling group each. */
export const HOST_STAGES = ["ingest", "normalize", "train", "infer"] as const;
type HostStage = typeof HOST_STAGES[number];

/** Build-time settings of the aws variant (deploy-time ones are Terraform variables). */
export const AwsSettingsSchema = z.strictObject({
  nvme: NvmeSettingsSchema.prefault({}),
  /** Default instance types: NVMe instance store on all of them. */
  instanceTypes: z.record(z.enum(HOST_STAGES), z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/))
    .default({
      ingest: "i4i.xlarge",
      normalize: "i4i.2xlarge",
      train: "g5.2xlarge",
      infer: "g5.xlarge",
    }),
  /** Stages on GPU instances (a GPU AMI). */
  gpuStages: z.array(z.enum(HOST_STAGES)).default(["train", "infer"]),
  /** Torch rendezvous port between train hosts. */
  trainMasterPort: z.int().min(1).max(65535).default(29500),
});

/** Parsed aws settings. */
export type AwsSettings = z.infer<typeof AwsSettingsSchema>;

/** The aws variant. */
export class AwsStack extends TerraformStack {
  constructor(scope: Construct, id: string, s: AwsSettings) {
    super(scope, id);
    const { v, region, prefix } = awsBaseVariables(this);
    v("release", {
      type: "string",
      default: SLUICE_RELEASE,
      description: "Release of the stage binaries to install",
    });
    v("artifacts_url", {
      type: "string",
      default: "",
      description:
        "Where the release's bin/ and systemd/ live (empty = s3://<prefix>-artifacts/sluice/<release>)",
    });
    const vpc = v("vpc_id", { type: "string", description: "VPC of the hosts" });
    const subnets = v("subnet_ids", { type: "list(string)", description: "Subnets of the hosts" });
    v("metrics_cidrs", {
      type: "list(string)",
      default: [],
      description: "CIDRs allowed to scrape /metrics on every stage's port (9101-9104)",
    });
    v("webhook_cidrs", {
      type: "list(string)",
      default: [],
      description: "CIDRs allowed to POST S3 events to the ingest webhook (9101)",
    });
    v("instance_types", {
      type: "map(string)",
      default: s.instanceTypes,
      description: "Instance type per stage (NVMe instance-store types)",
    });
    v("capacity", {
      type: "map(number)",
      default: { ingest: 1, normalize: 1, train: 0, infer: 1 },
      description: "Desired hosts per stage",
    });
    v("cpu_ami_parameter", {
      type: "string",
      default: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
      description: "SSM parameter holding the AMI of CPU stages",
    });
    v("gpu_ami_parameter", {
      type: "string",
      default:
        "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id",
      description: "SSM parameter holding the AMI of GPU stages",
    });
    const manifestParam = v("manifest_url_parameter", {
      type: "string",
      default: "/sluice/manifest-url",
      description: "SSM SecureString with SLUICE_MANIFEST_URL (postgres://…), read at boot",
    });
    v("create_rds", {
      type: "bool",
      default: false,
      description: "Create an RDS PostgreSQL for the manifest",
    });
    v("rds_instance_class", { type: "string", default: "db.t4g.medium" });

    new AwsProvider(this, "aws", {
      region: region.stringValue,
      defaultTags: [{ tags: { "sluice:deployment": prefix.stringValue } }],
    });
    const partition = new DataAwsPartition(this, "partition");
    const account = new DataAwsCallerIdentity(this, "account");
    const cpuAmi = new DataAwsSsmParameter(this, "cpu_ami", { name: "${var.cpu_ami_parameter}" });
    const gpuAmi = new DataAwsSsmParameter(this, "gpu_ami", { name: "${var.gpu_ami_parameter}" });

    const storage = addStorage(this, prefix.stringValue);
    const artifactsUrl = new TerraformLocal(
      this,
      "artifacts_source",
      '${var.artifacts_url != "" ? var.artifacts_url : "s3://${aws_s3_bucket.artifacts.bucket}/sluice/${var.release}"}',
    );

    // Security groups: each stage's port open to the metrics CIDRs; ingest's also to webhooks.
    // One rule per CIDR (for_each), so an empty list opens nothing.
    const groups = {} as Record<HostStage, SecurityGroup>;
    const rule = (
      id: string,
      o: ConstructorParameters<typeof VpcSecurityGroupIngressRule>[2],
      each?: string,
    ) => {
      const r = new VpcSecurityGroupIngressRule(this, id, o);
      if (each) r.addOverride("for_each", each);
      return r;
    };
    for (const stage of HOST_STAGES) {
      const port = DEFAULT_HTTP_PORTS[stage];
      const sg = new SecurityGroup(this, `${stage}_sg`, {
        name: `${prefix.stringValue}-${stage}`,
        description: `Sluice ${stage}: metrics${stage === "ingest" ? " and S3 event webhook" : ""}`,
        vpcId: vpc.stringValue,
      });
      groups[stage] = sg;
      const tcp = { securityGroupId: sg.id, ipProtocol: "tcp", fromPort: port, toPort: port };
      rule(`${stage}_metrics`, {
        ...tcp,
        description: "Prometheus scrape of /metrics",
        cidrIpv4: "${each.value}",
      }, "${toset(var.metrics_cidrs)}");
      if (stage === "ingest") {
        rule(`${stage}_webhook`, {
          ...tcp,
          description: "S3 event notifications (POST /events)",
          cidrIpv4: "${each.value}",
        }, "${toset(var.webhook_cidrs)}");
      }
      if (stage === "train") {
        rule(`${stage}_rendezvous`, {
          securityGroupId: sg.id,
          ipProtocol: "tcp",
          fromPort: s.trainMasterPort,
          toPort: s.trainMasterPort + 100,
          description: "torch.distributed rendezvous between train hosts",
          referencedSecurityGroupId: sg.id,
        });
      }
      new VpcSecurityGroupEgressRule(this, `${stage}_egress`, {
        securityGroupId: sg.id,
        ipProtocol: "-1",
        cidrIpv4: "0.0.0.0/0",
        description: "S3, SQS, SSM, PostgreSQL, MLflow, artifacts",
      });
    }

    const asgs = {} as Record<HostStage, AutoscalingGroup>;
    const templates = {} as Record<HostStage, LaunchTemplate>;
    for (const stage of HOST_STAGES) {
      const role = new IamRole(this, `${stage}_role`, {
        name: `${prefix.stringValue}-${stage}`,
        assumeRolePolicy: JSON.stringify(serviceTrust("ec2.amazonaws.com")),
      });
      new IamRolePolicy(this, `${stage}_data`, {
        name: "data",
        role: role.id,
        policy: JSON.stringify(stagePolicy(stage, storage.arns)),
      });
      const host = artifactsPolicy(storage.buckets.artifacts.arn, "sluice/");
      host.Statement.push({
        Sid: "ManifestUrl",
        Effect: "Allow",
        Action: ["ssm:GetParameter"],
        Resource:
          `arn:${partition.partition}:ssm:${region.stringValue}:${account.accountId}:parameter${manifestParam.stringValue}`,
      });
      new IamRolePolicy(this, `${stage}_host`, {
        name: "host",
        role: role.id,
        policy: JSON.stringify(host),
      });
      const profile = new IamInstanceProfile(this, `${stage}_profile`, {
        name: `${prefix.stringValue}-${stage}`,
        role: role.name,
      });
      const script = new TerraformLocal(
        this,
        `user_data_${stage}`,
        hostBootstrapScript({
          nvme: s.nvme,
          stages: [stage],
          release: "${var.release}",
          artifacts: "${local.artifacts_source}",
          env: {
            SLUICE_SOURCE_URL: `s3://${storage.buckets.raw.bucket}`,
            SLUICE_OBJECT_STORE_URL: `s3://${storage.buckets.dataset.bucket}`,
            SLUICE_S3_REGION: region.stringValue,
            SLUICE_STAGING_ROOT: stagingPath(s.nvme),
            SLUICE_HTTP_HOSTNAME: "0.0.0.0",
            ...(stage === "ingest" ? { SLUICE_INGEST_SQS_QUEUE_URL: storage.queue.url } : {}),
          },
          envSsm: { SLUICE_MANIFEST_URL: manifestParam.stringValue },
        }),
      );
      const gpu = s.gpuStages.includes(stage);
      templates[stage] = new LaunchTemplate(this, `${stage}_template`, {
        name: `${prefix.stringValue}-${stage}`,
        imageId: gpu ? gpuAmi.value : cpuAmi.value,
        instanceType: `\${var.instance_types["${stage}"]}`,
        iamInstanceProfile: { arn: profile.arn },
        vpcSecurityGroupIds: [groups[stage].id],
        userData: Fn.base64encode(script.asString),
        metadataOptions: {
          httpTokens: "required",
          httpEndpoint: "enabled",
          httpPutResponseHopLimit: 1,
        },
        blockDeviceMappings: [{
          deviceName: "/dev/xvda",
          ebs: {
            volumeSize: 50,
            volumeType: "gp3",
            encrypted: "true",
            deleteOnTermination: "true",
          },
        }],
        tagSpecifications: [{
          resourceType: "instance",
          tags: { Name: `${prefix.stringValue}-${stage}`, "sluice:stage": stage },
        }],
        updateDefaultVersion: true,
      });
      asgs[stage] = new AutoscalingGroup(this, `${stage}_asg`, {
        name: `${prefix.stringValue}-${stage}`,
        vpcZoneIdentifier: subnets.listValue,
        minSize: 0,
        maxSize: `\${max(var.capacity["${stage}"], 1) * 4}` as unknown as number,
        desiredCapacity: `\${var.capacity["${stage}"]}` as unknown as number,
        launchTemplate: { id: templates[stage].id, version: "$Latest" },
        tag: [{ key: "sluice:stage", value: stage, propagateAtLaunch: true }],
      });
    }

    // Optional RDS PostgreSQL for the manifest; the master password lives in Secrets Manager.
    const rdsSg = new SecurityGroup(this, "rds_sg", {
      count: "${var.create_rds ? 1 : 0}" as unknown as number,
      name: `${prefix.stringValue}-manifest`,
      description: "Sluice manifest PostgreSQL: 5432 from the stage hosts",
      vpcId: vpc.stringValue,
    });
    for (const st of HOST_STAGES) {
      const r = new VpcSecurityGroupIngressRule(this, `rds_from_${st}`, {
        securityGroupId: "${aws_security_group.rds_sg[0].id}",
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
        referencedSecurityGroupId: groups[st].id,
        description: `PostgreSQL from ${st}`,
      });
      r.addOverride("count", "${var.create_rds ? 1 : 0}");
    }
    const dbSubnets = new DbSubnetGroup(this, "rds_subnets", {
      count: "${var.create_rds ? 1 : 0}" as unknown as number,
      name: `${prefix.stringValue}-manifest`,
      subnetIds: subnets.listValue,
    });
    // TCP keepalives: a worker whose network dropped mid-transaction holds its row locks until
    // PostgreSQL notices the dead connection; these bound that to about 2 minutes (60 s idle, then
    // 6 probes 10 s apart) instead of the kernel's two hours. Workers' SKIP LOCKED claims pass
    // those rows meanwhile, so nothing is lost either way (README, "Run as many copies").
    const dbParams = new DbParameterGroup(this, "manifest_params", {
      count: "${var.create_rds ? 1 : 0}" as unknown as number,
      name: `${prefix.stringValue}-manifest`,
      family: "postgres16",
      description: "Sluice manifest: TCP keepalives bound a dropped client's row locks",
      parameter: [
        { name: "tcp_keepalives_idle", value: "60", applyMethod: "immediate" },
        { name: "tcp_keepalives_interval", value: "10", applyMethod: "immediate" },
        { name: "tcp_keepalives_count", value: "6", applyMethod: "immediate" },
      ],
    });
    new DbInstance(this, "manifest", {
      count: "${var.create_rds ? 1 : 0}" as unknown as number,
      identifier: `${prefix.stringValue}-manifest`,
      engine: "postgres",
      engineVersion: "16",
      instanceClass: "${var.rds_instance_class}",
      allocatedStorage: 50,
      storageType: "gp3",
      storageEncrypted: true,
      dbName: "sluice",
      username: "sluice",
      manageMasterUserPassword: true,
      dbSubnetGroupName: "${aws_db_subnet_group.rds_subnets[0].name}",
      parameterGroupName: "${aws_db_parameter_group.manifest_params[0].name}",
      vpcSecurityGroupIds: ["${aws_security_group.rds_sg[0].id}"],
      publiclyAccessible: false,
      backupRetentionPeriod: 7,
      deletionProtection: true,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: `${prefix.stringValue}-manifest-final`,
      dependsOn: [rdsSg, dbSubnets, dbParams],
    });

    const out = (name: string, value: unknown, description: string) =>
      new TerraformOutput(this, name, { value, description });
    out(
      "bucket_names",
      Object.fromEntries(
        Object.entries(storage.buckets).map(([k, b]) => [k, b.bucket]),
      ),
      "Bucket per role: raw (source), dataset, training, models, artifacts",
    );
    out(
      "queue_url",
      storage.queue.url,
      "SQS queue of raw-bucket events (SLUICE_INGEST_SQS_QUEUE_URL)",
    );
    out("dead_letter_queue_url", storage.deadLetter.url, "Events that failed 5 receives");
    out(
      "autoscaling_groups",
      Object.fromEntries(HOST_STAGES.map((st) => [st, asgs[st].name])),
      "ASG per stage",
    );
    out(
      "launch_templates",
      Object.fromEntries(HOST_STAGES.map((st) => [st, templates[st].id])),
      "Launch template per stage",
    );
    out("artifacts_location", artifactsUrl.asString, "Where hosts fetch bin/ and systemd/");
    out("staging_path", stagingPath(s.nvme), "NVMe staging directory on every host");
    out(
      "metrics_endpoints",
      Object.fromEntries(
        HOST_STAGES.map((st) => [st, `http://<${st} host>:${DEFAULT_HTTP_PORTS[st]}/metrics`]),
      ),
      "Prometheus targets (EC2 service discovery by tag sluice:stage)",
    );
    out(
      "manifest_endpoint",
      '${var.create_rds ? aws_db_instance.manifest[0].endpoint : ""}',
      "RDS endpoint (empty without create_rds)",
    );
    out(
      "manifest_master_secret_arn",
      '${var.create_rds ? aws_db_instance.manifest[0].master_user_secret[0].secret_arn : ""}',
      "Secrets Manager secret with the RDS master password",
    );
  }
}

/**
 * All four variants synthesize; the committed Terraform JSON is what the TypeScript produces;
 * structural assertions per variant (NVMe settings, bucket protections, the bucket notification,
 * IRSA, restricted SCC, hosts, outputs); `tofu validate` where a binary exists (never here).
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { staleInfraFiles } from "./synth.ts";
import { renderInfraFiles, type Variant, variantFile, VARIANTS } from "./variants.ts";

/**
 * Parsed Terraform JSON, loosely typed for navigation in assertions: every property and element
 * is again a Json, usable as a string or an array where the document holds one (a wrong guess
 * fails the assertion that uses it).
 */
interface JsonNode {
  readonly [k: string]: Json;
}
type Json = JsonNode & string & JsonList;
interface JsonList extends ReadonlyArray<Json> {}

const started = performance.now();
const files = renderInfraFiles();
const synthMs = Math.round(performance.now() - started);
const tf = (v: Variant): Json => JSON.parse(files.get(variantFile(v))!);
const res = (v: Variant, type: string): Json => tf(v).resource?.[type] ?? {};
const manifests = (v: Variant): Json[] =>
  Object.values(res(v, "kubernetes_manifest")).map((m) => m.manifest);

const NVME_ARGS = /'--raid' '0' '--fs' 'xfs' '--mount' '\/mnt\/nvme' '--options' 'noatime'/;

Deno.test("the committed Terraform JSON and k8s list are what the TypeScript synthesizes", async () => {
  console.log(`synthesized ${files.size} files in ${synthMs} ms`);
  assert.deepEqual(
    await staleInfraFiles(files),
    [],
    "stale generated files: run `deno task infra:synth` and commit the result",
  );
});

Deno.test("every variant declares its providers and OpenTofu version", () => {
  const want: Record<Variant, string[]> = {
    aws: ["aws"],
    eks: ["aws", "kubernetes"],
    openshift: ["kubernetes"],
    rke2: ["kubernetes"],
  };
  for (const v of VARIANTS) {
    const t = tf(v).terraform;
    assert.deepEqual(Object.keys(t.required_providers).sort(), want[v], v);
    for (const p of Object.values(t.required_providers)) {
      assert.match(p.source, /^hashicorp\//, `${v}: full provider source`);
    }
    assert.equal(t.backend, undefined, `${v}: backend left to the operator`);
    assert.ok(!JSON.stringify(tf(v)).includes('"//"'), `${v}: cdktf metadata stripped`);
  }
});

Deno.test("aws: protected buckets, the event notification, NVMe hosts, outputs", () => {
  const buckets = Object.keys(res("aws", "aws_s3_bucket")).sort();
  assert.deepEqual(buckets, ["artifacts", "dataset", "models", "raw", "training"]);
  for (const b of buckets) {
    assert.equal(
      res("aws", "aws_s3_bucket_versioning")[`${b}_versioning`].versioning_configuration.status,
      "Enabled",
    );
    const sse = res("aws", "aws_s3_bucket_server_side_encryption_configuration")[`${b}_encryption`];
    assert.equal(sse.rule[0].apply_server_side_encryption_by_default.sse_algorithm, "aws:kms");
    const pab = res("aws", "aws_s3_bucket_public_access_block")[`${b}_public_access`];
    for (
      const k of [
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
      ]
    ) {
      assert.equal(pab[k], true, `${b}.${k}`);
    }
    const tls = JSON.parse(res("aws", "aws_s3_bucket_policy")[`${b}_tls_only`].policy);
    assert.equal(tls.Statement[0].Condition.Bool["aws:SecureTransport"], "false");
  }
  const lifecycle = res("aws", "aws_s3_bucket_lifecycle_configuration").dataset_lifecycle.rule;
  assert.deepEqual(
    lifecycle.filter((r: Json) => r.expiration).map((r: Json) => (r as JsonNode).filter[0].prefix),
    ["staging/", "tmp/"],
  );
  const note = res("aws", "aws_s3_bucket_notification").raw_events;
  assert.equal(note.bucket, "${aws_s3_bucket.raw.id}");
  assert.equal(note.queue[0].queue_arn, "${aws_sqs_queue.events.arn}");
  assert.ok(note.queue[0].events.includes("s3:ObjectCreated:*"));
  assert.deepEqual(note.depends_on, ["aws_sqs_queue_policy.events_policy"]);
  const qp = JSON.parse(res("aws", "aws_sqs_queue_policy").events_policy.policy);
  assert.equal(qp.Statement[0].Condition.ArnEquals["aws:SourceArn"], "${aws_s3_bucket.raw.arn}");

  const types = tf("aws").variable.instance_types.default;
  assert.deepEqual(Object.keys(types).sort(), ["infer", "ingest", "normalize", "train"]);
  for (const t of Object.values(types) as string[]) {
    assert.match(
      t,
      /^(i4i|i3|i3en|im4gn|is4gen|c6id|m6id|r6id|g5|g6|p4d|p5)\./,
      `${t}: NVMe instance store`,
    );
  }
  for (const stage of ["ingest", "normalize", "train", "infer"]) {
    const lt = res("aws", "aws_launch_template")[`${stage}_template`];
    assert.equal(lt.user_data, `\${base64encode(local.user_data_${stage})}`);
    assert.equal(lt.metadata_options.http_tokens, "required");
    const script: string = tf("aws").locals[`user_data_${stage}`];
    assert.match(script, NVME_ARGS);
    assert.match(script, new RegExp(`'--stage' '${stage}'`));
    assert.match(script, /'--artifacts' '\$\{local\.artifacts_source\}'/);
    assert.ok(res("aws", "aws_autoscaling_group")[`${stage}_asg`], `${stage}: ASG`);
    assert.ok(res("aws", "aws_iam_instance_profile")[`${stage}_profile`], `${stage}: profile`);
    assert.equal(
      res("aws", "aws_security_group")[`${stage}_sg`].ingress,
      undefined,
      "rules are separate",
    );
  }
  const ingress = res("aws", "aws_vpc_security_group_ingress_rule");
  const sources = Object.fromEntries(
    Object.entries(ingress).map((
      [k, r]: [string, Json],
    ) => [k, r.for_each ?? r.referenced_security_group_id]),
  );
  assert.deepEqual(sources, {
    ingest_metrics: "${toset(var.metrics_cidrs)}",
    ingest_webhook: "${toset(var.webhook_cidrs)}",
    normalize_metrics: "${toset(var.metrics_cidrs)}",
    train_metrics: "${toset(var.metrics_cidrs)}",
    train_rendezvous: "${aws_security_group.train_sg.id}",
    infer_metrics: "${toset(var.metrics_cidrs)}",
    rds_from_ingest: "${aws_security_group.ingest_sg.id}",
    rds_from_normalize: "${aws_security_group.normalize_sg.id}",
    rds_from_train: "${aws_security_group.train_sg.id}",
    rds_from_infer: "${aws_security_group.infer_sg.id}",
  }, "ingress only from the named CIDRs and the stage groups");
  assert.equal(ingress.ingest_metrics.from_port, 9101);
  assert.equal(ingress.infer_metrics.to_port, 9104);
  assert.ok(!JSON.stringify(ingress).includes("0.0.0.0/0"), "no ingress from anywhere");
  assert.equal(res("aws", "aws_db_instance").manifest.count, "${var.create_rds ? 1 : 0}");
  assert.equal(res("aws", "aws_db_instance").manifest.manage_master_user_password, true);
  // The instance uses a parameter group with TCP keepalives (a dropped client's locks: ~2 min).
  const params = res("aws", "aws_db_parameter_group").manifest_params;
  assert.equal(
    res("aws", "aws_db_instance").manifest.parameter_group_name,
    "${aws_db_parameter_group.manifest_params[0].name}",
  );
  assert.equal(params.family, "postgres16");
  assert.equal(params.count, "${var.create_rds ? 1 : 0}");
  assert.deepEqual(
    Object.fromEntries(params.parameter.map((p: Json) => [p.name, Number(p.value)])),
    { tcp_keepalives_idle: 60, tcp_keepalives_interval: 10, tcp_keepalives_count: 6 },
  );
  for (
    const o of [
      "bucket_names",
      "queue_url",
      "autoscaling_groups",
      "launch_templates",
      "staging_path",
      "metrics_endpoints",
      "manifest_endpoint",
    ]
  ) {
    assert.ok(tf("aws").output[o], `aws output ${o}`);
  }
});

Deno.test("eks: NVMe node groups, IRSA per stage, the stage objects, outputs", () => {
  const lt = res("eks", "aws_launch_template").node_template;
  const userData = Buffer.from(lt.user_data, "base64").toString();
  assert.match(userData, /^MIME-Version: 1\.0/);
  assert.match(userData, /'--owner' 'root' '--group' '0' '--mode' '2770'/);
  assert.match(userData, NVME_ARGS);
  const groups = res("eks", "aws_eks_node_group");
  assert.deepEqual(Object.keys(groups).sort(), ["cpu_node_group", "gpu_node_group"]);
  for (const g of Object.values(groups) as Json[]) {
    assert.equal(g.launch_template.id, "${aws_launch_template.node_template.id}");
    assert.equal(g.labels["sluice.dev/nvme"], "true");
  }
  for (
    const sa of [
      "sluice-ingest",
      "sluice-normalize",
      "sluice-train-worker",
      "sluice-infer",
      "default",
    ]
  ) {
    const role = Object.values(res("eks", "aws_iam_role")).find((r: Json) =>
      r.assume_role_policy.includes(`system:serviceaccount:sluice:${sa}"`)
    ) as Json | undefined;
    assert.ok(role, `IRSA role for ${sa}`);
    assert.match(role!.assume_role_policy, /sts:AssumeRoleWithWebIdentity/);
  }
  const objs = manifests("eks");
  const deployments = objs.filter((o) => o.kind === "Deployment");
  assert.equal(deployments.length, 4);
  for (const d of deployments) {
    const pod = d.spec.template.spec;
    assert.equal(pod.containers[0].image, "${var.image}");
    assert.deepEqual(pod.nodeSelector, { "sluice.dev/nvme": "true" });
    assert.equal(
      pod.volumes.find((v: Json) => v.name === "staging")!.hostPath.path,
      "/mnt/nvme/sluice",
    );
  }
  const sa = objs.find((o) => o.kind === "ServiceAccount" && o.metadata.name === "sluice-ingest")!;
  assert.equal(
    sa.metadata.annotations["eks.amazonaws.com/role-arn"],
    "${aws_iam_role.irsa_ingest.arn}",
  );
  const cm = objs.find((o) => o.kind === "ConfigMap")!;
  assert.equal(
    cm.data.SLUICE_TRAIN_K8S_IMAGE,
    "${var.image}",
    "train Job image = Deployment image",
  );
  assert.equal(cm.data.SLUICE_INGEST_SQS_QUEUE_URL, "${aws_sqs_queue.events.url}");
  assert.ok(res("eks", "aws_s3_bucket_notification").raw_events);
  for (
    const o of [
      "cluster_endpoint",
      "cluster_name",
      "node_groups",
      "bucket_names",
      "queue_url",
      "staging_path",
      "metrics_endpoints",
    ]
  ) {
    assert.ok(tf("eks").output[o], `eks output ${o}`);
  }
});

Deno.test("openshift: restricted SCC workloads on local PVs, NVMe MachineConfig, Route", async () => {
  const objs = manifests("openshift");
  assert.ok(!JSON.stringify(objs).includes('"hostPath"'), "restricted SCC forbids hostPath");
  for (const d of objs.filter((o) => o.kind === "Deployment")) {
    const pod = d.spec.template.spec;
    assert.equal(pod.securityContext.runAsUser, undefined);
    assert.equal(pod.containers[0].securityContext.allowPrivilegeEscalation, false);
    assert.equal(
      pod.volumes.find((v: Json) => v.name === "staging")!.ephemeral.volumeClaimTemplate.spec
        .storageClassName,
      "sluice-nvme",
    );
  }
  const mc = objs.find((o) => o.kind === "MachineConfig")!;
  const file = mc.spec.config.storage.files[0];
  const script = Buffer.from(file.contents.source.replace(/^data:[^,]*base64,/, ""), "base64")
    .toString();
  assert.equal(script, await readFile(new URL("../bootstrap/nvme.sh", import.meta.url), "utf8"));
  const unit = mc.spec.config.systemd.units[0].contents as string;
  assert.match(unit, /Before=kubelet\.service/);
  assert.match(unit, /'--mount' '\/mnt\/nvme'/);
  assert.match(unit, /chcon -R -t container_file_t \/mnt\/nvme\/sluice/);
  const route = objs.find((o) => o.kind === "Route")!;
  assert.deepEqual(route.spec.to, { kind: "Service", name: "sluice-ingest", weight: 100 });
  assert.equal(route.spec.tls.termination, "edge");
  const pv = res("openshift", "kubernetes_manifest").local_pv;
  assert.match(pv.for_each, /setproduct\(var\.nvme_nodes, range\(var\.volumes_per_node\)\)/);
  assert.equal(pv.manifest.spec.local.path, "/mnt/nvme/sluice/pv-${each.value.index}");
  for (const o of ["namespace", "ingest_webhook_host", "staging_path", "metrics_endpoints"]) {
    assert.ok(tf("openshift").output[o], `openshift output ${o}`);
  }
});

Deno.test("rke2: servers, agents and stage hosts over SSH, in-cluster option, outputs", () => {
  const hosts = res("rke2", "terraform_data");
  assert.deepEqual(Object.keys(hosts).sort(), ["agent", "server", "stage_host"]);
  for (const [name, h] of Object.entries(hosts) as [string, Json][]) {
    assert.equal(h.connection.type, "ssh");
    const script = h.provisioner.find((p: Json) =>
      p.file?.destination === "/tmp/sluice-bootstrap.sh"
    )!.file.content;
    assert.match(script, NVME_ARGS, name);
    assert.match(
      Array.from<Json>(h.provisioner).at(-1)!["remote-exec"].inline.at(-1)!,
      /sudo bash \/tmp\/sluice-bootstrap\.sh/,
    );
  }
  assert.match(hosts.server.provisioner[0].file.content, /token: "\$\{var\.rke2_token\}"/);
  assert.match(
    hosts.agent.provisioner[0].file.content,
    /server: https:\/\/\$\{var\.servers\[0\]\.address\}:9345/,
  );
  assert.match(
    hosts.stage_host.provisioner[0].file.content,
    /'--stages' '\$\{join\(",", each\.value\.stages\)\}'/,
  );
  assert.equal(tf("rke2").variable.rke2_token.sensitive, true);
  for (const m of Object.values(res("rke2", "kubernetes_manifest")) as Json[]) {
    assert.equal(m.count, "${var.in_cluster ? 1 : 0}");
  }
  for (const o of ["server_url", "kubernetes_api", "staging_path", "metrics_endpoints"]) {
    assert.ok(tf("rke2").output[o], `rke2 output ${o}`);
  }
});

Deno.test("tofu validate per variant (where an OpenTofu or Terraform binary exists)", async () => {
  const bin = ["tofu", "terraform"].find((b) => {
    try {
      return new Deno.Command(b, { args: ["version"], stdout: "null", stderr: "null" }).outputSync()
        .success;
    } catch {
      return false;
    }
  });
  if (!bin) {
    console.log(
      "SKIP tofu validate: no tofu or terraform binary on PATH, and none can be installed on this " +
        "machine (only npm and Debian apt are reachable; see ENVIRONMENT.md). " +
        ".github/workflows/infra.yml runs `tofu init -backend=false && tofu validate` per variant.",
    );
    return;
  }
  for (const v of VARIANTS) {
    const dir = await mkdtemp(join(tmpdir(), `tofu-${v}-`));
    try {
      await cp(new URL(`../${v}/main.tf.json`, import.meta.url), join(dir, "main.tf.json"));
      for (const args of [["init", "-backend=false", "-input=false"], ["validate"]]) {
        const r = await new Deno.Command(bin, { args, cwd: dir, stdout: "piped", stderr: "piped" })
          .output();
        const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
        if (
          !r.success &&
          /Failed to query available provider packages|could not connect to registry/.test(text)
        ) {
          // `init` fetches providers before anything is validated; without them there is nothing
          // `validate` can check, so this is a skip, not a pass.
          console.log(
            `SKIP ${bin} validate (${v}): ${bin} is installed but its provider registry is not ` +
              "reachable from this machine, so providers cannot be installed; " +
              ".github/workflows/infra.yml validates every variant",
          );
          return;
        }
        assert.ok(r.success, `${v}: ${bin} ${args.join(" ")} failed:\n${text}`);
      }
      console.log(`${bin} validate (${v}): ok`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});

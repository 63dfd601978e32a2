/**
 * The stage objects and the train Job validate against the Kubernetes schemas, carry the
 * OpenShift restricted-SCC settings, and share one image; broken objects are refused.
 * @module
 */
import assert from "node:assert/strict";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IJob } from "kubernetes-models/batch/v1/Job";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IService } from "kubernetes-models/v1/Service";
import { launchPlanFixture } from "../../stages/train/testdata/launch_plan.ts";
import { K8sSettingsSchema } from "./k8s_settings.ts";
import { configData, type K8sObject, stageObjects } from "./stage_objects.ts";
import { loadConfig } from "../../common/config/mod.ts";
import { TrainSettingsSchema } from "../../stages/train/config.ts";
import { k8sObjects } from "../../stages/train/k8s.ts";
import { launcherK8sOptions } from "../../stages/train/run_training.ts";
import { trainJobObjects } from "./train_job.ts";
import { objectProblems, validateObjects } from "./validate_objects.ts";

const deployments = (objs: K8sObject[]) =>
  objs.filter((o): o is IDeployment => o.kind === "Deployment");

Deno.test("stage objects", async (t) => {
  const settings = K8sSettingsSchema.parse({ image: { tag: "1.4.2" } });
  const objects = [...stageObjects(settings), ...trainJobObjects(launchPlanFixture(2), settings)];

  await t.step("every object validates against the Kubernetes OpenAPI schemas", () => {
    validateObjects(objects);
    const kinds = objects.map((o) => o.kind);
    for (
      const k of [
        "Namespace",
        "ConfigMap",
        "ServiceAccount",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "Job",
      ]
    ) {
      assert.ok(kinds.includes(k), `expected a ${k} among ${kinds.join(", ")}`);
    }
  });

  await t.step("one Deployment per long-running stage with its binary and port", () => {
    const byName = new Map(deployments(objects).map((d) => [d.metadata!.name!, d]));
    const want: Record<string, [string[], number]> = {
      "sluice-ingest": [["sluice-ingest", "events"], 9101],
      "sluice-normalize": [["sluice-normalize", "run"], 9102],
      "sluice-train-worker": [["sluice-train", "worker"], 9103],
      "sluice-infer": [["sluice-infer", "run"], 9104],
    };
    assert.deepEqual([...byName.keys()].sort(), Object.keys(want).sort());
    for (const [name, [command, port]] of Object.entries(want)) {
      const pod = byName.get(name)!.spec!.template.spec!;
      const c = pod.containers[0];
      assert.deepEqual(c.command, command, name);
      assert.equal(c.image, "ghcr.io/sluice/sluice:1.4.2", name);
      assert.deepEqual(c.ports, [{ name: "http", containerPort: port, protocol: "TCP" }], name);
      assert.equal(c.livenessProbe?.httpGet?.path, "/healthz", name);
      assert.equal(c.readinessProbe?.httpGet?.path, "/readyz", name);
      const ann = byName.get(name)!.spec!.template.metadata!.annotations!;
      assert.deepEqual(
        [ann["prometheus.io/scrape"], ann["prometheus.io/port"], ann["prometheus.io/path"]],
        ["true", String(port), "/metrics"],
      );
      assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${name}: requests`);
      assert.ok(c.resources?.limits?.memory, `${name}: memory limit`);
    }
  });

  await t.step("restricted SCC: no fixed UID, no escalation, caps dropped, read-only root", () => {
    for (const d of deployments(objects)) {
      const pod = d.spec!.template.spec!;
      const c = pod.containers[0];
      assert.equal(pod.securityContext?.runAsNonRoot, true);
      assert.equal(pod.securityContext?.runAsUser, undefined, "OpenShift assigns the UID");
      assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"]);
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
      assert.equal(c.securityContext?.privileged, undefined);
      const mounts = Object.fromEntries(c.volumeMounts!.map((m) => [m.mountPath, m.name]));
      assert.equal(mounts["/mnt/nvme/sluice"], "staging");
      assert.equal(mounts["/tmp"], "tmp");
      const tmp = pod.volumes!.find((v) => v.name === "tmp");
      assert.ok(tmp?.emptyDir, "/tmp is an emptyDir");
      assert.deepEqual(pod.volumes!.find((v) => v.name === "staging")?.hostPath, {
        path: "/mnt/nvme/sluice",
        type: "Directory",
      });
    }
  });

  await t.step("configuration by ConfigMap, secrets only by Secret reference", () => {
    for (const d of deployments(objects)) {
      const c = d.spec!.template.spec!.containers[0];
      assert.deepEqual(c.envFrom, [
        { configMapRef: { name: "sluice-config" } },
        { secretRef: { name: "sluice-secrets" } },
      ]);
      for (const e of c.env ?? []) {
        assert.doesNotMatch(e.name, /SECRET|PASSWORD|TOKEN|KEY/, `${e.name} set literally`);
      }
    }
    assert.ok(!objects.some((o) => o.kind === "Secret"), "no Secret object is ever written");
    const bad = K8sSettingsSchema.safeParse({
      config: { SLUICE_S3_SECRET_ACCESS_KEY: "x", SLUICE_MANIFEST_URL: "postgres://u:pw@db/s" },
    });
    assert.equal(bad.success, false);
    const msgs = bad.error!.issues.map((i) => i.message).join("\n");
    assert.match(msgs, /expected SLUICE_S3_SECRET_ACCESS_KEY in the Secret, not the ConfigMap/);
    assert.match(msgs, /expected SLUICE_MANIFEST_URL without a password/);
  });

  await t.step("the train Job the launcher writes uses the same image and namespace", () => {
    const job = objects.find((o): o is IJob => o.kind === "Job")!;
    assert.equal(job.spec!.completionMode, "Indexed");
    const c = job.spec!.template.spec!.containers[0];
    assert.equal(c.image, "ghcr.io/sluice/sluice:1.4.2");
    assert.equal(c.command![0], "sluice-train");
    assert.equal(job.metadata!.namespace, "sluice");
    const cm = objects.find((o): o is IConfigMap => o.kind === "ConfigMap")!;
    assert.equal(cm.data!.SLUICE_TRAIN_K8S_IMAGE, "ghcr.io/sluice/sluice:1.4.2");
    assert.equal(cm.data!.SLUICE_TRAIN_K8S_NAMESPACE, "sluice");
    assert.equal(
      cm.data!.SLUICE_TRAIN_BIN_PATH,
      c.command![0],
      "launcher and Job run the same binary",
    );
  });

  await t.step("the ingest Service exposes the webhook and metrics port", () => {
    const svc = objects.find((o): o is IService =>
      o.kind === "Service" && o.metadata?.name === "sluice-ingest"
    )!;
    assert.deepEqual(svc.spec!.ports, [{
      name: "http",
      port: 9101,
      targetPort: "http",
      protocol: "TCP",
    }]);
    assert.deepEqual(svc.spec!.selector, { "app.kubernetes.io/name": "sluice-ingest" });
  });
});

Deno.test("local PV staging: ephemeral claims on the NVMe StorageClass, no hostPath", () => {
  const s = K8sSettingsSchema.parse({ staging: { kind: "localPV", size: "200Gi" } });
  const objects = stageObjects(s);
  validateObjects(objects);
  assert.ok(objects.some((o) => o.kind === "StorageClass" && o.metadata?.name === "sluice-nvme"));
  for (const d of deployments(objects)) {
    const vols = d.spec!.template.spec!.volumes!;
    assert.ok(!vols.some((v) => v.hostPath), `${d.metadata!.name}: hostPath under localPV`);
    const claim = vols.find((v) => v.name === "staging")!.ephemeral!.volumeClaimTemplate!.spec;
    assert.equal(claim.storageClassName, "sluice-nvme");
    assert.equal(claim.resources!.requests!.storage, "200Gi");
  }
});

Deno.test("validation refuses broken objects and names what is wrong", () => {
  const [good] = deployments(stageObjects(K8sSettingsSchema.parse({})));
  const broken = structuredClone(good) as unknown as {
    spec: { replicas: unknown; template: { spec: { containers: unknown } } };
  };
  broken.spec.replicas = "two";
  const problems = objectProblems(broken as unknown as K8sObject);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /^Deployment sluice-ingest: .*replicas must be integer/);

  const noContainers = structuredClone(good) as unknown as {
    spec: { template: { spec: Record<string, unknown> } };
  };
  delete noContainers.spec.template.spec.containers;
  assert.throws(
    () => validateObjects([good, noContainers as unknown as K8sObject]),
    /Deployment sluice-ingest: .*containers/,
  );
  assert.match(
    objectProblems({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" } }).join(),
    /Pod p: no schema for v1\/Pod/,
  );
  assert.match(
    objectProblems({ apiVersion: "route.openshift.io/v1", kind: "Route", metadata: { name: "r" } })
      .join(),
    /Route r: spec/,
  );
});

Deno.test("local PV staging: the train Job, validated here and written by the launcher, has no hostPath", async () => {
  const s = K8sSettingsSchema.parse({ staging: { kind: "localPV", size: "200Gi" } });
  const plan = launchPlanFixture(2);
  const [job] = trainJobObjects(plan, s) as unknown as IJob[];
  validateObjects([job as unknown as K8sObject]);
  const claimOf = (j: IJob) => {
    const vols = j.spec!.template.spec!.volumes!;
    assert.ok(!vols.some((v) => v.hostPath), "restricted SCC refuses hostPath");
    return vols.find((v) => v.name === "staging")!.ephemeral!.volumeClaimTemplate!.spec;
  };
  assert.equal(claimOf(job).storageClassName, "sluice-nvme");
  assert.equal(claimOf(job).resources!.requests!.storage, "200Gi");
  // The launcher reads the ConfigMap as environment: the Job it writes at run time must match.
  const env = configData(s);
  const config = await loadConfig({
    stage: "train",
    stageSchema: TrainSettingsSchema,
    argv: [],
    env,
  });
  const runtime = k8sObjects(plan, launcherK8sOptions(config.stage)).job as unknown as IJob;
  assert.deepEqual(claimOf(runtime), claimOf(job));
});

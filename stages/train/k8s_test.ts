import assert from "node:assert/strict";
import { jobNameFor, renderK8s } from "./k8s.ts";
import { toYaml } from "../../common/yaml/mod.ts";
import { hasPyYaml, pyYamlLoad } from "../../tests/support/pyyaml.ts";
import { launchPlanFixture } from "./testdata/launch_plan.ts";

/** Parses YAML with a real YAML implementation (PyYAML in Debian's python3). */
const parseYaml = pyYamlLoad;

const pyyaml = hasPyYaml;

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test({
  name: "k8s definitions",
  ignore: !pyyaml,
  fn: async (t) => {
    const plan = launchPlanFixture(3);
    const defs = renderK8s(plan, {
      namespace: "ml",
      image: "registry.local/sluice:1.2.3",
      binPath: "/usr/local/bin/sluice-train",
      masterPort: 29500,
      gpusPerNode: 1,
    });

    await t.step("an Indexed Job with one pod per rank, completions = nodes", async () => {
      const job: Json = await parseYaml(defs.job);
      assert.equal(job.apiVersion, "batch/v1");
      assert.equal(job.kind, "Job");
      assert.equal(job.metadata.name, defs.jobName);
      assert.equal(job.metadata.namespace, "ml");
      assert.equal(job.spec.completionMode, "Indexed");
      assert.equal(job.spec.completions, 3);
      assert.equal(job.spec.parallelism, 3);
      assert.equal(job.spec.backoffLimit, 0);
      const pod = job.spec.template.spec;
      assert.equal(pod.subdomain, defs.serviceName, "pods get DNS names under the service");
      assert.equal(pod.restartPolicy, "Never");
      const [c] = pod.containers;
      assert.equal(c.image, "registry.local/sluice:1.2.3");
      assert.deepEqual(c.command, [
        "/usr/local/bin/sluice-train",
        "node",
        "--plan",
        plan.keys.launch,
      ]);
      assert.deepEqual(c.resources.limits, { "nvidia.com/gpu": 1 });
      const env = Object.fromEntries(c.env.map((e: Json) => [e.name, e.value ?? e.valueFrom]));
      assert.deepEqual(env.RANK, {
        fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
      });
      assert.equal(env.WORLD_SIZE, "3");
      assert.equal(env.MASTER_PORT, "29500");
      assert.equal(env.MASTER_ADDR, `${defs.jobName}-0.${defs.serviceName}.ml.svc`);
      assert.equal(c.ports[0].containerPort, 29500);
      assert.deepEqual(c.envFrom.map((e: Json) => Object.keys(e)[0]), [
        "configMapRef",
        "secretRef",
      ]);
      assert.equal(pod.volumes[0].hostPath.path, "/mnt/nvme");
      assert.equal(c.volumeMounts[0].mountPath, "/mnt/nvme");
    });

    await t.step("a headless Service selecting the Job's pods", async () => {
      const svc: Json = await parseYaml(defs.service);
      assert.equal(svc.kind, "Service");
      assert.equal(svc.spec.clusterIP, "None");
      assert.equal(svc.spec.publishNotReadyAddresses, true);
      assert.deepEqual(svc.spec.selector, { "job-name": defs.jobName });
      assert.equal(svc.spec.ports[0].port, 29500);
    });

    await t.step("names are DNS labels; CPU pods ask for no GPU", async () => {
      assert.match(defs.jobName, /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
      assert.equal(defs.jobName, jobNameFor(plan));
      const cpu = renderK8s(launchPlanFixture(1), {
        namespace: "default",
        image: "sluice:latest",
        binPath: "/usr/local/bin/sluice-train",
        masterPort: 29500,
        gpusPerNode: 0,
      });
      const job: Json = await parseYaml(cpu.job);
      assert.deepEqual(job.spec.template.spec.containers[0].resources, {});
      assert.equal(job.spec.completions, 1);
    });

    await t.step("the YAML writer round-trips awkward strings", async () => {
      const value = {
        s: ["yes", "no", "null", "1.0", "a: b", "#x", "multi\nline", "", 'quote"d'],
        n: [0, -1.5, 1e21],
        b: [true, false],
        nil: null,
        empty: [],
        none: {},
        nested: [{ a: [{ b: 1 }], c: "d" }, [1, [2]]],
        "weird key": { "true": 1 },
      };
      assert.deepEqual(await parseYaml(toYaml(value)), value);
      assert.deepEqual(await parseYaml(toYaml(value, { quoteStrings: true })), value);
    });
  },
});

/**
 * NVMe settings: defaults, the nvme.sh arguments they become, and refusals at the edge.
 * @module
 */
import assert from "node:assert/strict";
import { nvmeArgs, NvmeSettingsSchema, stagingPath } from "./nvme_settings.ts";

Deno.test("NVMe settings become nvme.sh arguments", () => {
  const d = NvmeSettingsSchema.parse({});
  assert.deepEqual(nvmeArgs(d), [
    "--model",
    "Amazon EC2 NVMe Instance Storage",
    "--raid",
    "0",
    "--fs",
    "xfs",
    "--mount",
    "/mnt/nvme",
    "--options",
    "noatime",
    "--mount-method",
    "systemd",
    "--staging-dir",
    "sluice",
    "--owner",
    "sluice",
    "--mode",
    "0750",
  ]);
  assert.equal(stagingPath(d), "/mnt/nvme/sluice");
  const listed = NvmeSettingsSchema.parse({
    devices: ["/dev/nvme1n1", "/dev/nvme2n1"],
    raid: "none",
    filesystem: "ext4",
    mountOptions: ["noatime", "discard"],
    group: "0",
  });
  const args = nvmeArgs(listed);
  assert.deepEqual(args.slice(0, 2), ["--devices", "/dev/nvme1n1 /dev/nvme2n1"]);
  assert.ok(!args.includes("--model"));
  assert.deepEqual(args.slice(args.indexOf("--options"), args.indexOf("--options") + 2), [
    "--options",
    "noatime,discard",
  ]);
  assert.deepEqual(args.slice(args.indexOf("--group"), args.indexOf("--group") + 2), [
    "--group",
    "0",
  ]);
});

Deno.test("NVMe settings refuse what nvme.sh would refuse", () => {
  const bad = (v: unknown) => NvmeSettingsSchema.safeParse(v).success;
  assert.equal(bad({ raid: "5" }), false);
  assert.equal(bad({ filesystem: "btrfs" }), false);
  assert.equal(bad({ devices: ["nvme1n1"] }), false);
  assert.equal(bad({ devices: [] }), false);
  assert.equal(bad({ model: "it's" }), false);
  assert.equal(bad({ mode: "rwx" }), false);
  assert.equal(bad({ stagingDir: "a/b" }), false);
  assert.equal(bad({ owner: "Bad User" }), false);
});

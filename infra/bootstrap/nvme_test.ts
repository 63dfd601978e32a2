/**
 * Tests of `nvme.sh`: shellcheck, dry-run plans against canned `lsblk` listings (one disk,
 * several disks, a disk with a foreign filesystem, partitions, the root disk), and a real run on
 * loop devices as root.
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./nvme.sh", import.meta.url));
const CI = Deno.env.get("CI") === "true";

interface Run {
  code: number;
  out: string;
}

async function sh(cmd: string, args: string[]): Promise<Run> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: expected exit 0, found ${r.code}: ${r.out}`);
  return r.out.trim();
}

async function hasTool(name: string): Promise<boolean> {
  return (await sh("sh", ["-c", `command -v ${name}`])).code === 0;
}

/** One `lsblk -P` line. */
function disk(
  name: string,
  o: { type?: string; model?: string; fs?: string; label?: string; mnt?: string; parent?: string },
): string {
  return `NAME="${name}" PATH="/dev/${name}" TYPE="${o.type ?? "disk"}" MODEL="${o.model ?? ""}" ` +
    `FSTYPE="${o.fs ?? ""}" LABEL="${o.label ?? ""}" MOUNTPOINT="${o.mnt ?? ""}" PKNAME="${
      o.parent ?? ""
    }"`;
}

const STORE = "Amazon EC2 NVMe Instance Storage";
const ROOT = [
  disk("nvme0n1", { model: "Amazon Elastic Block Store" }),
  disk("nvme0n1p1", { type: "part", fs: "xfs", label: "/", mnt: "/", parent: "nvme0n1" }),
];

async function plan(lines: string[], ...extra: string[]): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), "nvme-plan-"));
  try {
    const file = join(dir, "lsblk.txt");
    await writeFile(file, lines.join("\n") + "\n");
    return await sh("bash", [
      SCRIPT,
      "--dry-run",
      "--lsblk-file",
      file,
      "--mount-method",
      "fstab",
      "--fstab",
      join(dir, "fstab"),
      "--mount",
      join(dir, "mnt"),
      ...extra,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("nvme.sh is shellcheck clean", async () => {
  if (!(await hasTool("shellcheck"))) {
    if (CI) assert.fail("shellcheck: expected on PATH under CI=true (apt-get install shellcheck)");
    console.log("SKIP shellcheck: not installed (apt-get install shellcheck)");
    return;
  }
  const r = await sh("shellcheck", ["--severity=style", SCRIPT]);
  assert.equal(r.code, 0, r.out);
});

Deno.test("nvme.sh dry-run plans", async (t) => {
  await t.step("one instance-store disk: mkfs and mount it, no RAID", async () => {
    const r = await plan([...ROOT, disk("nvme1n1", { model: STORE })]);
    assert.equal(r.code, 0, r.out);
    assert.match(
      r.out,
      /plan: make xfs on \/dev\/nvme1n1: mkfs\.xfs -q -L sluice-nvme \/dev\/nvme1n1/,
    );
    assert.doesNotMatch(r.out, /mdadm/);
    assert.match(
      r.out,
      /plan: add to .*fstab.*UUID=<uuid of \/dev\/nvme1n1> .* xfs noatime,nofail/,
    );
    assert.match(r.out, /plan: mount .*: mount -t xfs -o noatime \/dev\/nvme1n1 /);
    assert.match(r.out, /install -d -o sluice -g sluice -m 0750 .*\/mnt\/sluice/);
    assert.match(r.out, /dry run: \d+ steps planned, nothing changed/);
  });

  await t.step("systemd mount unit: by UUID, noatime,nofail, wanted by local-fs", async () => {
    const r = await plan(
      [...ROOT, disk("nvme1n1", { model: STORE })],
      "--mount-method",
      "systemd",
      "--unit-dir",
      "/nonexistent-unit-dir",
    );
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /plan: write mount unit \/nonexistent-unit-dir\/[^:]*\.mount/);
    assert.match(r.out, /What=\/dev\/disk\/by-uuid\/<uuid of \/dev\/nvme1n1>/);
    assert.match(r.out, /Type=xfs\nOptions=noatime,nofail\n/);
    assert.match(r.out, /WantedBy=local-fs\.target/);
    assert.match(r.out, /plan: mount .*: systemctl start .*\.mount/);
  });

  await t.step("several disks: one RAID0 array, mkfs on the array only", async () => {
    const r = await plan(
      [
        ...ROOT,
        disk("nvme1n1", { model: STORE }),
        disk("nvme2n1", { model: STORE }),
        disk("nvme3n1", { model: STORE }),
      ],
      "--fs",
      "ext4",
    );
    assert.equal(r.code, 0, r.out);
    assert.match(
      r.out,
      /mdadm --create \/dev\/md\/sluice-nvme --name=sluice-nvme --level=0 --raid-devices=3 --run \/dev\/nvme1n1 \/dev\/nvme2n1 \/dev\/nvme3n1/,
    );
    assert.match(r.out, /mkfs\.ext4 -q -F -L sluice-nvme \/dev\/md\/sluice-nvme/);
    assert.doesNotMatch(r.out, /mkfs\.\S+ .* \/dev\/nvme\dn1\b/);
  });

  await t.step("--raid none with several disks uses the first only", async () => {
    const r = await plan(
      [...ROOT, disk("nvme1n1", { model: STORE }), disk("nvme2n1", { model: STORE })],
      "--raid",
      "none",
    );
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /using \/dev\/nvme1n1 only; leaving \/dev\/nvme2n1 alone/);
    assert.doesNotMatch(r.out, /mdadm/);
  });

  await t.step("the root disk is excluded even when its model matches", async () => {
    const root = [
      disk("nvme0n1", { model: STORE }),
      disk("nvme0n1p1", { type: "part", fs: "ext4", mnt: "/", parent: "nvme0n1" }),
    ];
    const r = await plan([...root, disk("nvme1n1", { model: STORE })]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /skipping root disk \/dev\/nvme0n1/);
    assert.match(r.out, /devices: \/dev\/nvme1n1;/);
    const named = await plan(
      [...root, disk("nvme1n1", { model: STORE })],
      "--devices",
      "/dev/nvme0n1",
    );
    assert.notEqual(named.code, 0);
    assert.match(named.out, /device \/dev\/nvme0n1: it holds the root filesystem; refusing/);
  });

  await t.step("a disk holding a filesystem it did not create is refused", async () => {
    const r = await plan([...ROOT, disk("nvme1n1", { model: STORE, fs: "ext4", label: "data" })]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.out,
      /device \/dev\/nvme1n1: it holds ext4 \(label data\) that nvme\.sh did not create/,
    );
    assert.doesNotMatch(r.out, /plan:/);
  });

  await t.step("a partitioned disk is refused", async () => {
    const r = await plan([
      ...ROOT,
      disk("nvme1n1", { model: STORE }),
      disk("nvme1n1p1", { type: "part", parent: "nvme1n1" }),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.out,
      /device \/dev\/nvme1n1: it holds partitions or other devices \(nvme1n1p1 \)/,
    );
  });

  await t.step("a disk it formatted before is not formatted again", async () => {
    const r = await plan([
      ...ROOT,
      disk("nvme1n1", { model: STORE, fs: "xfs", label: "sluice-nvme" }),
    ]);
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /mkfs/);
    assert.match(r.out, /plan: mount /);
  });

  await t.step("no matching disk is an error that says what was looked for", async () => {
    const r = await plan(ROOT);
    assert.notEqual(r.code, 0);
    assert.match(
      r.out,
      /no disk matched model \/Amazon EC2 NVMe Instance Storage\/ \(root disk excluded\)/,
    );
  });

  await t.step("bad options name the option and the value", async () => {
    const r = await plan(ROOT, "--raid", "5");
    assert.notEqual(r.code, 0);
    assert.match(r.out, /--raid: expected 0 or none, found '5'/);
  });
});

/** Why the loop-device test cannot run here, or undefined when it can. */
async function loopUnavailable(): Promise<string | undefined> {
  if (Deno.uid() !== 0) return "needs root";
  for (const tool of ["losetup", "mkfs.xfs", "mkfs.ext4", "blkid", "findmnt", "mount"]) {
    if (!(await hasTool(tool))) return `${tool} is not installed (apt-get install xfsprogs)`;
  }
  return undefined;
}

Deno.test({
  name: "nvme.sh on loop devices: single disk for real, two disks up to the RAID0 plan",
  sanitizeResources: false,
  fn: async (t) => {
    const why = await loopUnavailable();
    if (why) {
      if (CI) assert.fail(`loop-device test: expected to run under CI=true, but it ${why}`);
      console.log(`SKIP nvme.sh loop-device test: ${why}`);
      return;
    }
    // This machine has no md driver (/proc/mdstat absent; mdadm cannot create arrays), so RAID0
    // is tested up to the plan nvme.sh prints; the single-disk path runs for real.
    console.log(
      "nvme.sh loop test: single-device path runs for real (mkfs.xfs, mount, owner, idempotent " +
        "second run, teardown); the two-device RAID0 path is checked up to its printed plan " +
        "because this kernel has no md driver",
    );
    const dir = await mkdtemp(join(tmpdir(), "nvme-loop-"));
    const loops: string[] = [];
    const mnt = join(dir, "mnt");
    const fstab = join(dir, "fstab");
    await writeFile(fstab, "# test fstab\n");
    const common = [
      "--mount-method",
      "fstab",
      "--fstab",
      fstab,
      "--mount",
      mnt,
      "--owner",
      "nobody",
      "--group",
      "nogroup",
    ];
    try {
      for (let i = 0; i < 3; i++) {
        const img = join(dir, `disk${i}.img`);
        await must("truncate", ["-s", "320M", img]); // mkfs.xfs wants >= 300 MB
        loops.push(await must("losetup", ["-f", "--show", img]));
      }
      const [a, b, c] = loops;

      await t.step("dry run on one loop device plans and changes nothing", async () => {
        const r = await sh("bash", [SCRIPT, "--dry-run", "--devices", a, ...common]);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, new RegExp(`mkfs\\.xfs -q -L sluice-nvme ${a}`));
        assert.equal((await sh("blkid", ["-p", a])).code, 2, "the device must still be blank");
      });

      await t.step("first run: mkfs.xfs, fstab nofail, mount, owner", async () => {
        const r = await sh("bash", [SCRIPT, "--devices", a, ...common]);
        assert.equal(r.code, 0, r.out);
        assert.equal(await must("blkid", ["-p", "-s", "TYPE", "-o", "value", a]), "xfs");
        assert.equal(await must("blkid", ["-p", "-s", "LABEL", "-o", "value", a]), "sluice-nvme");
        assert.equal(await must("findmnt", ["-n", "-o", "SOURCE", "--mountpoint", mnt]), a);
        assert.match(
          await must("findmnt", ["-n", "-o", "OPTIONS", "--mountpoint", mnt]),
          /noatime/,
        );
        const uuid = await must("blkid", ["-p", "-s", "UUID", "-o", "value", a]);
        assert.match(
          await readFile(fstab, "utf8"),
          new RegExp(`^UUID=${uuid} ${mnt} xfs noatime,nofail 0 2 # sluice-nvme$`, "m"),
        );
        assert.equal(
          await must("stat", ["-c", "%U:%G %a", join(mnt, "sluice")]),
          "nobody:nogroup 750",
        );
      });

      await t.step("second run changes nothing", async () => {
        const before = await readFile(fstab, "utf8");
        await writeFile(join(mnt, "sluice", "keep"), "staged");
        const r = await sh("bash", [SCRIPT, "--devices", a, ...common]);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /no changes: .* is mounted at .* is ready/);
        assert.doesNotMatch(r.out, /run:/);
        assert.equal(await readFile(fstab, "utf8"), before);
        assert.equal(await readFile(join(mnt, "sluice", "keep"), "utf8"), "staged");
      });

      await t.step(
        "a loop device with a foreign filesystem is refused and left intact",
        async () => {
          await must("mkfs.ext4", ["-q", "-L", "other", c]);
          const r = await sh("bash", [
            SCRIPT,
            "--devices",
            c,
            ...common,
            "--mount",
            join(dir, "m2"),
          ]);
          assert.notEqual(r.code, 0);
          assert.match(
            r.out,
            new RegExp(
              `device ${c}: it holds ext4 \\(label other\\) that nvme\\.sh did not create`,
            ),
          );
          assert.equal(await must("blkid", ["-p", "-s", "LABEL", "-o", "value", c]), "other");
        },
      );

      await t.step("two loop devices: the RAID0 plan (no md driver here to build it)", async () => {
        const two = await sh("bash", [
          SCRIPT,
          "--dry-run",
          "--devices",
          `${b} ${c}`,
          ...common,
          "--mount",
          join(dir, "m3"),
        ]);
        // c holds the foreign ext4 made above: the plan must refuse it before any mdadm
        assert.notEqual(two.code, 0);
        assert.match(two.out, new RegExp(`device ${c}: it holds ext4`));
        await must("wipefs", ["-a", c]);
        const ok = await sh("bash", [
          SCRIPT,
          "--dry-run",
          "--devices",
          `${b} ${c}`,
          ...common,
          "--mount",
          join(dir, "m3"),
        ]);
        assert.equal(ok.code, 0, ok.out);
        assert.match(
          ok.out,
          new RegExp(
            `plan: create RAID0 /dev/md/sluice-nvme: mdadm --create /dev/md/sluice-nvme --name=sluice-nvme --level=0 --raid-devices=2 --run ${b} ${c}`,
          ),
        );
        assert.match(ok.out, /mkfs\.xfs -q -L sluice-nvme \/dev\/md\/sluice-nvme/);
        assert.equal((await sh("blkid", ["-p", b])).code, 2, "dry run must leave the device blank");
      });
    } finally {
      await sh("umount", [mnt]);
      for (const l of loops) await sh("losetup", ["-d", l]);
      await rm(dir, { recursive: true, force: true });
    }
    assert.equal((await sh("findmnt", ["--mountpoint", mnt])).code, 1, "teardown: still mounted");
  },
});

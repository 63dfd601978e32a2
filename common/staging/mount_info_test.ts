import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  backingDevice,
  findMountFor,
  isNvmeDevicePath,
  parseMountInfo,
  unescapeMountField,
} from "./mount_info.ts";

// Literal lines in the shapes the kernel writes, including the odd ones.
const SAMPLE = [
  "22 27 0:21 / /proc rw,relatime - proc proc rw",
  "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard",
  // Optional fields: several tags before the separator.
  "40 27 259:1 / /mnt/nvme rw,noatime shared:12 master:3 propagate_from:2 - xfs /dev/nvme1n1 rw,attr2",
  // Escaped space, tab and backslash in the mount point; escaped space in the source.
  "41 27 8:17 / /media/my\\040disk\\011tab\\134x rw - vfat /dev/sdb1\\040x rw",
  // A bind mount: root is a subdirectory of the filesystem.
  "42 40 259:1 /sluice /srv/staging rw - xfs /dev/nvme1n1 rw",
  // Empty source field (two spaces) must not shift the super options.
  "43 27 0:50 / /mnt/empty rw - fuse.sshfs  rw,user_id=0",
  // Stacked mounts on one point: the later one is on top.
  "44 27 0:51 / /mnt/stack rw - tmpfs first rw",
  "45 44 0:52 / /mnt/stack rw - tmpfs second rw",
  // A mount point that looks like a prefix of another directory name.
  "46 27 0:53 / /mnt/nv rw - tmpfs nv rw",
  // Malformed lines are skipped.
  "garbage line",
  "47 27 xx / /bad rw - ext4 /dev/sda rw",
  "48 27 8:1 / /noseparator rw ext4 /dev/sda rw",
  "",
].join("\n");

Deno.test("mount_info", async (t) => {
  await t.step("unescapeMountField decodes kernel octal escapes", () => {
    assert.equal(unescapeMountField("/a\\040b\\011c\\012d\\134e"), "/a b\tc\nd\\e");
    assert.equal(unescapeMountField("/plain"), "/plain");
    // Not three octal digits: left alone.
    assert.equal(unescapeMountField("/x\\09"), "/x\\09");
  });

  await t.step("parseMountInfo reads fields, optional tags and escapes", () => {
    const entries = parseMountInfo(SAMPLE);
    assert.deepEqual(entries.map((e) => e.mountId), [22, 27, 40, 41, 42, 43, 44, 45, 46]);
    const nvme = entries.find((e) => e.mountId === 40)!;
    assert.equal(nvme.parentId, 27);
    assert.equal(nvme.major, 259);
    assert.equal(nvme.minor, 1);
    assert.equal(nvme.mountPoint, "/mnt/nvme");
    assert.deepEqual(nvme.optionalFields, ["shared:12", "master:3", "propagate_from:2"]);
    assert.equal(nvme.fsType, "xfs");
    assert.equal(nvme.source, "/dev/nvme1n1");
    assert.equal(nvme.superOptions, "rw,attr2");
    const odd = entries.find((e) => e.mountId === 41)!;
    assert.equal(odd.mountPoint, "/media/my disk\ttab\\x");
    assert.equal(odd.source, "/dev/sdb1 x");
    assert.deepEqual(odd.optionalFields, []);
    const bind = entries.find((e) => e.mountId === 42)!;
    assert.equal(bind.root, "/sluice");
    const empty = entries.find((e) => e.mountId === 43)!;
    assert.equal(empty.fsType, "fuse.sshfs");
    assert.equal(empty.source, "");
    assert.equal(empty.superOptions, "rw,user_id=0");
  });

  await t.step("parseMountInfo accepts CRLF and a missing final newline", () => {
    const entries = parseMountInfo(
      "1 0 8:1 / / rw - ext4 /dev/sda1 rw\r\n2 1 0:3 / /x rw - tmpfs t rw",
    );
    assert.equal(entries.length, 2);
    assert.equal(entries[0].superOptions, "rw");
  });

  await t.step("findMountFor picks the longest mount-point prefix", () => {
    const entries = parseMountInfo(SAMPLE);
    assert.equal(findMountFor(entries, "/mnt/nvme/sluice/ingest")?.mountId, 40);
    assert.equal(findMountFor(entries, "/mnt/nvme")?.mountId, 40);
    // "/mnt/nvme2" is not under "/mnt/nvme", nor "/mnt/nvx" under "/mnt/nv".
    assert.equal(findMountFor(entries, "/mnt/nvme2/x")?.mountId, 27);
    assert.equal(findMountFor(entries, "/mnt/nvx")?.mountId, 27);
    assert.equal(findMountFor(entries, "/mnt/nv/a")?.mountId, 46);
    assert.equal(findMountFor(entries, "/media/my disk\ttab\\x/f")?.mountId, 41);
    assert.equal(findMountFor(entries, "/mnt/stack/f")?.source, "second");
    assert.equal(findMountFor(entries, "/etc")?.mountId, 27);
    assert.equal(findMountFor([], "/etc"), null);
  });

  await t.step("isNvmeDevicePath", () => {
    assert.equal(isNvmeDevicePath("/dev/nvme0n1p1"), true);
    assert.equal(isNvmeDevicePath("/dev/nvme12n1"), true);
    assert.equal(isNvmeDevicePath("/dev/sda1"), false);
    assert.equal(isNvmeDevicePath("nvme"), false);
    assert.equal(isNvmeDevicePath("/dev/nvme-fabrics"), false);
  });

  await t.step("backingDevice resolves NVMe through a sysfs tree", async () => {
    const sys = await mkdtemp(join(tmpdir(), "sluice-sys-"));
    try {
      // 259:3 → a partition under an nvme controller; 253:0 → dm-0 built on that partition;
      // 8:0 → a SCSI disk.
      const nvmePart = join(sys, "devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p3");
      const dm = join(sys, "devices/virtual/block/dm-0");
      const sda = join(sys, "devices/pci0000:00/0000:00:05.0/host0/block/sda");
      for (const d of [nvmePart, join(dm, "slaves"), sda, join(sys, "dev/block")]) {
        await mkdir(d, { recursive: true });
      }
      await symlink(nvmePart, join(sys, "dev/block/259:3"));
      await symlink(dm, join(sys, "dev/block/253:0"));
      await symlink(sda, join(sys, "dev/block/8:0"));
      await symlink(nvmePart, join(dm, "slaves/nvme0n1p3"));
      const text = [
        "1 0 8:0 / / rw - ext4 /dev/sda rw",
        "2 1 259:3 / /data rw - ext4 /dev/root rw",
        "3 1 253:0 / /scratch rw - xfs /dev/mapper/vg-scratch rw",
        "4 1 0:40 / /tmpfs rw - tmpfs tmpfs rw",
        "5 1 0:41 / /btrfs rw - btrfs /dev/nvme2n1 rw",
      ].join("\n");
      const at = (p: string) => backingDevice(p, { mountInfoText: text, sysRoot: sys });
      assert.equal((await at("/data/x")).isNvme, true);
      assert.equal((await at("/data/x")).majorMinor, "259:3");
      assert.equal((await at("/scratch/y")).isNvme, true);
      assert.equal((await at("/etc/z")).isNvme, false);
      assert.equal((await at("/etc/z")).source, "/dev/sda");
      assert.equal((await at("/tmpfs/a")).isNvme, false);
      // btrfs reports an anonymous 0:N device; the source names the disk.
      assert.equal((await at("/btrfs/a")).isNvme, true);
      // Missing sysfs is tolerated.
      const noSys = await backingDevice("/data/x", {
        mountInfoText: text,
        sysRoot: join(sys, "absent"),
      });
      assert.equal(noSys.isNvme, false);
      assert.equal(noSys.source, "/dev/root");
    } finally {
      await rm(sys, { recursive: true, force: true });
    }
  });

  await t.step("backingDevice on this machine finds the mount of a real temp dir", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-mi-"));
    try {
      const dev = await backingDevice(join(dir, "not", "yet", "created"));
      assert.equal(dev.path.endsWith("/not/yet/created"), true);
      assert.notEqual(dev.source, "");
      assert.match(dev.majorMinor, /^\d+:\d+$/);
      // Unreadable mountinfo: unknown, never NVMe.
      const none = await backingDevice(dir, { mountInfoText: "" });
      assert.deepEqual([none.source, none.isNvme], ["unknown", false]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

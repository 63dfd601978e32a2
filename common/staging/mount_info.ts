/**
 * Which mount (and which block device) backs a path, from `/proc/self/mountinfo` and
 * `/sys/dev/block`. Staging uses it to tell an NVMe scratch disk from the root disk.
 *
 * @example
 * ```ts
 * const dev = await backingDevice("/mnt/nvme/sluice");
 * console.log(dev.source, dev.fsType, dev.majorMinor, dev.isNvme); // "/dev/nvme1n1" "xfs" "259:0" true
 * ```
 * @module
 */
import { readdir, readFile, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";

/** One line of `/proc/self/mountinfo` (see proc(5)), with escapes decoded. */
export interface MountEntry {
  mountId: number;
  parentId: number;
  major: number;
  minor: number;
  /** The directory of the filesystem that forms the root of this mount (bind mounts). */
  root: string;
  mountPoint: string;
  mountOptions: string;
  /** Tagged fields between the mount options and the ` - ` separator (`shared:1`, `master:2`). */
  optionalFields: string[];
  fsType: string;
  /** Filesystem-specific source: `/dev/nvme0n1p1`, `tmpfs`, `none`, or "" when the kernel left it empty. */
  source: string;
  superOptions: string;
}

/** What backs a path: the mount it lives on and whether that mount sits on an NVMe device. */
export interface BackingDevice {
  /** The resolved absolute path that was looked up. */
  path: string;
  mountPoint: string;
  /** The mount source (the device for block filesystems), "unknown" when mountinfo is unreadable. */
  source: string;
  fsType: string;
  /** `major:minor` of the mounted filesystem. */
  majorMinor: string;
  isNvme: boolean;
}

/**
 * Decodes the octal escapes the kernel writes for space, tab, newline and backslash
 * (`\040`, `\011`, `\012`, `\134`). Other text is left as is.
 *
 * @example
 * ```ts
 * unescapeMountField("/mnt/my\\040disk"); // "/mnt/my disk"
 * ```
 */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Parses the text of `/proc/<pid>/mountinfo`. Lines that do not have the documented shape
 * (too few fields, no ` - ` separator, non-numeric ids) are skipped: one odd line must not stop
 * a worker from starting.
 *
 * @example
 * ```ts
 * const [m] = parseMountInfo("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n");
 * m.mountPoint; // "/"
 * m.source;     // "/dev/vda"
 * ```
 */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const rawLine of text.split("\n")) {
    const line = rawLine.replace(/\r$/, "");
    if (line.trim() === "") continue;
    const entry = parseLine(line);
    if (entry) entries.push(entry);
  }
  return entries;
}

function parseLine(line: string): MountEntry | null {
  // Split on single spaces: the kernel escapes spaces inside fields, and an empty source
  // field (two spaces in a row) must stay an empty field rather than shift the others.
  const fields = line.split(" ");
  if (fields.length < 10) return null;
  const sep = fields.indexOf("-", 6);
  if (sep < 0 || fields.length < sep + 3) return null;
  const [idText, parentText, devText, root, mountPoint, mountOptions] = fields;
  const dev = /^(\d+):(\d+)$/.exec(devText);
  if (!/^\d+$/.test(idText) || !/^\d+$/.test(parentText) || !dev) return null;
  return {
    mountId: Number(idText),
    parentId: Number(parentText),
    major: Number(dev[1]),
    minor: Number(dev[2]),
    root: unescapeMountField(root),
    mountPoint: unescapeMountField(mountPoint),
    mountOptions,
    optionalFields: fields.slice(6, sep).filter((f) => f !== ""),
    fsType: unescapeMountField(fields[sep + 1]),
    source: unescapeMountField(fields[sep + 2]),
    superOptions: fields.slice(sep + 3).join(" "),
  };
}

/**
 * The mount that contains `absPath`: the longest mount point that is a path prefix of it.
 * When several mounts share that mount point (stacked mounts), the last one listed is on top
 * and wins. `absPath` should already be resolved (no symlinks, no `..`).
 *
 * @example
 * ```ts
 * findMountFor(parseMountInfo(text), "/mnt/nvme/sluice/ingest")?.mountPoint; // "/mnt/nvme"
 * ```
 */
export function findMountFor(entries: MountEntry[], absPath: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const e of entries) {
    const mp = e.mountPoint;
    const contains = mp === "/" || absPath === mp || absPath.startsWith(mp + "/");
    if (!contains) continue;
    if (!best || mp.length >= best.mountPoint.length) best = e;
  }
  return best;
}

/** True for a device node name such as `/dev/nvme0n1p2`. */
export function isNvmeDevicePath(source: string): boolean {
  return /^\/dev\/nvme\d/.test(source);
}

export interface BackingDeviceOptions {
  /** Mountinfo text to use instead of reading `/proc/self/mountinfo`. */
  mountInfoText?: string;
  /** Where sysfs lives (default `/sys`); tests point it at a fake tree. */
  sysRoot?: string;
}

/**
 * Finds the mount and device backing `path`. The path is resolved through symlinks; when it
 * does not exist yet, its nearest existing ancestor is resolved instead. Missing
 * `/proc/self/mountinfo` or `/sys` are tolerated (the answer is then "unknown", not NVMe).
 *
 * @example
 * ```ts
 * const dev = await backingDevice("/tmp");
 * if (!dev.isNvme) console.warn(`staging on ${dev.source} (${dev.fsType})`);
 * ```
 */
export async function backingDevice(
  path: string,
  opts: BackingDeviceOptions = {},
): Promise<BackingDevice> {
  const resolved = await realpathNearest(resolve(path));
  let text = opts.mountInfoText;
  if (text === undefined) {
    try {
      text = await readFile("/proc/self/mountinfo", "utf8");
    } catch {
      text = "";
    }
  }
  const mount = findMountFor(parseMountInfo(text), resolved);
  if (!mount) {
    return {
      path: resolved,
      mountPoint: "/",
      source: "unknown",
      fsType: "unknown",
      majorMinor: "0:0",
      isNvme: false,
    };
  }
  const isNvme = await mountIsNvme(mount, opts.sysRoot ?? "/sys");
  return {
    path: resolved,
    mountPoint: mount.mountPoint,
    source: mount.source,
    fsType: mount.fsType,
    majorMinor: `${mount.major}:${mount.minor}`,
    isNvme,
  };
}

async function mountIsNvme(mount: MountEntry, sysRoot: string): Promise<boolean> {
  if (isNvmeDevicePath(mount.source)) return true;
  // `/dev/mapper/x` and `/dev/disk/by-uuid/y` are links to the real node.
  if (mount.source.startsWith("/dev/")) {
    try {
      if (isNvmeDevicePath(await realpath(mount.source))) return true;
    } catch {
      // The node may live only in the host's /dev (containers); sysfs is the next witness.
    }
  }
  try {
    const dev = await realpath(join(sysRoot, "dev", "block", `${mount.major}:${mount.minor}`));
    return await sysDeviceIsNvme(dev, 0);
  } catch {
    return false;
  }
}

// A sysfs block device is NVMe when its device path runs through an nvme controller or
// subsystem, or (device-mapper, md) when one of the devices it is built on is.
async function sysDeviceIsNvme(devPath: string, depth: number): Promise<boolean> {
  if (devPath.split("/").some((seg) => /^nvme/.test(seg))) return true;
  if (depth >= 4) return false;
  let slaves: string[];
  try {
    slaves = await readdir(join(devPath, "slaves"));
  } catch {
    return false;
  }
  for (const name of slaves) {
    try {
      if (await sysDeviceIsNvme(await realpath(join(devPath, "slaves", name)), depth + 1)) {
        return true;
      }
    } catch {
      // A dangling slave link says nothing either way.
    }
  }
  return false;
}

async function realpathNearest(absPath: string): Promise<string> {
  if (!isAbsolute(absPath)) absPath = resolve(absPath);
  const missing: string[] = [];
  let cur = absPath;
  while (true) {
    try {
      const real = await realpath(cur);
      return missing.length ? join(real, ...missing.reverse()) : real;
    } catch {
      const parent = dirname(cur);
      if (parent === cur) return absPath;
      missing.push(basename(cur));
      cur = parent;
    }
  }
}

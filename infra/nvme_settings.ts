/**
 * NVMe staging settings, typed and explicit in one place: which disks (a list, or a model-string
 * discovery rule), RAID level, filesystem, mount point and options, and who owns the staging
 * directory. `nvmeArgs` turns them into `infra/bootstrap/nvme.sh` arguments; every variant's user
 * data, MachineConfig and host bootstrap is rendered from them.
 *
 * @example
 * ```ts
 * nvmeArgs(NvmeSettingsSchema.parse({ raid: "none" }));
 * // ["--model", "Amazon EC2 NVMe Instance Storage", "--raid", "none", "--fs", "xfs", ...]
 * ```
 * @module
 */
import { z } from "zod";

const NAME = /^[a-z_][a-z0-9_-]{0,31}$|^[0-9]+$/;

/** The NVMe bootstrap's settings. */
export const NvmeSettingsSchema = z.strictObject({
  /** Explicit device paths; unset = discovery by `model`. */
  devices: z.array(z.string().regex(/^\/dev\/[A-Za-z0-9/_-]+$/, { error: "expected /dev/..." }))
    .min(1).optional(),
  /** Extended regex on lsblk's MODEL (AWS instance store by default; EBS never matches it). */
  model: z.string().min(1).regex(/^[^'\n]+$/, { error: "expected a one-line regex without '" })
    .default("Amazon EC2 NVMe Instance Storage"),
  raid: z.enum(["0", "none"]).default("0"),
  filesystem: z.enum(["xfs", "ext4"]).default("xfs"),
  mountPoint: z.string().regex(/^\/[A-Za-z0-9/_.-]*$/).default("/mnt/nvme"),
  mountOptions: z.array(z.string().regex(/^[a-z0-9_=-]+$/)).min(1).default(["noatime"]),
  mountMethod: z.enum(["auto", "systemd", "fstab"]).default("systemd"),
  /** Directory under the mount point that the stages stage in. */
  stagingDir: z.string().regex(/^[A-Za-z0-9._-]+$/).default("sluice"),
  owner: z.string().regex(NAME, { error: "expected a user name or a number" }).default("sluice"),
  /** Group (name or number); unset = the owner's name. */
  group: z.string().regex(NAME, { error: "expected a group name or a number" }).optional(),
  mode: z.string().regex(/^[0-7]{3,4}$/).default("0750"),
});

/** Parsed NVMe settings. */
export type NvmeSettings = z.infer<typeof NvmeSettingsSchema>;

/** Where the stages stage: `<mountPoint>/<stagingDir>`. */
export function stagingPath(s: NvmeSettings): string {
  return `${s.mountPoint.replace(/\/$/, "")}/${s.stagingDir}`;
}

/**
 * nvme.sh arguments for `s`.
 *
 * @example
 * ```ts
 * nvmeArgs(NvmeSettingsSchema.parse({ devices: ["/dev/nvme1n1"] }))[0]; // "--devices"
 * ```
 */
export function nvmeArgs(s: NvmeSettings): string[] {
  return [
    ...(s.devices ? ["--devices", s.devices.join(" ")] : ["--model", s.model]),
    "--raid",
    s.raid,
    "--fs",
    s.filesystem,
    "--mount",
    s.mountPoint,
    "--options",
    s.mountOptions.join(","),
    "--mount-method",
    s.mountMethod,
    "--staging-dir",
    s.stagingDir,
    "--owner",
    s.owner,
    ...(s.group ? ["--group", s.group] : []),
    "--mode",
    s.mode,
  ];
}

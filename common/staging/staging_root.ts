/**
 * The staging root on local (ideally NVMe) disk where workers put the bytes of the items they
 * hold: `<root>/<stage>/<workerId>/<leaseId>/`. {@link openStaging} picks the root (or a fallback,
 * loudly), checks the backing device, and hands out leases.
 *
 * @example
 * ```ts
 * const staging = await openStaging({ stage: "ingest", workerId: "host-1-4242", log });
 * await staging.sweep();
 * await using lease = await staging.lease(claim.itemId);
 * const { path } = await lease.publish(key, bytes);
 * ```
 * @module
 */
import type { Dirent } from "node:fs";
import { mkdir, readdir, readFile, rm, rmdir, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import type { Logger } from "../log/mod.ts";
import { availableBytes, errorCode, isNotFound, type StatFs, treeBytes } from "./_fs.ts";
import { StagingNotNvmeError, StagingOptionsError, StagingUnavailableError } from "./errors.ts";
import { backingDevice, type BackingDeviceOptions } from "./mount_info.ts";
import { currentOwner, type LeaseOwner, ownerIsGone } from "./_owner.ts";
import {
  LEASE_RECORD,
  type LeaseContext,
  type LeaseRecord,
  StagingLease,
} from "./staging_lease.ts";

/** Gauges the staging root keeps current; the metrics module provides them. */
export interface StagingMetrics {
  setStagedBytes?(bytes: number): void;
  setFreeBytes?(bytes: number): void;
}

/** The default staging root: a directory on the NVMe scratch mount. */
export const DEFAULT_STAGING_ROOT = "/mnt/nvme/sluice";

const segment = z.string().regex(
  /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/,
  "expected letters, digits, '.', '_' or '-' (one path segment, not starting with '.' or '-')",
);

const OptionsSchema = z.object({
  root: z.string().min(1).default(DEFAULT_STAGING_ROOT),
  fallbackRoot: z.string().min(1).default(join(tmpdir(), "sluice-staging")),
  requireNvme: z.boolean().default(false),
  minFreeMb: z.number().nonnegative().default(512),
  leaseTimeoutMs: z.number().int().positive().default(10 * 60 * 1000),
  stage: segment,
  workerId: segment,
});

export interface StagingOptions {
  /** Preferred root (default `/mnt/nvme/sluice`). Used when it exists or its parent does. */
  root?: string;
  /** Used, with a warning, when `root` is unavailable (default `$TMPDIR/sluice-staging`). */
  fallbackRoot?: string;
  /** Refuse to start unless `root` is usable and NVMe-backed (no fallback). */
  requireNvme?: boolean;
  /** Free space (MiB) that publishing must leave on the filesystem (default 512). */
  minFreeMb?: number;
  /** Reads free space (default `statfs(2)`): tests inject a small or full disk without root. */
  statfs?: StatFs;
  /** Lease directories of this worker older than this are removed by `sweep()` (default 10 min). */
  leaseTimeoutMs?: number;
  stage: string;
  workerId: string;
  log: Logger;
  metrics?: StagingMetrics;
  /** Where to read mount and sysfs information (tests). */
  device?: BackingDeviceOptions;
  /** Where to read process information for owner checks (tests; default `/proc`). */
  procRoot?: string;
}

/** What `sweep()` did. */
export interface SweepResult {
  /** Lease directories removed: this worker's stale ones, and those of workers that are gone. */
  removed: string[];
  /** This worker's lease directories left because they are younger than the timeout or held. */
  kept: number;
}

/** A usable staging root for one (stage, worker). */
export interface Staging {
  /** The root in use (absolute): the preferred one, or the fallback. */
  readonly root: string;
  /** `<root>/<stage>/<workerId>`. */
  readonly workerDir: string;
  /** The mount source backing the root (e.g. `/dev/nvme1n1`), "unknown" if undiscoverable. */
  readonly device: string;
  readonly fsType: string;
  readonly isNvme: boolean;
  /** True when the preferred root was unavailable and the fallback is in use. */
  readonly fallback: boolean;
  readonly minFreeBytes: number;
  /** Creates a lease directory for one claimed item. */
  lease(itemId: string): Promise<StagingLease>;
  /**
   * Run at start-up. Removes this worker's lease directories older than `leaseTimeoutMs`, and
   * the lease directories (of any age) of other workers of this stage whose process is certainly
   * gone: same host, and another boot, or no process left with the recorded pid and start time.
   * The default worker id (`<host>-<pid>`) changes on restart, so this is how a restarted worker
   * reclaims what its crashed predecessor staged. Leases of live or unknown owners stay.
   */
  sweep(): Promise<SweepResult>;
  /** Bytes available on the root's filesystem (also reported to `metrics.setFreeBytes`). */
  freeBytes(): Promise<number>;
  /** Bytes currently staged by this worker (also reported to `metrics.setStagedBytes`). */
  stagedBytes(): Promise<number>;
}

/**
 * Opens the staging root. Uses `root` when it exists or can be created inside an existing
 * parent (a missing `/mnt/nvme` means the scratch disk is not mounted: creating it would put
 * staging on the root disk). Otherwise uses `fallbackRoot` with a warning naming both paths,
 * unless `requireNvme` is set: then a missing root fails with `staging_unavailable`, and a root
 * on a non-NVMe device fails with `staging_not_nvme`.
 *
 * @example
 * ```ts
 * const staging = await openStaging({
 *   root: "/mnt/nvme/sluice", requireNvme: true, minFreeMb: 2048,
 *   stage: "normalize", workerId: "pod-7", log,
 * });
 * ```
 */
export async function openStaging(options: StagingOptions): Promise<Staging> {
  const { log, metrics, device: deviceOpts, procRoot, statfs, ...rest } = options;
  const parsed = OptionsSchema.safeParse(rest);
  if (!parsed.success) {
    throw new StagingOptionsError(
      parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; "),
    );
  }
  const opts = parsed.data;
  const preferred = resolve(opts.root);
  let root = preferred;
  let fallback = false;

  const problem = await prepareRoot(preferred, opts.stage);
  if (problem !== null) {
    if (opts.requireNvme) {
      throw new StagingUnavailableError(
        preferred,
        problem,
        "requireNvme is set, so no fallback root is used",
      );
    }
    root = resolve(opts.fallbackRoot);
    fallback = true;
    log.warn(
      `staging root ${preferred} is unavailable (${problem}); using fallback ${root}, ` +
        `which may be slower and smaller`,
      { root: preferred, fallbackRoot: root },
    );
    try {
      await mkdir(join(root, opts.stage), { recursive: true });
    } catch (err) {
      throw new StagingUnavailableError(
        preferred,
        problem,
        `and the fallback ${root} failed too: ${describe(err)}`,
        { cause: err },
      );
    }
  }

  const dev = await backingDevice(root, deviceOpts);
  if (opts.requireNvme && !dev.isNvme) {
    throw new StagingNotNvmeError(root, dev.source, dev.fsType, dev.mountPoint);
  }
  log.info("staging ready", {
    root,
    device: dev.source,
    fsType: dev.fsType,
    isNvme: dev.isNvme,
    fallback,
  });
  const owner = await currentOwner({ procRoot });
  return new StagingRoot(
    root,
    dev.source,
    dev.fsType,
    dev.isNvme,
    fallback,
    opts,
    log,
    metrics,
    owner,
    procRoot,
    statfs,
  );
}

// Returns null when `root` is usable (creating it and its stage directory), else why not.
async function prepareRoot(root: string, stage: string): Promise<string | null> {
  try {
    const s = await stat(root);
    if (!s.isDirectory()) return "a non-directory at that path";
  } catch (err) {
    if (!isNotFound(err)) return `an unreadable path (${describe(err)})`;
    const parent = dirname(root);
    try {
      if (!(await stat(parent)).isDirectory()) return `parent ${parent} is not a directory`;
    } catch {
      return `neither it nor its parent ${parent} exists`;
    }
    try {
      await mkdir(root);
    } catch (mkErr) {
      return `it cannot be created (${describe(mkErr)})`;
    }
  }
  try {
    await mkdir(join(root, stage), { recursive: true });
  } catch (err) {
    return `it is not writable (${describe(err)})`;
  }
  return null;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class StagingRoot implements Staging {
  readonly workerDir: string;
  readonly minFreeBytes: number;
  #active = new Set<StagingLease>();
  #ctx: LeaseContext;

  constructor(
    readonly root: string,
    readonly device: string,
    readonly fsType: string,
    readonly isNvme: boolean,
    readonly fallback: boolean,
    private readonly opts: z.infer<typeof OptionsSchema>,
    private readonly log: Logger,
    private readonly metrics: StagingMetrics | undefined,
    private readonly owner: LeaseOwner,
    private readonly procRoot: string | undefined,
    private readonly statfs?: StatFs,
  ) {
    this.workerDir = join(root, opts.stage, opts.workerId);
    this.minFreeBytes = Math.round(opts.minFreeMb * 1024 * 1024);
    this.#ctx = {
      root,
      stage: opts.stage,
      workerId: opts.workerId,
      workerDir: this.workerDir,
      minFreeBytes: this.minFreeBytes,
      statfs,
      owner,
      changed: () => this.#refreshGauges(),
      released: (lease) => this.#active.delete(lease),
    };
  }

  async lease(itemId: string): Promise<StagingLease> {
    const lease = await StagingLease.create(this.#ctx, itemId);
    this.#active.add(lease);
    return lease;
  }

  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { removed: [], kept: 0 };
    let entries: Dirent[] = [];
    try {
      entries = await readdir(this.workerDir, { withFileTypes: true });
    } catch (err) {
      // Nothing of ours yet; other workers' leftovers may still be there.
      if (!isNotFound(err)) throw err;
    }
    const held = new Set([...this.#active].map((l) => l.dir));
    const now = Date.now();
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const dir = join(this.workerDir, e.name);
      const started = await leaseStart(dir);
      const young = started === null || now - started <= this.opts.leaseTimeoutMs;
      // A stable worker id survives restarts: what its crashed predecessor left is not young.
      // A directory without a whole record is a create() that never finished (the record is
      // renamed into place right after mkdir); made before this process began, its creator died.
      const unfinished = (await leaseRecord(dir)) === null &&
        started !== null && started < performance.timeOrigin;
      if (held.has(dir) || (young && !unfinished && !(await this.#ownerGone(dir)))) {
        result.kept++;
        continue;
      }
      await rm(dir, { recursive: true, force: true });
      result.removed.push(dir);
    }
    const orphans = await this.#sweepGoneWorkers();
    result.removed.push(...orphans);
    if (result.removed.length > 0) {
      this.log.info("staging sweep removed stale leases", {
        removed: result.removed.length,
        kept: result.kept,
        workerDir: this.workerDir,
      });
    }
    try {
      // rmdir, not rm -r: a lease created since the listing must survive.
      if ((await readdir(this.workerDir)).length === 0) await rmdir(this.workerDir);
    } catch (err) {
      // A lease created meanwhile, or a concurrent sweep, is fine.
      if (!isNotFound(err) && !isNotEmpty(err)) throw err;
    }
    await this.#refreshGauges();
    return result;
  }

  async #ownerGone(leaseDir: string): Promise<boolean> {
    const rec = await leaseRecord(leaseDir);
    return rec !== null && await ownerIsGone(rec, this.owner, { procRoot: this.procRoot });
  }

  // Lease directories of other workers of this stage whose owning process is gone.
  async #sweepGoneWorkers(): Promise<string[]> {
    const stageDir = join(this.root, this.opts.stage);
    const removed: string[] = [];
    let workers;
    try {
      workers = await readdir(stageDir, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err)) return removed;
      throw err;
    }
    for (const w of workers) {
      const dir = join(stageDir, w.name);
      if (!w.isDirectory() || dir === this.workerDir) continue;
      let leases;
      try {
        leases = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      let removedHere = 0;
      for (const l of leases) {
        if (!l.isDirectory()) continue;
        const leaseDir = join(dir, l.name);
        if (!(await this.#ownerGone(leaseDir))) continue;
        await rm(leaseDir, { recursive: true, force: true });
        removed.push(leaseDir);
        removedHere++;
      }
      // Only a gone worker's directory: a live one may be about to create a lease in its own.
      if (removedHere === 0) continue;
      try {
        if ((await readdir(dir)).length === 0) await rmdir(dir);
      } catch (err) {
        if (!isNotFound(err) && !isNotEmpty(err)) throw err;
      }
    }
    return removed;
  }

  async freeBytes(): Promise<number> {
    const free = await availableBytes(this.root, this.statfs);
    this.metrics?.setFreeBytes?.(free);
    return free;
  }

  async stagedBytes(): Promise<number> {
    const staged = await treeBytes(this.workerDir);
    this.metrics?.setStagedBytes?.(staged);
    return staged;
  }

  async #refreshGauges(): Promise<void> {
    if (!this.metrics) return;
    try {
      await this.stagedBytes();
      await this.freeBytes();
    } catch (err) {
      this.log.warn("staging gauges not refreshed", { error: describe(err) });
    }
  }
}

function isNotEmpty(err: unknown): boolean {
  const code = errorCode(err);
  return code === "ENOTEMPTY" || code === "EEXIST";
}

// A lease directory's record, or null when it is missing, torn or not an object.
async function leaseRecord(dir: string): Promise<Partial<LeaseRecord> | null> {
  try {
    const rec: unknown = JSON.parse(await readFile(join(dir, LEASE_RECORD), "utf8"));
    return typeof rec === "object" && rec !== null && !Array.isArray(rec)
      ? rec as Partial<LeaseRecord>
      : null;
  } catch {
    return null;
  }
}

// Start time of a lease directory: its record's `startedAt`, else the directory's mtime (a crash
// between mkdir and writing the record). Null when the directory vanished meanwhile.
async function leaseStart(dir: string): Promise<number | null> {
  const t = (await leaseRecord(dir))?.startedAt;
  if (typeof t === "number" && Number.isFinite(t)) return t;
  try {
    return (await stat(dir)).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * Errors raised by staging. Each has a stable `code` so a failed item's reason reads
 * `staging_full` (retryable: space frees up as other items finish) rather than "internal".
 *
 * @example
 * ```ts
 * try {
 *   await lease.publish("a.jpg", bytes);
 * } catch (err) {
 *   if (err instanceof StagingFullError) log.warn("staging full", { needed: err.neededBytes });
 * }
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";

/**
 * The staging root cannot be used: absent with `requireNvme` set (no fallback allowed), or
 * the fallback root failed too.
 */
export class StagingUnavailableError extends SluiceError {
  readonly root: string;
  constructor(root: string, problem: string, consequence: string, options?: ErrorOptions) {
    super(
      "staging_unavailable",
      `staging root ${root}: expected an existing or creatable directory, found ${problem} ` +
        `(${consequence})`,
      options,
    );
    this.name = "StagingUnavailableError";
    this.root = root;
  }
}

/** `requireNvme` is set but the staging root lives on another kind of device. */
export class StagingNotNvmeError extends SluiceError {
  readonly root: string;
  readonly device: string;
  constructor(root: string, device: string, fsType: string, mountPoint: string) {
    super(
      "staging_not_nvme",
      `staging root ${root}: expected an NVMe-backed filesystem (requireNvme), found ` +
        `${device} (${fsType}) mounted at ${mountPoint}`,
    );
    this.name = "StagingNotNvmeError";
    this.root = root;
    this.device = device;
  }
}

/** Writing would leave less than `minFreeMb` free, or the disk filled up mid-write. */
export class StagingFullError extends SluiceError {
  readonly root: string;
  readonly neededBytes: number;
  readonly freeBytes: number;
  readonly minFreeBytes: number;
  constructor(
    root: string,
    neededBytes: number,
    freeBytes: number,
    minFreeBytes: number,
    options?: ErrorOptions,
  ) {
    super(
      "staging_full",
      `staging root ${root}: expected at least ${minFreeBytes} bytes to stay free after writing ` +
        `${neededBytes} bytes, found ${freeBytes} bytes free`,
      options,
    );
    this.name = "StagingFullError";
    this.root = root;
    this.neededBytes = neededBytes;
    this.freeBytes = freeBytes;
    this.minFreeBytes = minFreeBytes;
  }
}

/** A lease was used after `release()`. */
export class LeaseReleasedError extends SluiceError {
  constructor(dir: string) {
    super(
      "staging_lease_released",
      `staging lease ${dir}: expected an active lease, found it released`,
    );
    this.name = "LeaseReleasedError";
  }
}

/** Options given to `openStaging` did not validate. */
export class StagingOptionsError extends SluiceError {
  constructor(problems: string) {
    super("invalid_options", `staging options: ${problems}`);
    this.name = "StagingOptionsError";
  }
}

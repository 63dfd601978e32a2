/**
 * One claimed item's private scratch directory, `<root>/<stage>/<workerId>/<leaseId>/`, with a
 * `.lease.json` naming the item, the start time and the owning process (so start-up sweeps can
 * age it, or see that its owner is gone). Everything the
 * item stages lives inside; {@link StagingLease.release} removes it on success and on failure.
 *
 * @example
 * ```ts
 * await using lease = await staging.lease(claim.itemId);
 * const file = await lease.publish(key, await store.get(key), { expectedBytes: size });
 * const meta = await sharp(file.path).metadata();
 * ```
 * @module
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { SluiceError } from "../errors/mod.ts";
import { availableBytes, fsyncDir, isNoSpace, type StatFs, writeAll } from "./_fs.ts";
import { LeaseReleasedError, StagingFullError } from "./errors.ts";
import type { LeaseOwner } from "./_owner.ts";
import { safeFileName } from "./safe_name.ts";

/** The content of `.lease.json`. */
export interface LeaseRecord extends Partial<Omit<LeaseOwner, "pid">> {
  leaseId: string;
  itemId: string;
  stage: string;
  workerId: string;
  pid: number;
  /** Epoch ms. */
  startedAt: number;
}

/** The file name of the lease record inside a lease directory. */
export const LEASE_RECORD = ".lease.json";

/** What a lease needs from the staging root that made it. */
export interface LeaseContext {
  root: string;
  stage: string;
  workerId: string;
  /** `<root>/<stage>/<workerId>`. */
  workerDir: string;
  minFreeBytes: number;
  /** Reads free space (default `statfs(2)`); tests inject a full disk. */
  statfs?: StatFs;
  /** The process writing leases, recorded so a successor can tell when it is gone. */
  owner?: LeaseOwner;
  /** Called after the staged bytes changed (publish, release), e.g. to refresh gauges. */
  changed(): Promise<void>;
  /** Called once when the lease is released. */
  released(lease: StagingLease): void;
}

/** A file published into a lease. */
export interface PublishedFile {
  /** Absolute path inside the lease directory. */
  path: string;
  bytes: number;
}

export interface PublishOptions {
  /** Size of a streamed body when known (e.g. Content-Length), checked against free space first. */
  expectedBytes?: number;
}

// While streaming, re-check free space this often: other items share the disk.
const RECHECK_EVERY = 8 * 1024 * 1024;

/** Cancels a stream body that was not read to the end (a no-op for bytes or a drained one). */
async function releaseBody(data: Uint8Array | ReadableStream<Uint8Array>, reason: unknown) {
  if (data instanceof ReadableStream && !data.locked) await data.cancel(reason).catch(() => {});
}

/** See the module docs. Create leases with `Staging.lease(itemId)`. */
export class StagingLease implements AsyncDisposable {
  readonly id: string;
  readonly itemId: string;
  /** Absolute lease directory. */
  readonly dir: string;
  readonly startedAt: number;
  #ctx: LeaseContext;
  #released = false;

  private constructor(ctx: LeaseContext, id: string, itemId: string, startedAt: number) {
    this.#ctx = ctx;
    this.id = id;
    this.itemId = itemId;
    this.startedAt = startedAt;
    this.dir = join(ctx.workerDir, id);
  }

  /**
   * Creates the lease directory and its record.
   *
   * @example
   * ```ts
   * const lease = await StagingLease.create(ctx, "img_0123");
   * ```
   */
  static async create(ctx: LeaseContext, itemId: string): Promise<StagingLease> {
    const startedAt = Date.now();
    const rand = crypto.getRandomValues(new Uint8Array(6));
    const id = startedAt.toString(36) + "-" +
      Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
    const lease = new StagingLease(ctx, id, itemId, startedAt);
    await mkdir(ctx.workerDir, { recursive: true });
    await mkdir(lease.dir);
    const record: LeaseRecord = {
      ...ctx.owner,
      leaseId: id,
      itemId,
      stage: ctx.stage,
      workerId: ctx.workerId,
      pid: Deno.pid,
      startedAt,
    };
    try {
      // Written aside and renamed, so the record is whole or absent: a kill -9 between open and
      // write left an empty record, which no sweep could read an owner from.
      const tmp = join(lease.dir, `${LEASE_RECORD}.tmp`);
      await writeFile(tmp, JSON.stringify(record) + "\n");
      await rename(tmp, join(lease.dir, LEASE_RECORD));
    } catch (err) {
      await rm(lease.dir, { recursive: true, force: true });
      if (isNoSpace(err)) throw await lease.#fullError(0, err);
      throw err;
    }
    return lease;
  }

  /** Whether {@link release} has run. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * The absolute path, inside the lease directory, where a file for `name` lives. Any string is
   * accepted (object keys, `../../etc/passwd`, absolute paths, NUL): it is mapped to one safe
   * file name by `safeFileName`, and the result is checked to resolve inside the lease.
   *
   * @example
   * ```ts
   * await store.download(key, lease.path(key));
   * ```
   */
  path(name: string): string {
    this.#assertActive();
    const p = resolve(this.dir, safeFileName(name));
    if (dirname(p) !== this.dir) {
      // Unreachable while safeFileName returns one plain segment; kept as the last line of defence.
      throw new SluiceError(
        "invalid_key",
        `staging name ${
          JSON.stringify(name.slice(0, 200))
        }: expected a path inside ${this.dir}, found ${p}`,
      );
    }
    return p;
  }

  /**
   * Writes `data` to {@link path}(name) atomically: a temp file in the lease directory, fsync,
   * rename, fsync of the directory. Before writing, refuses with `StagingFullError` when free
   * space minus the expected size would drop under `minFreeMb`; a disk that fills mid-write
   * (ENOSPC) also gives `StagingFullError`. On any failure the temp file is removed and nothing
   * is published.
   *
   * @example
   * ```ts
   * const { path, bytes } = await lease.publish("a.jpg", new Uint8Array([0xff, 0xd8]));
   * ```
   */
  async publish(
    name: string,
    data: Uint8Array | ReadableStream<Uint8Array>,
    opts: PublishOptions = {},
  ): Promise<PublishedFile> {
    const expected = data instanceof Uint8Array ? data.byteLength : (opts.expectedBytes ?? 0);
    const rand = crypto.getRandomValues(new Uint32Array(2)).join("");
    const tmp = join(this.dir, `.tmp-${rand}`);
    let file: Deno.FsFile | undefined;
    let written = 0;
    let finalPath: string;
    try {
      finalPath = this.path(name);
      await this.#guard(expected);
      file = await Deno.open(tmp, { write: true, createNew: true });
      if (data instanceof Uint8Array) {
        await writeAll(file, data);
        written = data.byteLength;
      } else {
        let nextCheck = RECHECK_EVERY;
        for await (const chunk of data) {
          await writeAll(file, chunk);
          written += chunk.byteLength;
          if (written >= nextCheck) {
            nextCheck = written + RECHECK_EVERY;
            await this.#guard(Math.max(0, expected - written));
          }
        }
      }
      await file.sync();
      file.close();
      file = undefined;
      await Deno.rename(tmp, finalPath);
      await fsyncDir(this.dir);
    } catch (err) {
      // A body not read to the end holds its connection (an S3 download): give it back.
      await releaseBody(data, err);
      try {
        file?.close();
      } catch {
        // Already closed by the failing call.
      }
      await rm(tmp, { force: true });
      if (isNoSpace(err)) throw await this.#fullError(Math.max(expected, written), err);
      throw err;
    }
    await this.#ctx.changed();
    return { path: finalPath, bytes: written };
  }

  /** Removes the lease directory and everything in it. Safe to call more than once. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    try {
      await rm(this.dir, { recursive: true, force: true });
    } finally {
      this.#ctx.released(this);
      await this.#ctx.changed();
    }
  }

  /** `await using lease = ...` releases on scope exit, whether the item succeeded or threw. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  #assertActive(): void {
    if (this.#released) throw new LeaseReleasedError(this.dir);
  }

  async #guard(neededBytes: number): Promise<void> {
    const free = await availableBytes(this.dir, this.#ctx.statfs);
    if (free - neededBytes < this.#ctx.minFreeBytes) {
      throw new StagingFullError(this.#ctx.root, neededBytes, free, this.#ctx.minFreeBytes);
    }
  }

  async #fullError(neededBytes: number, cause: unknown): Promise<StagingFullError> {
    let free = 0;
    try {
      free = await availableBytes(this.#ctx.root, this.#ctx.statfs);
    } catch {
      // Reporting free space is best effort here; the write already failed.
    }
    return new StagingFullError(this.#ctx.root, neededBytes, free, this.#ctx.minFreeBytes, {
      cause,
    });
  }
}

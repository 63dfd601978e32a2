// Which process owns a lease directory, and whether that process is provably gone. The default
// worker id (`<host>-<pid>`) changes on every restart, so a restarted worker can only clean up
// after its crashed predecessor by recognising that the predecessor's process no longer exists.
import { readFile, readlink } from "node:fs/promises";
import { hostname } from "node:os";

/** What a lease record says about the process that wrote it. */
export interface LeaseOwner {
  host: string;
  pid: number;
  /** `/proc/sys/kernel/random/boot_id`: a different boot means every old process is gone. */
  bootId?: string;
  /** `/proc/self/ns/pid`: pids are only comparable inside one pid namespace. */
  pidNs?: string;
  /** Start time of the process in clock ticks since boot (`/proc/<pid>/stat` field 22). */
  startTicks?: number;
}

/** Where Linux keeps process information; tests may point elsewhere. */
export interface ProcOptions {
  procRoot?: string;
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Field 22 (starttime) of a `/proc/<pid>/stat` line; the command name may hold spaces and ")". */
export function startTicksOf(statLine: string): number | undefined {
  const close = statLine.lastIndexOf(")");
  if (close < 0) return undefined;
  // Fields after the name start at field 3 (state); starttime is field 22.
  const v = Number(statLine.slice(close + 2).split(" ")[19]);
  return Number.isSafeInteger(v) ? v : undefined;
}

async function startTicks(procRoot: string, pid: number | "self"): Promise<number | undefined> {
  const line = await readTrimmed(`${procRoot}/${pid}/stat`);
  return line === undefined ? undefined : startTicksOf(line);
}

/** This process as a lease owner (what is unknowable off Linux is left out). */
export async function currentOwner(opts: ProcOptions = {}): Promise<LeaseOwner> {
  const proc = opts.procRoot ?? "/proc";
  let pidNs: string | undefined;
  try {
    pidNs = await readlink(`${proc}/self/ns/pid`);
  } catch {
    pidNs = undefined;
  }
  const bootId = await readTrimmed(`${proc}/sys/kernel/random/boot_id`);
  const ticks = await startTicks(proc, "self");
  return {
    host: hostname(),
    pid: Deno.pid,
    ...(bootId ? { bootId } : {}),
    ...(pidNs ? { pidNs } : {}),
    ...(ticks !== undefined ? { startTicks: ticks } : {}),
  };
}

/**
 * True only when the owner certainly no longer runs: same host, and either another boot, or the
 * same boot and pid namespace with no process of that pid and start time. Anything unknown
 * (another host, another namespace, an old record without these fields) counts as alive.
 */
export async function ownerIsGone(
  owner: Partial<LeaseOwner>,
  me: LeaseOwner,
  opts: ProcOptions = {},
): Promise<boolean> {
  if (owner.host !== me.host || typeof owner.pid !== "number") return false;
  if (owner.bootId === undefined || me.bootId === undefined) return false;
  if (owner.bootId !== me.bootId) return true;
  if (owner.pidNs === undefined || owner.pidNs !== me.pidNs) return false;
  if (owner.pid === me.pid && owner.startTicks === me.startTicks) return false;
  const ticks = await startTicks(opts.procRoot ?? "/proc", owner.pid);
  if (ticks === undefined) return true;
  // The pid is in use; by the same process unless its start time says it was reused.
  return owner.startTicks !== undefined && ticks !== owner.startTicks;
}

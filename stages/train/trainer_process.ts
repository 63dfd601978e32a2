/**
 * Runs trainer processes (one per rank) and supervises them: stdout lines are parsed as events
 * (see trainer_events.ts), stderr lines are handed on as logs, and when one rank fails, or the
 * run is aborted or over its deadline, the others are stopped too (a torch.distributed job with a
 * dead rank would otherwise wait forever): SIGTERM, then SIGKILL after a grace period.
 *
 * @example
 * ```ts
 * const exits = await runTrainerProcesses([
 *   { rank: 0, command: ["/usr/bin/python3", "train.py"], args: ["--epochs", "1"], env: { RANK: "0" } },
 * ], { onEvent: (rank, ev) => console.log(rank, ev), signal });
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SluiceError } from "../../common/errors/mod.ts";
import { parseLine, type TrainerEvent } from "./trainer_events.ts";

/** The checkout's root (where `stages/train/trainer/train.py` is found by default). */
export const CHECKOUT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Resolves relative path arguments of a trainer command: against `cwd` when the file exists
 * there, else against the checkout (so the default command works from any directory).
 *
 * @example
 * ```ts
 * resolveTrainerCommand(["/usr/bin/python3", "stages/train/trainer/train.py"], "/tmp");
 * // ["/usr/bin/python3", "/…/checkout/stages/train/trainer/train.py"]
 * ```
 */
export function resolveTrainerCommand(command: readonly string[], cwd = Deno.cwd()): string[] {
  return command.map((arg, i) => {
    if (arg.startsWith("-") || isAbsolute(arg) || (i === 0 && !arg.includes("/"))) return arg;
    if (!arg.includes("/") && !/\.(py|sh)$/.test(arg)) return arg;
    const here = resolve(cwd, arg);
    if (existsSync(here)) return here;
    const there = resolve(CHECKOUT_ROOT, arg);
    return existsSync(there) ? there : arg;
  });
}

/** A free TCP port on the loopback interface (for MASTER_PORT of local runs). */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** One process to start. */
export interface TrainerProcessSpec {
  rank: number;
  /** Program and its leading arguments (see {@link resolveTrainerCommand}). */
  command: string[];
  /** Trainer flags appended to the command. */
  args: string[];
  /** Added to the inherited environment. */
  env: Record<string, string>;
  cwd?: string;
}

/** How a rank ended. */
export interface TrainerExit {
  rank: number;
  code: number;
  signal: Deno.Signal | null;
  /** The last stderr lines (for error messages). */
  stderrTail: string[];
  /** The trainer's own `error` event, if it sent one. */
  error?: { code: string; message: string };
  /** Stopped by the supervisor (another rank failed, abort, deadline). */
  stopped: boolean;
}

export interface RunTrainerOptions {
  onEvent?: (rank: number, event: TrainerEvent) => void;
  /** A stderr line of a rank (the trainer's human-readable log). */
  onLog?: (rank: number, line: string) => void;
  /** A stdout line that is not a valid event. */
  onInvalid?: (rank: number, problem: string) => void;
  signal?: AbortSignal;
  /** Absolute deadline (epoch ms) after which every rank is stopped. */
  deadline?: number;
  /** Time between SIGTERM and SIGKILL (default 10 s). */
  killGraceMs?: number;
  /** Lines of stderr kept per rank (default 40). */
  tailLines?: number;
}

/** Reads `stream` line by line; `stop()` cancels the read (for pipes a leftover process holds). */
function forEachLine(
  stream: ReadableStream<Uint8Array>,
  fn: (line: string) => void,
): { done: Promise<void>; stop: () => void } {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const done = (async () => {
    let buf = "";
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch {
        break; // Cancelled by stop(): what was read so far has been handed on.
      }
      if (chunk.done) break;
      buf += chunk.value;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        fn(buf.slice(0, nl).replace(/\r$/, ""));
        buf = buf.slice(nl + 1);
      }
    }
    if (buf.length > 0) fn(buf);
  })();
  return { done, stop: () => void reader.cancel().catch(() => {}) };
}

/** Sends `signal` to the child's whole process group (it was spawned detached, as its leader). */
function killGroup(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    Deno.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** How long pipes may stay open after a rank exited (a grandchild holding them) before we stop reading. */
const PIPE_DRAIN_MS = 5000;

/** One started rank and what is known of it so far. */
interface RunningRank {
  spec: TrainerProcessSpec;
  child: Deno.ChildProcess;
  tail: string[];
  error?: { code: string; message: string };
  done: boolean;
  stopped: boolean;
}

/** Spawns one rank with piped output, in its own process group. */
function spawnRank(program: string, lead: string[], spec: TrainerProcessSpec): Deno.ChildProcess {
  return new Deno.Command(program, {
    args: [...lead, ...spec.args],
    env: { PYTHONUNBUFFERED: "1", ...spec.env },
    cwd: spec.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    // Its own process group, so stopping a rank also stops whatever it started.
    detached: true,
  }).spawn();
}

/**
 * Reads one rank's events (stdout) and log lines (stderr) until it exits and its pipes close
 * (or {@link PIPE_DRAIN_MS} after); a failed exit stops the other ranks.
 */
async function waitRank(
  c: RunningRank,
  opts: RunTrainerOptions,
  tailLines: number,
  stopAll: () => void,
): Promise<TrainerExit> {
  const rank = c.spec.rank;
  const out = forEachLine(c.child.stdout, (line) => {
    const p = parseLine(line);
    if (p.kind === "event") {
      if (p.event.type === "error") c.error = { code: p.event.code, message: p.event.message };
      try {
        opts.onEvent?.(rank, p.event);
      } catch (err) {
        // A failing handler must not stop the reading: a full pipe would stall the trainer.
        try {
          opts.onInvalid?.(rank, `${p.event.type} event handler failed: ${err}`);
        } catch {
          // Nothing left to tell.
        }
      }
    } else if (p.kind === "invalid") {
      try {
        opts.onInvalid?.(rank, p.problem);
      } catch {
        // As for logs.
      }
    }
  });
  const err = forEachLine(c.child.stderr, (line) => {
    c.tail.push(line);
    if (c.tail.length > tailLines) c.tail.shift();
    try {
      opts.onLog?.(rank, line);
    } catch {
      // Logging must not stop the reading either.
    }
  });
  const status = await c.child.status;
  c.done = true;
  if (!status.success) stopAll();
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const drained = await Promise.race([
    Promise.all([out.done, err.done]).then(() => true),
    new Promise<boolean>((r) => drainTimer = setTimeout(() => r(false), PIPE_DRAIN_MS)),
  ]);
  clearTimeout(drainTimer);
  if (!drained) {
    killGroup(c.child, "SIGKILL");
    out.stop();
    err.stop();
    await Promise.all([out.done, err.done]);
  }
  return {
    rank,
    code: status.code,
    signal: status.signal,
    stderrTail: c.tail,
    ...(c.error ? { error: c.error } : {}),
    stopped: c.stopped,
  } satisfies TrainerExit;
}

/**
 * Starts every rank and waits for all of them. Resolves with each rank's exit (it does not
 * throw for a failed rank: see {@link assertTrainersSucceeded}).
 */
export async function runTrainerProcesses(
  specs: readonly TrainerProcessSpec[],
  opts: RunTrainerOptions = {},
): Promise<TrainerExit[]> {
  const grace = opts.killGraceMs ?? 10_000;
  const tailLines = opts.tailLines ?? 40;
  const children: RunningRank[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  let stopping = false;

  const stopAll = () => {
    if (stopping) return;
    stopping = true;
    for (const c of children) {
      if (c.done) continue;
      c.stopped = true;
      killGroup(c.child, "SIGTERM");
    }
    timers.push(setTimeout(() => {
      for (const c of children) {
        if (c.done) continue;
        killGroup(c.child, "SIGKILL");
      }
    }, grace));
  };

  for (const spec of specs) {
    const [program, ...lead] = spec.command;
    if (!program) {
      throw new SluiceError(
        "invalid_trainer_command",
        "trainer command: expected a program, found none",
      );
    }
    let child: Deno.ChildProcess;
    try {
      child = spawnRank(program, lead, spec);
    } catch (err) {
      stopAll();
      await Promise.allSettled(children.map((c) => c.child.status));
      throw new SluiceError(
        "trainer_not_started",
        `trainer rank ${spec.rank}: expected to start ${JSON.stringify(program)}, found: ${err}`,
        { cause: err },
      );
    }
    children.push({ spec, child, tail: [], done: false, stopped: false });
  }

  const onAbort = () => stopAll();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.signal?.aborted) stopAll();
  if (opts.deadline !== undefined) {
    timers.push(setTimeout(stopAll, Math.max(0, opts.deadline - Date.now())));
  }

  const waits = children.map((c) => waitRank(c, opts, tailLines, stopAll));
  try {
    return await Promise.all(waits);
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    for (const t of timers) clearTimeout(t);
  }
}

/**
 * Throws a SluiceError describing the first real failure (the rank that failed first, not the
 * ones stopped because of it): `trainer_invalid_input` for exit 2 (bad data), `trainer_aborted`
 * when every failure was a stop, `trainer_failed` otherwise.
 *
 * @example
 * ```ts
 * assertTrainersSucceeded(await runTrainerProcesses(specs, opts));
 * ```
 */
export function assertTrainersSucceeded(exits: readonly TrainerExit[]): void {
  const failed = exits.filter((e) => e.code !== 0);
  if (failed.length === 0) return;
  const first = failed.find((e) => !e.stopped) ?? failed[0];
  const tail = first.stderrTail.slice(-8).join(" | ");
  const how = first.signal ? `signal ${first.signal}` : `exit ${first.code}`;
  const detail = first.error ? `${first.error.code}: ${first.error.message}` : tail;
  if (failed.every((e) => e.stopped)) {
    throw new SluiceError(
      "trainer_aborted",
      `trainer stopped (${how}) before finishing: ${detail}`,
    );
  }
  if (first.code === 2) {
    throw new SluiceError(
      "trainer_invalid_input",
      `trainer rank ${first.rank}: expected usable inputs, found (${how}): ${detail}`,
    );
  }
  throw new SluiceError(
    "trainer_failed",
    `trainer rank ${first.rank}: expected exit 0, found ${how}: ${detail}`,
  );
}

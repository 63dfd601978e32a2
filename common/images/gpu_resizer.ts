/**
 * The GPU resizer: a persistent Python worker using torch on CUDA (`torchvision.io.decode_jpeg`
 * on the device, `interpolate(…, antialias=True)`, crop / letterbox pad), returning raw RGB that
 * sharp encodes. Geometry comes from the same `planVariant` as the CPU resizer, so variants and
 * their transforms are interchangeable. JPEGs are decoded on the GPU (EXIF orientation applied
 * there, once); other formats are decoded once by sharp and uploaded.
 *
 * {@link probeGpu} says whether this can run here and, if not, why; `selectResizer` uses it.
 *
 * @example
 * ```ts
 * const probe = await probeGpu();
 * if (probe.available) {
 *   const gpu = await GpuResizer.start();
 *   const variants = await gpu.render(bytes, DEFAULT_VARIANTS);
 *   await gpu.close();
 * }
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import type { VariantTransform } from "../manifest/mod.ts";
import {
  decodeForPlans,
  defaultSharpFactory,
  describeInput,
  encodeAs,
  orientedSize,
  type SharpFactory,
  type SharpInput,
} from "./_sharp_render.ts";
import { GPU_WORKER_SOURCE } from "./_gpu_worker_source.ts";
import {
  ImageDecodeError,
  type RenderedVariant,
  RenderError,
  type Resizer,
  ResizerUnavailableError,
} from "./resizer.ts";
import { parseVariantSpec, type VariantSpec } from "./variant_spec.ts";
import { contentOffset, contentSize, planVariant } from "./variant_transform.ts";

/** Result of {@link probeGpu}. */
export interface GpuProbe {
  available: boolean;
  /** Why not (or what was found), one line. */
  reason: string;
  /** GPU name(s) from `nvidia-smi -L`, when it ran. */
  gpus?: string[];
}

export interface GpuProbeOptions {
  /** nvidia-smi executable (default "nvidia-smi" on PATH). */
  nvidiaSmi?: string;
  /** Python with torch + torchvision (default: $SLUICE_GPU_PYTHON, /usr/bin/python3, python3). */
  python?: string;
  /** Limit for each probe step, ms (default 60 000: importing torch can be slow). */
  timeoutMs?: number;
}

/**
 * Checks that `nvidia-smi -L` lists a GPU and that the torch worker starts on CUDA.
 *
 * @example
 * ```ts
 * await probeGpu(); // { available: false, reason: "nvidia-smi not found" } on a CPU machine
 * ```
 */
export async function probeGpu(opts: GpuProbeOptions = {}): Promise<GpuProbe> {
  const listed = await listNvidiaGpus(opts.nvidiaSmi, opts.timeoutMs);
  if (!listed.available) return listed;
  const gpus = listed.gpus ?? [];
  try {
    const worker = await GpuResizer.start({ python: opts.python, startTimeoutMs: opts.timeoutMs });
    const name = worker.name;
    await worker.close();
    return { available: true, reason: `${gpus[0]}; torch worker ready (${name})`, gpus };
  } catch (err) {
    return { available: false, reason: `${gpus[0]} listed, but ${(err as Error).message}`, gpus };
  }
}

/**
 * The first detection step alone: does `nvidia-smi -L` run and list a GPU? (Cheap; it does not
 * start torch.)
 *
 * @example
 * ```ts
 * await listNvidiaGpus("/bin/false"); // { available: false, reason: "/bin/false -L failed: exit code 1" }
 * ```
 */
export async function listNvidiaGpus(
  nvidiaSmi = "nvidia-smi",
  timeoutMs = 15_000,
): Promise<GpuProbe> {
  const smi = nvidiaSmi;
  let out: Deno.CommandOutput;
  // A wedged driver can make nvidia-smi hang: detection must not hang the worker's start-up.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    out = await new Deno.Command(smi, {
      args: ["-L"],
      stdout: "piped",
      stderr: "piped",
      signal: abort.signal,
    })
      .output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { available: false, reason: `${smi} not found` };
    }
    return { available: false, reason: `${smi} -L could not run: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
  if (abort.signal.aborted) {
    return { available: false, reason: `${smi} -L did not answer within ${timeoutMs} ms` };
  }
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const why = oneLine(new TextDecoder().decode(out.stderr) || text) || `exit code ${out.code}`;
    return { available: false, reason: `${smi} -L failed: ${why}` };
  }
  const gpus = text.split("\n").map((l) => l.trim()).filter((l) => /^GPU \d+/.test(l));
  if (gpus.length === 0) return { available: false, reason: `${smi} -L listed no GPU`, gpus };
  return { available: true, reason: gpus[0], gpus };
}

export interface GpuResizerOptions {
  /** Python with torch + torchvision (default: $SLUICE_GPU_PYTHON, /usr/bin/python3, python3). */
  python?: string;
  /**
   * torch device (default "cuda"). "cpu" runs the same worker code on the CPU: it is how the
   * worker is tested on machines without a GPU, not a production setting.
   */
  device?: string;
  /** How long the worker may take to import torch and reach the device, ms (default 60 000). */
  startTimeoutMs?: number;
  /** Test seam, see `SharpFactory` (header reads, non-JPEG decodes, encodes). */
  sharpFactory?: SharpFactory;
}

interface WorkerVariant {
  content: [number, number];
  crop: [number, number, number, number] | null;
  pad: [number, number, number, number] | null;
  background: [number, number, number];
}

interface WorkerReply {
  header: {
    id?: number;
    ok?: boolean;
    code?: string;
    error?: string;
    outputs?: { width: number; height: number; length: number }[];
    ready?: boolean;
    device?: string;
    torch?: string;
    torchvision?: string;
  };
  payload: Uint8Array;
}

/**
 * Renders variants on a GPU through a persistent torch worker; see the module documentation.
 *
 * @example
 * ```ts
 * const gpu = await GpuResizer.start({ device: "cuda" });
 * try {
 *   const [v] = await gpu.render("/stage/a.jpg", [spec]);
 * } finally {
 *   await gpu.close();
 * }
 * ```
 */
export class GpuResizer implements Resizer {
  readonly name: string;
  /** Versions reported by the worker. */
  readonly versions: { torch: string; torchvision: string };
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, (r: WorkerReply | Error) => void>();
  readonly #factory: SharpFactory;
  readonly #done: Promise<void>;
  #nextId = 1;
  #writes: Promise<void> = Promise.resolve();
  #closed = false;
  #dead: Error | null = null;

  private constructor(
    child: Deno.ChildProcess,
    ready: WorkerReply["header"],
    frames: AsyncGenerator<WorkerReply>,
    stderrDone: Promise<void>,
    stderrRef: { text: string },
    factory: SharpFactory,
  ) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#factory = factory;
    this.name = `gpu:${ready.device}`;
    this.versions = { torch: String(ready.torch), torchvision: String(ready.torchvision) };
    const pump = (async () => {
      for await (const frame of frames) {
        const id = frame.header.id;
        const resolve = id === undefined ? undefined : this.#pending.get(id);
        if (resolve) {
          this.#pending.delete(id!);
          resolve(frame);
        }
      }
    })().catch((err) => err as Error).then((err) => {
      this.#dead = err instanceof Error
        ? err
        : new RenderError(`GPU worker exited: ${oneLine(stderrRef.text) || "no message"}`);
      for (const resolve of this.#pending.values()) resolve(this.#dead);
      this.#pending.clear();
    });
    this.#done = Promise.all([pump, stderrDone]).then(() => {});
  }

  /**
   * Starts the worker and waits until torch has reached the device. Throws
   * {@link ResizerUnavailableError} with the worker's reason when it cannot.
   */
  static async start(opts: GpuResizerOptions = {}): Promise<GpuResizer> {
    const python = opts.python ?? defaultPython();
    const device = opts.device ?? "cuda";
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(python, {
        args: ["-u", "-c", GPU_WORKER_SOURCE, device],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      throw new ResizerUnavailableError(
        `GPU worker: could not start ${python}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const stderrRef = { text: "" };
    const stderrDone = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) {
        stderrRef.text = (stderrRef.text + dec.decode(chunk)).slice(-4000);
      }
    })();
    const frames = readFrames(child.stdout);
    const timeoutMs = opts.startTimeoutMs ?? 60_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      frames.next(),
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs))),
    ]);
    clearTimeout(timer);
    const fail = async (why: string): Promise<never> => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.stdin.close().catch(() => {});
      await child.status;
      await frames.return(undefined).catch(() => {});
      await stderrDone.catch(() => {});
      throw new ResizerUnavailableError(`GPU worker (${python}, device ${device}): ${why}`);
    };
    if (first === "timeout") return await fail(`not ready after ${timeoutMs} ms`);
    if (first.done) {
      return await fail(`exited before it was ready: ${oneLine(stderrRef.text) || "no message"}`);
    }
    const ready = first.value.header;
    if (!ready.ready) return await fail(`not usable: ${ready.error ?? "unknown reason"}`);
    return new GpuResizer(
      child,
      ready,
      frames,
      stderrDone,
      stderrRef,
      opts.sharpFactory ?? defaultSharpFactory,
    );
  }

  async render(input: SharpInput, specs: readonly VariantSpec[]): Promise<RenderedVariant[]> {
    if (this.#closed) throw new RenderError(`GPU resizer: render() after close()`);
    const checked = specs.map((s) => parseVariantSpec(s));
    if (checked.length === 0) return [];
    const bytes = typeof input === "string" ? await Deno.readFile(input) : input;
    let transforms: VariantTransform[];
    let reply: WorkerReply | null = null;
    if (isJpeg(bytes)) {
      const src = await orientedSize(this.#factory(bytes, { failOn: "error" }), input);
      transforms = checked.map((s) => planVariant(src.width, src.height, s));
      reply = await this.#request(
        {
          kind: "jpeg",
          orientation: src.orientation,
          variants: transforms.map((t, i) => workerVariant(t, checked[i])),
        },
        bytes,
        input,
        true,
      );
    }
    if (!reply) {
      // Not a JPEG, or one the worker could not decode: sharp decodes it once, the GPU resizes.
      const d = await decodeForPlans(bytes, (w, h) => checked.map((s) => planVariant(w, h, s)), {
        factory: this.#factory,
      });
      transforms = d.transforms;
      reply = await this.#request(
        {
          kind: "raw",
          width: d.decoded.width,
          height: d.decoded.height,
          orientation: 1,
          variants: transforms.map((t, i) => workerVariant(t, checked[i])),
        },
        d.decoded.data,
        input,
        false,
      );
    }
    const outputs = reply!.header.outputs ?? [];
    let offset = 0;
    return await Promise.all(checked.map(async (spec, i) => {
      const t = transforms[i], o = outputs[i];
      if (
        !o || o.width !== t.width || o.height !== t.height || o.length !== t.width * t.height * 3
      ) {
        throw new RenderError(
          `GPU variant "${spec.name}" of ${
            describeInput(input)
          }: expected ${t.width}×${t.height} RGB, ` +
            `found ${o ? `${o.width}×${o.height} (${o.length} bytes)` : "no output"}`,
        );
      }
      const raw = reply!.payload.subarray(offset, offset + o.length);
      offset += o.length;
      const p = this.#factory(raw, { raw: { width: o.width, height: o.height, channels: 3 } });
      const encoded = await encodeAs(p, spec).toBuffer();
      return {
        spec,
        bytes: encoded,
        width: t.width,
        height: t.height,
        transform: t,
        format: spec.format,
        sha256: createHash("sha256").update(encoded).digest("hex"),
      };
    }));
  }

  /** Sends one request; null when `decodeMayFail` and the worker could not decode it. */
  async #request(
    header: Record<string, unknown>,
    payload: Uint8Array,
    input: SharpInput,
    decodeMayFail: boolean,
  ): Promise<WorkerReply | null> {
    if (this.#closed) throw new RenderError(`GPU resizer: render() after close()`);
    if (this.#dead) throw this.#dead;
    const id = this.#nextId++;
    const reply = new Promise<WorkerReply | Error>((resolve) => this.#pending.set(id, resolve));
    const h = new TextEncoder().encode(
      JSON.stringify({ ...header, id, payload: payload.byteLength }),
    );
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, h.byteLength, true);
    // Frames of concurrent renders must not interleave on the pipe.
    const write = this.#writes.then(async () => {
      await this.#writer.write(len);
      await this.#writer.write(h);
      await this.#writer.write(payload);
    });
    this.#writes = write.catch(() => {});
    await write;
    const r = await reply;
    if (r instanceof Error) throw r;
    if (r.header.ok) return r;
    if (r.header.code === "decode_failed") {
      if (decodeMayFail) return null;
      throw new ImageDecodeError(describeInput(input), `found: ${r.header.error}`);
    }
    throw new RenderError(`GPU worker, ${describeInput(input)}: ${r.header.error}`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 10_000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#done;
  }
}

function workerVariant(t: VariantTransform, spec: VariantSpec): WorkerVariant {
  const c = contentSize(t);
  const o = contentOffset(t);
  const crop = c.width > t.width || c.height > t.height;
  const pad = !crop && (c.width < t.width || c.height < t.height);
  return {
    content: [c.width, c.height],
    crop: crop ? [o.left, o.top, t.width, t.height] : null,
    pad: pad ? [t.padX, t.padY, t.width - c.width - t.padX, t.height - c.height - t.padY] : null,
    background: [1, 3, 5].map((i) => parseInt(spec.background.slice(i, i + 2), 16)) as [
      number,
      number,
      number,
    ],
  };
}

async function* readFrames(stream: ReadableStream<Uint8Array>): AsyncGenerator<WorkerReply> {
  // Chunks are only joined once a whole frame has arrived: replies carry megabytes of pixels.
  let buf = new Uint8Array(0);
  let chunks: Uint8Array[] = [];
  let pendingBytes = 0;
  const join = () => {
    if (chunks.length === 0) return;
    const next = new Uint8Array(buf.byteLength + pendingBytes);
    next.set(buf);
    let o = buf.byteLength;
    for (const c of chunks) {
      next.set(c, o);
      o += c.byteLength;
    }
    buf = next;
    chunks = [];
    pendingBytes = 0;
  };
  const reader = stream.getReader();
  try {
    while (true) {
      let need = 4;
      while (buf.byteLength >= 4) {
        const hlen = new DataView(buf.buffer, buf.byteOffset).getUint32(0, true);
        need = 4 + hlen;
        if (buf.byteLength < need) break;
        const header = JSON.parse(new TextDecoder().decode(buf.subarray(4, 4 + hlen)));
        need += Number(header.payload ?? 0);
        if (buf.byteLength < need) break;
        const payload = buf.slice(4 + hlen, need);
        buf = buf.slice(need);
        need = 4;
        yield { header, payload };
      }
      while (buf.byteLength + pendingBytes < need) {
        const { value, done } = await reader.read();
        if (done) return;
        chunks.push(value);
        pendingBytes += value.byteLength;
      }
      join();
    }
  } finally {
    reader.releaseLock();
    await stream.cancel().catch(() => {});
  }
}

function isJpeg(b: Uint8Array): boolean {
  return b.byteLength > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

function defaultPython(): string {
  const env = Deno.env.get("SLUICE_GPU_PYTHON");
  if (env) return env;
  return existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

function oneLine(s: string): string {
  const lines = s.trim().split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.slice(-2).join(" | ").slice(0, 300);
}

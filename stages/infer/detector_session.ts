/**
 * An onnxruntime-node session in its own worker thread. onnxruntime-node runs inference on the
 * thread that calls it, so a session on the main thread would stall downloads, decoding and
 * lease renewals for the length of every batch; in a worker, the next batch is prepared while
 * this one runs. The execution provider is CUDA when asked for (or, with `auto`, when the
 * onnxruntime package offers it) and falls back to the CPU when CUDA cannot start.
 *
 * @example
 * ```ts
 * const session = await DetectorSession.open("/models/det/3/model.onnx", { provider: "auto" });
 * const out = await session.run("images", batch, [n, 3, 320, 320]);
 * await session.close();
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ExecutionProviderChoice } from "./config.ts";
import type { GraphInfo } from "./model_card.ts";
import type { WireTensor, WorkerReply, WorkerRequest } from "./_detector_worker.ts";

export type { WireTensor };

/** Session settings. */
export interface SessionOptions {
  provider?: ExecutionProviderChoice;
  /** 0 = onnxruntime's default. */
  intraOpThreads?: number;
  interOpThreads?: number;
  log?: Logger;
}

/** What one run returns. */
export interface RunResult {
  outputs: Record<string, WireTensor>;
  /** Time spent in `session.run`, seconds. */
  seconds: number;
}

/** The model could not be loaded or run. */
export class InferenceError extends SluiceError {
  constructor(code: "model_load_failed" | "inference_failed", message: string) {
    super(code, message);
    this.name = "InferenceError";
  }
}

interface Pending {
  resolve(r: RunResult): void;
  reject(err: Error): void;
}

/** See the module docs. */
export class DetectorSession {
  readonly modelPath: string;
  /** The execution provider in use (`cpu`, `cuda`). */
  readonly provider: string;
  readonly graph: GraphInfo;
  /** Why CUDA is not in use, when it was asked for or could have been. */
  readonly fallbackReason: string | null;
  #worker: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Promise<void> | null = null;
  #dead: string | null = null;
  #onClosed: (() => void) | null = null;

  private constructor(
    modelPath: string,
    worker: Worker,
    opened: Extract<WorkerReply, { type: "opened" }>,
  ) {
    this.modelPath = modelPath;
    this.#worker = worker;
    this.provider = opened.provider;
    this.fallbackReason = opened.fallbackReason ?? null;
    this.graph = {
      inputNames: opened.inputNames,
      outputNames: opened.outputNames,
      inputShapes: opened.inputShapes,
      outputShapes: opened.outputShapes,
    };
    worker.onmessage = (e: MessageEvent<WorkerReply>) => this.#receive(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#dead = `inference worker crashed: ${e.message}`;
      this.#failAll(this.#dead);
      this.#onClosed?.();
    };
  }

  /**
   * Loads `modelPath` in a new worker. Throws `model_load_failed` naming the file.
   *
   * @example
   * ```ts
   * const s = await DetectorSession.open(path, { provider: "cpu", intraOpThreads: 2 });
   * s.graph.inputNames; // ["images"]
   * ```
   */
  static async open(modelPath: string, opts: SessionOptions = {}): Promise<DetectorSession> {
    const worker = new Worker(new URL("./_detector_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const opened = await new Promise<WorkerReply>((resolve) => {
      worker.onmessage = (e: MessageEvent<WorkerReply>) => resolve(e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        resolve({ type: "error", message: e.message });
      };
      const req: WorkerRequest = {
        type: "open",
        modelPath,
        provider: opts.provider ?? "auto",
        intraOpThreads: opts.intraOpThreads ?? 0,
        interOpThreads: opts.interOpThreads ?? 0,
      };
      worker.postMessage(req);
    });
    if (opened.type !== "opened") {
      worker.terminate();
      const why = opened.type === "error" ? opened.message : `unexpected reply ${opened.type}`;
      throw new InferenceError(
        "model_load_failed",
        `model ${modelPath}: expected an ONNX model onnxruntime can load, found: ${why}`,
      );
    }
    const session = new DetectorSession(modelPath, worker, opened);
    if (opened.fallbackReason) {
      // A CUDA attempt that failed deserves attention; no GPU on a CPU host does not.
      const failed = opened.fallbackReason.startsWith("cuda failed");
      (failed ? opts.log?.warn : opts.log?.info)?.call(
        opts.log,
        "onnxruntime: using the CPU execution provider",
        {
          requested: opts.provider ?? "auto",
          reason: opened.fallbackReason,
        },
      );
    }
    return session;
  }

  /** False once the worker has crashed or the session was closed. */
  get alive(): boolean {
    return this.#dead === null && this.#closed === null;
  }

  /**
   * Runs one batch. `data` (NCHW float32) is transferred to the worker: do not reuse it.
   *
   * @example
   * ```ts
   * const { outputs, seconds } = await session.run("images", data, [2, 3, 320, 320]);
   * ```
   */
  run(inputName: string, data: Float32Array<ArrayBuffer>, dims: number[]): Promise<RunResult> {
    if (this.#closed || this.#dead) {
      const why = this.#dead ?? "session is closed";
      return Promise.reject(
        new InferenceError("inference_failed", `model ${this.modelPath}: ${why}`),
      );
    }
    const id = this.#nextId++;
    return new Promise<RunResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const req: WorkerRequest = { type: "run", id, inputName, data, dims };
      this.#worker.postMessage(req, [data.buffer]);
    });
  }

  /** Releases the session and ends the worker; runs already sent finish first. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#onClosed?.(), 10_000);
      this.#onClosed = () => {
        clearTimeout(timer);
        this.#onClosed = null;
        this.#worker.terminate();
        this.#failAll("session closed");
        resolve();
      };
      this.#worker.postMessage({ type: "close" } satisfies WorkerRequest);
    });
    return this.#closed;
  }

  #receive(reply: WorkerReply): void {
    if (reply.type === "closed") {
      this.#onClosed?.();
      return;
    }
    if (reply.type === "opened") return;
    const id = reply.id;
    if (id === undefined) return;
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    if (reply.type === "result") p.resolve({ outputs: reply.outputs, seconds: reply.seconds });
    else {
      p.reject(
        new InferenceError(
          "inference_failed",
          `model ${this.modelPath}: run failed: ${reply.message}`,
        ),
      );
    }
  }

  #failAll(why: string): void {
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.reject(new InferenceError("inference_failed", `model ${this.modelPath}: ${why}`));
    }
  }
}

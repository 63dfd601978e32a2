/**
 * The worker that owns one onnxruntime session. onnxruntime-node runs `session.run` on the
 * calling thread, so running it here keeps the main thread free to download, decode and
 * letterbox the next batch (and to post-process the previous one) while this batch runs.
 * Tensors cross as transferred buffers, never copied. See `detector_session.ts` for the other
 * side.
 * @module
 */
/// <reference lib="deno.worker" />
import "../../common/runtime_assets/onnxruntime_preload.ts"; // first: the binding loads from the runtime cache
import * as ort from "onnxruntime-node";

/** Messages the main thread sends. */
export type WorkerRequest =
  | {
    type: "open";
    modelPath: string;
    provider: "auto" | "cpu" | "cuda";
    intraOpThreads: number;
    interOpThreads: number;
  }
  | { type: "run"; id: number; inputName: string; data: Float32Array; dims: number[] }
  | { type: "close" };

/** One output tensor. */
export interface WireTensor {
  data: Float32Array;
  dims: number[];
}

/** Messages the worker answers with. */
export type WorkerReply =
  | {
    type: "opened";
    provider: string;
    /** Why the preferred provider was not used, when it was not. */
    fallbackReason?: string;
    inputNames: string[];
    outputNames: string[];
    inputShapes: Record<string, (number | string)[]>;
    outputShapes: Record<string, (number | string)[]>;
  }
  | { type: "result"; id: number; outputs: Record<string, WireTensor>; seconds: number }
  | { type: "error"; id?: number; message: string }
  | { type: "closed" };

let session: ort.InferenceSession | null = null;

function post(reply: WorkerReply, transfer: Transferable[] = []): void {
  self.postMessage(reply, transfer);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function cudaListed(): boolean {
  try {
    return ort.listSupportedBackends().some((b) => b.name === "cuda");
  } catch {
    return false;
  }
}

// Without an NVIDIA driver there is nothing to try (and the attempt logs a loud native error).
function gpuPresent(): boolean {
  for (const p of ["/dev/nvidiactl", "/proc/driver/nvidia/version"]) {
    try {
      Deno.statSync(p);
      return true;
    } catch {
      // Not here.
    }
  }
  return false;
}

function shapes(meta: readonly ort.InferenceSession.ValueMetadata[]) {
  const out: Record<string, (number | string)[]> = {};
  for (const m of meta) if (m.isTensor) out[m.name] = [...m.shape];
  return out;
}

async function open(req: Extract<WorkerRequest, { type: "open" }>): Promise<void> {
  const base: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: "all" };
  if (req.intraOpThreads > 0) base.intraOpNumThreads = req.intraOpThreads;
  if (req.interOpThreads > 0) base.interOpNumThreads = req.interOpThreads;
  const cuda = cudaListed(), gpu = gpuPresent();
  // An explicit "cuda" is tried even where it cannot work, so the reason gets logged; either
  // way the CPU takes over when CUDA cannot start (a missing provider library, no device).
  const attempts: string[][] = req.provider === "cpu"
    ? [["cpu"]]
    : req.provider === "cuda" || (cuda && gpu)
    ? [["cuda", "cpu"], ["cpu"]]
    : [["cpu"]];
  let fallbackReason: string | undefined = req.provider !== "auto" || (cuda && gpu)
    ? undefined
    : !cuda
    ? "onnxruntime-node lists no CUDA backend"
    : "no NVIDIA GPU driver found";
  let lastError: unknown;
  for (const providers of attempts) {
    try {
      session = await ort.InferenceSession.create(req.modelPath, {
        ...base,
        executionProviders: providers,
      });
      post({
        type: "opened",
        provider: providers[0],
        ...(fallbackReason ? { fallbackReason } : {}),
        inputNames: [...session.inputNames],
        outputNames: [...session.outputNames],
        inputShapes: shapes(session.inputMetadata),
        outputShapes: shapes(session.outputMetadata),
      });
      return;
    } catch (err) {
      lastError = err;
      fallbackReason = `${providers[0]} failed: ${message(err)}`;
    }
  }
  post({ type: "error", message: message(lastError) });
}

async function run(req: Extract<WorkerRequest, { type: "run" }>): Promise<void> {
  if (!session) {
    post({ type: "error", id: req.id, message: "no session is open" });
    return;
  }
  const t0 = performance.now();
  try {
    const out = await session.run({
      [req.inputName]: new ort.Tensor("float32", req.data, req.dims),
    });
    const outputs: Record<string, WireTensor> = {};
    const transfer: Transferable[] = [];
    for (const [name, t] of Object.entries(out)) {
      if (!(t.data instanceof Float32Array)) {
        throw new Error(`output ${name}: expected float32, found ${t.type}`);
      }
      // A copy we own: onnxruntime may hand out views of memory it manages.
      const data = new Float32Array(t.data);
      outputs[name] = { data, dims: [...t.dims] };
      transfer.push(data.buffer);
      t.dispose();
    }
    post(
      { type: "result", id: req.id, outputs, seconds: (performance.now() - t0) / 1000 },
      transfer,
    );
  } catch (err) {
    post({ type: "error", id: req.id, message: message(err) });
  }
}

// Requests are handled strictly in order: one session, one run at a time.
let chain: Promise<void> = Promise.resolve();
self.onmessage = (e: MessageEvent<WorkerRequest>) => {
  const req = e.data;
  chain = chain.then(async () => {
    if (req.type === "open") await open(req);
    else if (req.type === "run") await run(req);
    else if (req.type === "close") {
      try {
        await session?.release();
      } finally {
        session = null;
        post({ type: "closed" });
      }
    }
  });
};

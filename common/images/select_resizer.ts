/**
 * Picks the resizer from configuration: `resizer: "cpu"` (sharp), `"gpu"` (torch worker on
 * CUDA; an error with the reason when it cannot run) or `"auto"` (GPU when `nvidia-smi -L`
 * lists one and the worker starts on it, otherwise sharp). The returned `reason` is meant for
 * the start-up log line.
 *
 * @example
 * ```ts
 * const { resizer, reason } = await selectResizer({ resizer: "auto" });
 * log.info("resizer", { name: resizer.name, reason });
 * // reason: "resizer=auto: nvidia-smi not found, using sharp CPU"
 * ```
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import { GpuResizer, listNvidiaGpus } from "./gpu_resizer.ts";
import { type Resizer, ResizerUnavailableError } from "./resizer.ts";
import { SharpResizer, SharpResizerOptionsSchema } from "./sharp_resizer.ts";

/** Which resizer to use. */
export const RESIZER_CHOICES = ["auto", "cpu", "gpu"] as const;

/** Resizer configuration (a part of the normalize stage's configuration). */
export const ResizerConfigSchema = z.strictObject({
  resizer: z.enum(RESIZER_CHOICES).default("auto"),
  /** Python with torch + torchvision for the GPU worker (default /usr/bin/python3). */
  python: z.string().min(1).optional(),
  /** nvidia-smi executable used for detection (default "nvidia-smi" on PATH). */
  nvidiaSmi: z.string().min(1).default("nvidia-smi"),
  /** CPU resizer options (threads per pipeline, libvips cache, shrink-on-load). */
  sharp: SharpResizerOptionsSchema.partial().optional(),
});

export type ResizerConfig = z.input<typeof ResizerConfigSchema>;

/** The chosen resizer and why. */
export interface ResizerSelection {
  resizer: Resizer;
  kind: "cpu" | "gpu";
  /** One line, e.g. "resizer=auto: nvidia-smi not found, using sharp CPU". */
  reason: string;
}

/**
 * Returns the configured resizer. Throws {@link ResizerUnavailableError} for `resizer: "gpu"`
 * when no usable GPU is found, naming what was missing.
 *
 * @example
 * ```ts
 * await selectResizer({ resizer: "gpu" });
 * // throws: resizer=gpu: expected a usable CUDA GPU with torch, found: nvidia-smi not found
 * ```
 */
export async function selectResizer(config: ResizerConfig = {}): Promise<ResizerSelection> {
  const parsed = ResizerConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new SluiceError(
      "invalid_options",
      `resizer config: ${
        parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")
      }`,
    );
  }
  const c = parsed.data;
  const cpu = () => new SharpResizer(c.sharp ?? {});
  if (c.resizer === "cpu") {
    return { resizer: cpu(), kind: "cpu", reason: "resizer=cpu: using sharp CPU" };
  }
  const listed = await listNvidiaGpus(c.nvidiaSmi);
  let why = listed.reason;
  if (listed.available) {
    try {
      const gpu = await GpuResizer.start({ python: c.python });
      return {
        resizer: gpu,
        kind: "gpu",
        reason: `resizer=${c.resizer}: ${listed.reason}, using ${gpu.name}`,
      };
    } catch (err) {
      why = `${listed.reason} listed, but ${(err as Error).message}`;
    }
  }
  if (c.resizer === "gpu") {
    throw new ResizerUnavailableError(
      `resizer=gpu: expected a usable CUDA GPU with torch, found: ${why}`,
    );
  }
  return { resizer: cpu(), kind: "cpu", reason: `resizer=auto: ${why}, using sharp CPU` };
}

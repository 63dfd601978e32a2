/**
 * The `Resizer` contract (`tests/support/images/resizer_contract.ts`) against every resizer:
 * sharp on the CPU, and the torch worker (on CUDA when a GPU is present, else on its CPU
 * device, which runs the same worker code). Without torch the torch run is skipped with the
 * reason, except under CI=true, where torch is installed and its absence is a failure.
 */
import { resizerContract } from "../../tests/support/images/resizer_contract.ts";
import { GpuResizer } from "./gpu_resizer.ts";
import { SharpResizer } from "./sharp_resizer.ts";

const PYTHON = "/usr/bin/python3";
const torch = await new Deno.Command(PYTHON, {
  args: ["-c", "import torch, torchvision; print(torch.cuda.is_available())"],
  stdout: "piped",
  stderr: "null",
}).output().catch(() => null);
const hasTorch = torch?.success === true;
const cuda = hasTorch && new TextDecoder().decode(torch.stdout).trim() === "True";
const ci = Deno.env.get("CI") === "true";
if (!hasTorch && !ci) {
  console.warn(`resizer contract: skipping the torch resizer: ${PYTHON} cannot import torch`);
}

Deno.test("Resizer contract: sharp (CPU)", (t) => resizerContract(t, () => new SharpResizer()));

Deno.test({
  name: `Resizer contract: torch worker (${cuda ? "cuda" : "cpu device"})`,
  // Under CI=true torch is installed by .ci/run: a missing torch fails here instead.
  ignore: !hasTorch && !ci,
  async fn(t) {
    if (!hasTorch) {
      throw new Error(`CI=true: expected ${PYTHON} with torch and torchvision, found none`);
    }
    await resizerContract(
      t,
      () => GpuResizer.start({ python: PYTHON, device: cuda ? "cuda" : "cpu" }),
    );
  },
});

import assert from "node:assert/strict";
import { listNvidiaGpus } from "./gpu_resizer.ts";
import { ResizerUnavailableError } from "./resizer.ts";
import { selectResizer } from "./select_resizer.ts";

// What this machine has: the expectations below follow it, so the test is true on GPU hosts too.
const here = await listNvidiaGpus();

Deno.test("selectResizer", async (t) => {
  await t.step("resizer=cpu always gives sharp", async () => {
    const s = await selectResizer({ resizer: "cpu" });
    assert.equal(s.kind, "cpu");
    assert.equal(s.resizer.name, "sharp");
    assert.equal(s.reason, "resizer=cpu: using sharp CPU");
    await s.resizer.close();
  });

  await t.step("resizer=auto without nvidia-smi falls back to sharp and says why", async () => {
    const s = await selectResizer({ resizer: "auto", nvidiaSmi: "/nonexistent/nvidia-smi" });
    assert.equal(s.kind, "cpu");
    assert.equal(s.resizer.name, "sharp");
    assert.equal(s.reason, "resizer=auto: /nonexistent/nvidia-smi not found, using sharp CPU");
    await s.resizer.close();
  });

  await t.step("resizer=auto when nvidia-smi fails", async () => {
    const s = await selectResizer({ resizer: "auto", nvidiaSmi: "false" });
    assert.equal(s.kind, "cpu");
    assert.equal(s.reason, "resizer=auto: false -L failed: exit code 1, using sharp CPU");
    await s.resizer.close();
  });

  await t.step({
    name: "resizer=auto on this machine (no GPU): sharp, because nvidia-smi is missing",
    ignore: here.available,
    fn: async () => {
      const s = await selectResizer({});
      assert.equal(s.kind, "cpu");
      assert.equal(s.reason, `resizer=auto: ${here.reason}, using sharp CPU`);
      if (here.reason === "nvidia-smi not found") {
        assert.equal(s.reason, "resizer=auto: nvidia-smi not found, using sharp CPU");
      }
      await s.resizer.close();
    },
  });

  await t.step({
    name: "resizer=gpu on this machine (no GPU) fails with a clear error",
    ignore: here.available,
    fn: async () => {
      await assert.rejects(() => selectResizer({ resizer: "gpu" }), (e: unknown) => {
        assert.ok(e instanceof ResizerUnavailableError);
        assert.equal(e.code, "resizer_unavailable");
        assert.equal(
          e.message,
          `resizer=gpu: expected a usable CUDA GPU with torch, found: ${here.reason}`,
        );
        return true;
      });
    },
  });

  await t.step("invalid configuration is refused", async () => {
    await assert.rejects(
      () => selectResizer({ resizer: "tpu" as "cpu" }),
      /resizer config: resizer: /,
    );
    await assert.rejects(
      () => selectResizer({ resizer: "cpu", sharp: { threads: -1 } }),
      /resizer config: sharp.threads/,
    );
  });
});

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../common/log/mod.ts";
import { DetectorSession } from "./detector_session.ts";
import { buildModel, NEEDS_TORCH } from "./_test_fixtures.ts";

/** Whether this host could run CUDA at all (an NVIDIA driver is present). */
function gpuHost(): boolean {
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

Deno.test({
  name: "DetectorSession: execution providers, CPU fallback, thread settings",
  ignore: NEEDS_TORCH,
  async fn(t) {
    const dir = await mkdtemp(join(tmpdir(), "infer-session-"));
    try {
      const model = join(await buildModel("boxfinder", join(dir, "m"), { size: 64 }), "model.onnx");
      const input = () => {
        // One 64×64 image, all grey but a red square at (16..32, 8..24).
        const data = new Float32Array(3 * 64 * 64).fill(0.5);
        for (let y = 8; y < 24; y++) {
          for (let x = 16; x < 32; x++) {
            data[y * 64 + x] = 1;
            data[64 * 64 + y * 64 + x] = 0;
            data[2 * 64 * 64 + y * 64 + x] = 0;
          }
        }
        return data;
      };

      await t.step("cpu with explicit thread counts runs the graph", async () => {
        const s = await DetectorSession.open(model, {
          provider: "cpu",
          intraOpThreads: 1,
          interOpThreads: 1,
        });
        try {
          assert.equal(s.provider, "cpu");
          assert.equal(s.fallbackReason, null);
          assert.deepEqual(s.graph.inputNames, ["images"]);
          const { outputs, seconds } = await s.run("images", input(), [1, 3, 64, 64]);
          assert.ok(seconds > 0);
          assert.deepEqual(outputs.size.dims, [1, 2, 16, 16]);
          // The box finder measures the red square: 16 px wide and high.
          assert.ok(Math.abs(outputs.size.data[0] - 16) < 0.01, String(outputs.size.data[0]));
        } finally {
          await s.close();
        }
        assert.equal(s.alive, false);
      });

      await t.step(
        "cuda is tried when asked for; when it cannot start, the CPU takes over with a warning",
        async () => {
          const records: { level: string; msg: string }[] = [];
          const log = createLogger({
            stage: "infer",
            level: "info",
            json: true,
            sink: (line) => records.push(JSON.parse(line)),
          });
          const s = await DetectorSession.open(model, { provider: "cuda", log });
          try {
            if (s.provider === "cuda") {
              // A host where onnxruntime-node's CUDA provider really loads.
              assert.ok(gpuHost());
              assert.equal(s.fallbackReason, null);
            } else {
              assert.equal(s.provider, "cpu");
              assert.match(s.fallbackReason ?? "", /^cuda failed: /);
              const warned = records.find((r) =>
                r.level === "warn" && r.msg.includes("CPU execution provider")
              );
              assert.ok(warned, JSON.stringify(records));
            }
            const { outputs } = await s.run("images", input(), [1, 3, 64, 64]);
            assert.ok(Math.abs(outputs.size.data[0] - 16) < 0.01);
          } finally {
            await s.close();
          }
        },
      );

      await t.step("auto uses the CPU where no GPU is present, and says why", async () => {
        const s = await DetectorSession.open(model, { provider: "auto" });
        try {
          if (!gpuHost()) {
            assert.equal(s.provider, "cpu");
            assert.ok(s.fallbackReason, "expected a reason for not using CUDA");
          } else {
            assert.ok(s.provider === "cuda" || /^cuda failed: /.test(s.fallbackReason ?? ""));
          }
        } finally {
          await s.close();
        }
      });

      await t.step("a file that is not a model fails to load, naming the file", async () => {
        const bogus = join(dir, "bogus.onnx");
        await Deno.writeTextFile(bogus, "not a protobuf");
        const err = await DetectorSession.open(bogus, { provider: "cpu" }).catch((e) => e);
        assert.equal(err.code, "model_load_failed");
        assert.ok(err.message.includes(bogus), err.message);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});

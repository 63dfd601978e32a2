import assert from "node:assert/strict";
import { writeMlflowModel } from "./mlflow_model.ts";

const card = {
  input: { name: "images", shape: ["batch", 3, 320, 320], dtype: "float32" },
  outputs: [
    { name: "heatmap", shape: ["batch", 4, 80, 80] },
    { name: "size", shape: ["batch", 2, 80, 80] },
    { name: "offset", shape: ["batch", 2, 80, 80] },
  ],
  verification: { onnx_version: "1.12.0", python_version: "3.11.2" },
};

Deno.test("writeMlflowModel writes an MLmodel that PyYAML reads as MLflow's onnx flavor", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlmodel-" });
  try {
    const files = await writeMlflowModel(dir, {
      runId: "abc123",
      card,
      modelBytes: 4242,
      now: new Date("2026-12-07T03:00:00.000Z"),
    });
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)), [
      "MLmodel",
      "requirements.txt",
      "python_env.yaml",
      "conda.yaml",
    ]);
    const py = await new Deno.Command("/usr/bin/python3", {
      args: [
        "-c",
        "import json,sys,yaml; print(json.dumps([yaml.safe_load(open(p)) for p in sys.argv[1:]]))",
        `${dir}/MLmodel`,
        `${dir}/python_env.yaml`,
        `${dir}/conda.yaml`,
      ],
      stdout: "piped",
    }).output();
    assert.ok(py.success, "python3 with PyYAML reads the files");
    const [m, env, conda] = JSON.parse(new TextDecoder().decode(py.stdout));
    assert.equal(m.artifact_path, "model");
    assert.deepEqual(m.flavors.onnx, {
      code: null,
      data: "model.onnx",
      onnx_version: "1.12.0",
      providers: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    });
    assert.equal(m.flavors.python_function.loader_module, "mlflow.onnx");
    assert.equal(m.flavors.python_function.python_version, "3.11.2");
    assert.equal(m.model_size_bytes, 4242);
    assert.equal(m.run_id, "abc123");
    assert.equal(m.utc_time_created, "2026-12-07 03:00:00.000000");
    assert.deepEqual(JSON.parse(m.signature.inputs), [
      {
        type: "tensor",
        "tensor-spec": { dtype: "float32", shape: [-1, 3, 320, 320] },
        name: "images",
      },
    ]);
    assert.deepEqual(
      JSON.parse(m.signature.outputs).map((
        o: { name: string; "tensor-spec": { shape: number[] } },
      ) => [
        o.name,
        o["tensor-spec"].shape,
      ]),
      [["heatmap", [-1, 4, 80, 80]], ["size", [-1, 2, 80, 80]], ["offset", [-1, 2, 80, 80]]],
    );
    assert.equal(m.signature.params, null);
    assert.deepEqual(env, {
      python: "3.11.2",
      build_dependencies: ["pip"],
      dependencies: ["-r requirements.txt"],
    });
    assert.deepEqual(conda.dependencies.at(-1), {
      pip: ["mlflow==2.17.2", "onnx==1.12.0", "onnxruntime", "numpy"],
    });
    assert.equal(
      await Deno.readTextFile(`${dir}/requirements.txt`),
      "mlflow==2.17.2\nonnx==1.12.0\nonnxruntime\nnumpy\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

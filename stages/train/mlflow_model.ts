/**
 * Makes the registered model directory an MLflow model: an `MLmodel` file with the `onnx` flavor
 * (and `python_function` through `mlflow.onnx`), a signature with the input and output tensor
 * shapes from `model_card.json`, and the environment files MLflow writes (`requirements.txt`,
 * `python_env.yaml`, `conda.yaml`). With them, `mlflow.onnx.load_model("models:/<name>@champion")`
 * and `mlflow.pyfunc.load_model` work on Sluice's versions; `model_card.json` and `labels.json`
 * stay beside them.
 *
 * @example
 * ```ts
 * const files = await writeMlflowModel("/tmp/out/mlflow", { runId, card, modelBytes: 1_234_567 });
 * for (const f of files) await tracker.logArtifact(runId, f, "model");
 * ```
 * @module
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { toYaml, type YamlValue } from "../../common/yaml/mod.ts";

/** The MLflow version whose model format this follows (the server Sluice is tested against). */
export const MLFLOW_FORMAT_VERSION = "2.17.2";

/** The parts of `model_card.json` the MLmodel needs. */
export interface ModelCardShapes {
  input: { name: string; shape: (string | number)[]; dtype?: string };
  outputs: { name: string; shape: (string | number)[]; dtype?: string }[];
  verification?: { onnx_version?: string; python_version?: string };
}

/** What {@link writeMlflowModel} needs. */
export interface MlflowModelOptions {
  runId: string;
  card: ModelCardShapes;
  /** Size of model.onnx in bytes (`model_size_bytes`). */
  modelBytes: number;
  /** Path of the model inside the run's artifacts (default `model`). */
  artifactPath?: string;
  /** Creation time (default now). */
  now?: Date;
}

/** Serialises a mapping as block YAML that PyYAML reads back, keys sorted as MLflow writes. */
function toBlockYaml(map: { [k: string]: YamlValue }): string {
  return toYaml(map, { sortKeys: true });
}

function tensorSpec(t: { name: string; shape: (string | number)[]; dtype?: string }) {
  return {
    type: "tensor",
    "tensor-spec": {
      dtype: t.dtype ?? "float32",
      shape: t.shape.map((d) => (typeof d === "number" ? d : -1)),
    },
    name: t.name,
  };
}

/**
 * Writes `MLmodel`, `requirements.txt`, `python_env.yaml` and `conda.yaml` into `dir`; returns
 * their paths.
 */
export async function writeMlflowModel(dir: string, o: MlflowModelOptions): Promise<string[]> {
  const onnxVersion = o.card.verification?.onnx_version ?? "1.12.0";
  const python = o.card.verification?.python_version ?? "3.11";
  const now = o.now ?? new Date();
  const created = now.toISOString().replace("T", " ").replace("Z", "000");
  const mlmodel = toBlockYaml({
    artifact_path: o.artifactPath ?? "model",
    flavors: {
      onnx: {
        code: null,
        data: "model.onnx",
        onnx_version: onnxVersion,
        providers: ["CUDAExecutionProvider", "CPUExecutionProvider"],
      },
      python_function: {
        data: "model.onnx",
        env: { conda: "conda.yaml", virtualenv: "python_env.yaml" },
        loader_module: "mlflow.onnx",
        python_version: python,
      },
    },
    mlflow_version: MLFLOW_FORMAT_VERSION,
    model_size_bytes: o.modelBytes,
    model_uuid: crypto.randomUUID().replaceAll("-", ""),
    run_id: o.runId,
    signature: {
      inputs: JSON.stringify([tensorSpec(o.card.input)]),
      outputs: JSON.stringify(o.card.outputs.map(tensorSpec)),
      params: null,
    },
    utc_time_created: created,
  });
  const requirements = [
    `mlflow==${MLFLOW_FORMAT_VERSION}`,
    `onnx==${onnxVersion}`,
    "onnxruntime",
    "numpy",
  ];
  const files: [string, string][] = [
    ["MLmodel", mlmodel],
    ["requirements.txt", requirements.join("\n") + "\n"],
    [
      "python_env.yaml",
      toBlockYaml({
        python,
        build_dependencies: ["pip"],
        dependencies: ["-r requirements.txt"],
      }),
    ],
    [
      "conda.yaml",
      toBlockYaml({
        channels: ["conda-forge"],
        dependencies: [`python=${python}`, "pip<=24.2", { pip: requirements }],
        name: "mlflow-env",
      }),
    ],
  ];
  const out: string[] = [];
  for (const [name, text] of files) {
    const path = join(dir, name);
    await writeFile(path, text);
    out.push(path);
  }
  return out;
}

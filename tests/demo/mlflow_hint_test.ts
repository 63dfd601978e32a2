import assert from "node:assert/strict";
import { mlflowOpenHint } from "./mlflow_hint.ts";

Deno.test("the demo's closing lines name the commands that open the file store", () => {
  const lines = mlflowOpenHint("/srv/demo/.sluice/mlruns");
  assert.ok(
    lines.includes(
      "    MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri /srv/demo/.sluice/mlruns",
    ),
  );
  assert.ok(
    lines.includes(
      "    mlflow migrate-filestore --source /srv/demo/.sluice/mlruns --target sqlite:////srv/demo/.sluice/mlflow.db",
    ),
  );
  assert.ok(
    lines.includes("    mlflow server --backend-store-uri sqlite:////srv/demo/.sluice/mlflow.db"),
  );
  assert.deepEqual(mlflowOpenHint("/x", "http://mlflow:5000"), [
    "MLflow: the runs and models are on http://mlflow:5000",
  ]);
});

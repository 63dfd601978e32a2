/**
 * The demo's closing lines about MLflow: the embedded store is MLflow's file-store layout, which
 * MLflow deprecated in February 2026 (mlflow/mlflow#18534); since 3.13 `mlflow ui` refuses it
 * unless `MLFLOW_ALLOW_FILE_STORE=true` (mlflow/mlflow#23634), and `mlflow migrate-filestore`
 * (MLflow ≥ 3.10) moves it into a SQLite database.
 *
 * @example
 * ```ts
 * for (const line of mlflowOpenHint("/home/me/.sluice/mlruns")) console.log(line);
 * ```
 * @module
 */
import { dirname, join } from "node:path";

/** The commands that open the runs in `mlrunsDir` with a current MLflow, one per line. */
export function mlflowOpenHint(mlrunsDir: string, trackingUri?: string): string[] {
  if (trackingUri) return [`MLflow: the runs and models are on ${trackingUri}`];
  const db = `sqlite:///${join(dirname(mlrunsDir), "mlflow.db")}`;
  return [
    `MLflow: the runs are in ${mlrunsDir}, MLflow's file-store layout (deprecated in February 2026).`,
    `  open it with a current MLflow (3.13+):`,
    `    MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ${mlrunsDir}`,
    `  or move it into a database (MLflow 3.10+) and serve that:`,
    `    mlflow migrate-filestore --source ${mlrunsDir} --target ${db}`,
    `    mlflow server --backend-store-uri ${db}`,
    `  (MLflow before 3.13: mlflow ui --backend-store-uri ${mlrunsDir})`,
  ];
}

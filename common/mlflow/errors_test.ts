import assert from "node:assert/strict";
import { SluiceError } from "../errors/mod.ts";
import { ArtifactNotFoundError, isNotFound, MlflowError, reasonFor } from "./errors.ts";

Deno.test("reasonFor maps MLflow error codes and HTTP statuses to reasons", () => {
  const cases: [string, number | undefined, string][] = [
    ["RESOURCE_DOES_NOT_EXIST", 404, "not_found"],
    ["RESOURCE_ALREADY_EXISTS", 400, "already_exists"],
    ["INVALID_PARAMETER_VALUE", 400, "invalid_argument"],
    ["PERMISSION_DENIED", 403, "forbidden"],
    ["UNAUTHENTICATED", 401, "unauthorized"],
    ["HTTP_401", 401, "unauthorized"],
    ["HTTP_404", 404, "not_found"],
    ["HTTP_405", 405, "mlflow_error"],
    ["HTTP_429", 429, "unavailable"],
    ["INTERNAL_ERROR", 500, "unavailable"],
    ["NETWORK_ERROR", undefined, "unavailable"],
    ["SOMETHING_ELSE", 400, "mlflow_error"],
  ];
  for (const [code, status, want] of cases) {
    assert.equal(reasonFor(code, status), want, `${code} ${status}`);
  }
});

Deno.test("MlflowError keeps MLflow's error_code and status", () => {
  const e = new MlflowError("boom", {
    errorCode: "RESOURCE_DOES_NOT_EXIST",
    status: 404,
    request: "GET /x",
  });
  assert.ok(e instanceof SluiceError);
  assert.deepEqual([e.code, e.errorCode, e.status, e.request], [
    "not_found",
    "RESOURCE_DOES_NOT_EXIST",
    404,
    "GET /x",
  ]);
  assert.ok(isNotFound(e));
  const a = new ArtifactNotFoundError("mlflow-artifacts:/1/r/artifacts/x", { status: 500 });
  assert.ok(a instanceof MlflowError);
  assert.deepEqual([a.code, a.status, a.location], [
    "not_found",
    500,
    "mlflow-artifacts:/1/r/artifacts/x",
  ]);
  assert.ok(!isNotFound(new Error("x")));
});

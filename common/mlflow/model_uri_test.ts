import assert from "node:assert/strict";
import { MlflowError } from "./errors.ts";
import { artifactPathSegments, joinArtifactUri, parseModelUri } from "./model_uri.ts";

Deno.test("parseModelUri", () => {
  assert.deepEqual(parseModelUri("models:/det@champion"), {
    kind: "alias",
    name: "det",
    alias: "champion",
  });
  assert.deepEqual(parseModelUri("models:/det/07"), { kind: "version", name: "det", version: "7" });
  assert.deepEqual(parseModelUri("models:/det/latest"), { kind: "latest", name: "det" });
  assert.deepEqual(parseModelUri("models:/det/production"), {
    kind: "stage",
    name: "det",
    stage: "Production",
  });
  assert.deepEqual(parseModelUri("models:/a.b.c/2"), {
    kind: "version",
    name: "a.b.c",
    version: "2",
  });
  assert.deepEqual(parseModelUri("runs:/abc123/model/sub"), {
    kind: "run",
    runId: "abc123",
    path: "model/sub",
  });
  assert.deepEqual(parseModelUri("runs:/abc123"), { kind: "run", runId: "abc123", path: "" });
  for (
    const bad of [
      "models:/det",
      "models:/det/",
      "models:/det@",
      "models:/det/Prod",
      "s3://b/k",
      "runs:/../x",
    ]
  ) {
    assert.throws(
      () => parseModelUri(bad),
      (e: unknown) => e instanceof MlflowError && e.code === "invalid_argument",
      bad,
    );
  }
});

Deno.test("joinArtifactUri and artifactPathSegments", () => {
  assert.equal(
    joinArtifactUri("mlflow-artifacts:/1/r/artifacts/", "/model/", "x.onnx"),
    "mlflow-artifacts:/1/r/artifacts/model/x.onnx",
  );
  assert.equal(joinArtifactUri("s3://b/p", ""), "s3://b/p");
  assert.deepEqual(artifactPathSegments("model/sub dir/x"), ["model", "sub dir", "x"]);
  assert.deepEqual(artifactPathSegments(""), []);
  for (const bad of ["../x", "a/./b", "a//b", "a\\b", "a\u0000b"]) {
    assert.throws(() => artifactPathSegments(bad), MlflowError, bad);
  }
});

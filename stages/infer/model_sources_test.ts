import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { fetchModel } from "./model_loader.ts";
import {
  assertAllowedModelSource,
  defaultModelSourcePrefixes,
  ModelSourceNotAllowedError,
} from "./model_sources.ts";

const refused = (e: unknown) =>
  e instanceof ModelSourceNotAllowedError || (e instanceof Error &&
    (e.cause instanceof ModelSourceNotAllowedError || /found one outside them/.test(e.message)));

Deno.test("model sources must lie under the allowed prefixes", () => {
  const allowed = ["s3://models/sluice", "file:///srv/mlruns"];
  assertAllowedModelSource("s3://models/sluice/det/3/model.onnx", allowed);
  assertAllowedModelSource("file:///srv/mlruns/1/abc/artifacts/model", allowed);
  assertAllowedModelSource("models:/det@champion", allowed);
  assertAllowedModelSource("mlflow-artifacts:/1/abc/artifacts/model", allowed);
  for (
    const uri of [
      "s3://other-bucket/model.onnx",
      "s3://models/sluice-evil/model.onnx", // a sibling sharing the prefix's text
      "file:///etc/passwd",
      "file:///srv/mlruns/../../etc/shadow", // .. resolved before the check
      "S3://other/x.onnx",
    ]
  ) {
    assert.throws(() => assertAllowedModelSource(uri, allowed), refused, uri);
  }
  assert.deepEqual(
    defaultModelSourcePrefixes({
      objectStore: { url: "s3://data/sluice" },
      mlflow: { localDir: "/srv/mlruns" },
      stage: { modelUri: "s3://ops/pinned.onnx" },
    }),
    ["s3://data/sluice", "file:///srv/mlruns", "s3://ops/pinned.onnx"],
  );
});

Deno.test("fetchModel refuses a registered version that points outside, before reading it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-model-sources-"));
  try {
    const tracker = new FileTracker({ root: join(dir, "mlruns") });
    await tracker.getOrCreateRegisteredModel("det");
    // A version whose source is a directory outside every allowed prefix.
    const outside = join(dir, "elsewhere");
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "model.onnx"), "not read");
    const version = await tracker.createModelVersion("det", pathToFileURL(outside).href);
    const source = {
      name: "det",
      version,
      uri: `models:/det/${version}`,
      alias: null,
      via: "uri" as const,
      movable: false,
    };
    const root = join(dir, "staging");
    const allowedSources = [pathToFileURL(join(dir, "mlruns")).href];
    await assert.rejects(fetchModel(source, { root, tracker, allowedSources }), refused);
    await assert.rejects(
      fetchModel(
        { ...source, uri: pathToFileURL(outside).href, version: null },
        { root, tracker, allowedSources },
      ),
      refused,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

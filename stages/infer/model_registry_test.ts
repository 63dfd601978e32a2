import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileTracker, MlflowRestTracker } from "../../common/mlflow/mod.ts";
import { registryKey } from "../../common/mlflow/registry_identity.ts";
import { cacheVersion, withRegistry } from "./model_registry.ts";
import type { ModelSource } from "./model_resolver.ts";

const source: ModelSource = {
  name: "det",
  version: "1",
  alias: "champion",
  via: "alias",
  uri: "models:/det/1",
  movable: true,
};

Deno.test("withRegistry stamps the tracker's credential-free identity; cacheVersion uses it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "model-registry-"));
  try {
    const file = withRegistry(source, new FileTracker({ root: join(dir, "mlruns") }));
    assert.equal(file.registry, `file://${join(dir, "mlruns")}`);
    const rest = withRegistry(
      source,
      new MlflowRestTracker({ trackingUri: "http://bob:pw@127.0.0.1:5000/", username: "bob" }),
    );
    assert.equal(rest.registry, "http://127.0.0.1:5000");
    assert.deepEqual({ ...rest, registry: undefined }, { ...source, registry: undefined });
    // A tracker that does not say where it is leaves the source as it was.
    assert.equal(withRegistry(source, {}), source);

    assert.equal(cacheVersion(source, "1"), "1");
    assert.equal(cacheVersion(rest, "1"), `1_${registryKey("http://127.0.0.1:5000")}`);
    assert.notEqual(cacheVersion(file, "1"), cacheVersion(rest, "1"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

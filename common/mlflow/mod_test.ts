import assert from "node:assert/strict";
import { join } from "node:path";
import { FileTracker, MlflowError, MlflowRestTracker, openTracker } from "./mod.ts";

Deno.test("openTracker picks the implementation from the tracking URI", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-open-" });
  try {
    const local = openTracker({ localDir: join(tmp, "a") });
    assert.ok(local instanceof FileTracker);
    assert.equal(local.root, join(tmp, "a"));
    const file = openTracker({ trackingUri: `file://${join(tmp, "b")}` });
    assert.ok(file instanceof FileTracker);
    assert.equal(file.root, join(tmp, "b"));
    const rest = openTracker({ trackingUri: "http://127.0.0.1:5000", token: "t" });
    assert.ok(rest instanceof MlflowRestTracker);
    assert.equal(rest.kind, "rest");
    await rest.close();
    assert.throws(() => openTracker({ trackingUri: "databricks" }), MlflowError);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

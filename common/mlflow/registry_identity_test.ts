import assert from "node:assert/strict";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { FileTracker, MlflowRestTracker } from "./mod.ts";
import { registryIdentity, registryKey } from "./registry_identity.ts";

Deno.test("registryIdentity: servers lose credentials, query and fragment; stores are absolute", () => {
  assert.equal(
    registryIdentity("https://bot:s3cret@MLflow.Example:443/ml/?token=x#f"),
    "https://mlflow.example/ml",
  );
  assert.equal(registryIdentity("http://u:p@127.0.0.1:5000/"), "http://127.0.0.1:5000");
  assert.equal(
    registryIdentity("http://127.0.0.1:5000"),
    registryIdentity("http://127.0.0.1:5000/"),
  );
  assert.notEqual(
    registryIdentity("http://127.0.0.1:5000"),
    registryIdentity("http://127.0.0.1:5001"),
  );
  const abs = pathToFileURL(resolve("mlruns")).href;
  assert.equal(registryIdentity("mlruns"), abs);
  assert.equal(registryIdentity("mlruns/"), abs);
  assert.equal(registryIdentity(abs), abs);
  assert.throws(() => registryIdentity("ftp://host/x"), /expected an http\(s\):\/\/ or file: URL/);
});

Deno.test("registryKey: 8 hex digits, stable, different per registry", () => {
  const a = registryKey("file:///srv/a");
  assert.match(a, /^[0-9a-f]{8}$/);
  assert.equal(registryKey("file:///srv/a"), a);
  assert.notEqual(registryKey("file:///srv/b"), a);
});

Deno.test("trackers report their registry identity without credentials", () => {
  const rest = new MlflowRestTracker({
    trackingUri: "http://alice:pw@127.0.0.1:5000/",
    username: "alice",
    password: "pw",
  });
  assert.equal(rest.uri, "http://127.0.0.1:5000");
  assert.ok(!rest.uri.includes("pw"));
  const file = new FileTracker({ root: "some/mlruns" });
  assert.equal(file.uri, registryIdentity("some/mlruns"));
});

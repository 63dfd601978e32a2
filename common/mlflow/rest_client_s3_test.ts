/**
 * Runs whose artifact root is `s3://` are read and written straight on S3 (as MLflow's own client
 * does), through common/objectstore, against a real S3 server over HTTP (the fauxqs emulator from
 * tests/harness, or SLUICE_TEST_S3_ENDPOINT).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { ArtifactNotFoundError } from "./errors.ts";
import { MlflowRestTracker } from "./rest_client.ts";
import { standInBytes } from "../../tests/support/mlflow/replay_server.ts";

const s3 = await s3Availability();

Deno.test({
  name: "MlflowRestTracker reads and writes s3:// artifact roots directly",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const tmp = await Deno.makeTempDir({ prefix: "mlflow-s3-" });
    // The tracking server is never contacted for s3:// locations.
    const client = new MlflowRestTracker({
      trackingUri: "http://127.0.0.1:9",
      maxAttempts: 1,
      s3: {
        endpoint: server.endpoint,
        region: server.region,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
        forcePathStyle: true,
      },
    });
    try {
      await server.createBucket("mlflow-art");
      const root = "s3://mlflow-art/mlruns/1/0a1b2c/artifacts";
      const onnx = join(tmp, "model.onnx");
      const mlmodel = join(tmp, "MLmodel");
      const weights = standInBytes(70_000, 7);
      await Deno.writeFile(onnx, weights);
      await Deno.writeTextFile(mlmodel, "flavors: {}\n");
      await client.uploadTo(`${root}/model/model.onnx`, onnx);
      await client.uploadTo(`${root}/model/MLmodel`, mlmodel);
      await client.uploadTo(`${root}/notes/empty.txt`, await Deno.makeTempFile({ dir: tmp }));

      assert.deepEqual(await client.listArtifactUri(root), [
        { path: "model", isDir: true },
        { path: "notes", isDir: true },
      ]);
      assert.deepEqual(await client.listArtifactUri(`${root}/model`), [
        { path: "MLmodel", isDir: false, fileSize: 12 },
        { path: "model.onnx", isDir: false, fileSize: 70_000 },
      ]);
      assert.deepEqual(await client.listArtifactUri(`${root}/nothing`), []);

      const dest = join(tmp, "dl", "model.onnx");
      await client.downloadArtifact(`${root}/model/model.onnx`, dest);
      assert.deepEqual(await Deno.readFile(dest), weights);
      await assert.rejects(
        client.downloadArtifact(`${root}/model/nope.bin`, join(tmp, "dl", "nope")),
        ArtifactNotFoundError,
      );

      const model = await client.downloadModel(`${root}/model`, join(tmp, "model"));
      assert.deepEqual(model.files, ["MLmodel", "model.onnx"]);
      assert.equal(model.artifactUri, `${root}/model`);
      assert.deepEqual(await Deno.readFile(join(tmp, "model", "model.onnx")), weights);
      assert.deepEqual(await client.downloadArtifacts(root, join(tmp, "all")), [
        "model/MLmodel",
        "model/model.onnx",
        "notes/empty.txt",
      ]);
    } finally {
      await client.close();
      await server.stop();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

import assert from "node:assert/strict";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startS3Server } from "../../tests/harness/s3.ts";
import { ImageUrlError, imageUrlResolver } from "./image_urls.ts";

Deno.test("Label Studio image URLs: s3, prefix, local-files and auto", async () => {
  const s3 = imageUrlResolver({ mode: "s3" });
  assert.equal(await s3("s3://raw/cams/a b.jpg"), "s3://raw/cams/a b.jpg");
  await assert.rejects(
    () => s3("file:///data/a.jpg"),
    (e: unknown) =>
      e instanceof ImageUrlError &&
      /expected an s3:\/\/ object, found file:\/\/\/data\/a\.jpg/.test(e.message),
  );

  const prefix = imageUrlResolver({
    mode: "prefix",
    prefix: "https://cdn.example/img/",
    stores: ["s3://raw/landing", "file:///srv/objects"],
  });
  assert.equal(
    await prefix("s3://raw/landing/cams/a b.jpg"),
    "https://cdn.example/img/cams/a%20b.jpg",
  );
  assert.equal(
    await prefix("file:///srv/objects/images/ab/x.png"),
    "https://cdn.example/img/images/ab/x.png",
  );
  await assert.rejects(
    () => imageUrlResolver({ mode: "prefix" })("s3://b/k"),
    /expected ingest\.imageUrlPrefix/,
  );

  const local = imageUrlResolver({ mode: "local-files", localFilesRoot: "/srv" });
  assert.equal(
    await local("file:///srv/objects/cams/a%20b.jpg"),
    "/data/local-files/?d=objects/cams/a%20b.jpg",
  );
  await assert.rejects(() => local("file:///etc/passwd"), /outside ingest\.localFilesRoot/);

  // auto: s3:// stays s3:// (cloud storage connected); a file store gets local-files, or the
  // prefix when one is set.
  const auto = imageUrlResolver({ localFilesRoot: "/" });
  assert.equal(await auto("s3://raw/a.jpg"), "s3://raw/a.jpg");
  assert.equal(await auto("file:///srv/a.jpg"), "/data/local-files/?d=srv/a.jpg");
  const autoPrefix = imageUrlResolver({ prefix: "https://img.example", stores: ["file:///srv"] });
  assert.equal(await autoPrefix("file:///srv/a.jpg"), "https://img.example/a.jpg");
});

Deno.test("presigned URLs fetch the object from S3 and carry the configured expiry", async () => {
  const server = await startS3Server();
  try {
    await server.createBucket("raw");
    const client = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    const body = new TextEncoder().encode("image bytes");
    await client.send(new PutObjectCommand({ Bucket: "raw", Key: "cams/a b.jpg", Body: body }));
    client.destroy();
    const url = await imageUrlResolver({
      mode: "presigned",
      expirySeconds: 3600,
      s3: {
        endpoint: server.endpoint,
        region: server.region,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
      },
    })("s3://raw/cams/a b.jpg");
    const u = new URL(url);
    assert.equal(u.origin, new URL(server.endpoint).origin);
    assert.equal(u.searchParams.get("X-Amz-Expires"), "3600");
    assert.ok(u.searchParams.get("X-Amz-Signature"));
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), body);
    assert.throws(() => imageUrlResolver({ mode: "presigned", expirySeconds: 604_801 }));
  } finally {
    await server.stop();
  }
});

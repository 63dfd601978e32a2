import assert from "node:assert/strict";
import type { SharedConfig } from "../config/schema.ts";
import { awsConnectionOf, type S3Settings, S3SettingsSchema } from "./s3_settings.ts";

Deno.test("the configuration's s3 section is an S3Settings and passes its schema", () => {
  const section: SharedConfig["s3"] = {
    region: "eu-west-1",
    endpoint: "http://127.0.0.1:9000",
    accessKeyId: "AK",
    secretAccessKey: "secret",
    sessionToken: "token",
    partSizeMb: 16,
    maxAttempts: 3,
  };
  const settings: S3Settings = section; // compile-time: one type for both
  assert.deepEqual(S3SettingsSchema.parse(settings), section);
  assert.throws(() => S3SettingsSchema.parse({ partSizeMb: 4 }));
});

Deno.test("awsConnectionOf keeps the region, and credentials only as a complete pair", () => {
  assert.deepEqual(
    awsConnectionOf({
      region: "eu-west-1",
      accessKeyId: "AK",
      secretAccessKey: "s",
      sessionToken: "t",
      endpoint: "http://127.0.0.1:9000",
      partSizeMb: 8,
    }),
    { region: "eu-west-1", accessKeyId: "AK", secretAccessKey: "s", sessionToken: "t" },
  );
  assert.deepEqual(awsConnectionOf({ region: "us-east-1", accessKeyId: "AK" }), {
    region: "us-east-1",
  });
  assert.deepEqual(awsConnectionOf({}), {});
});

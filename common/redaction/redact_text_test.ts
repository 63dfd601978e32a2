import assert from "node:assert/strict";
import { redactDeep, REDACTED, redactText, rememberSecret } from "./redact_text.ts";

Deno.test("redactText hides credentials in URLs, queries and headers", async (t) => {
  await t.step("URL passwords, any scheme and case, anywhere in the text", () => {
    assert.equal(
      redactText("no answer from http://ann:hunter2@mlflow:5000 after 3 attempt(s)"),
      `no answer from http://ann:${REDACTED}@mlflow:5000 after 3 attempt(s)`,
    );
    assert.equal(
      redactText("POSTGRES://app:Pw1@db/sluice"),
      `POSTGRES://app:${REDACTED}@db/sluice`,
    );
    assert.equal(redactText("HTTPS://u:x@h/p"), `HTTPS://u:${REDACTED}@h/p`);
  });

  await t.step("an @ inside the password", () => {
    const out = redactText("url http://user:p@ss@w0rd@host:5000/api/x");
    assert.equal(out, `url http://user:${REDACTED}@host:5000/api/x`);
    assert.ok(!out.includes("ss@w0rd"));
  });

  await t.step("a user without a password stays; paths with @ later are not userinfo", () => {
    assert.equal(redactText("https://user@host/x"), "https://user@host/x");
    assert.equal(redactText("s3://bucket/a@b.jpg"), "s3://bucket/a@b.jpg");
    assert.equal(redactText("not a url: x:y@z"), "not a url: x:y@z");
  });

  await t.step("credential-like query values", () => {
    assert.equal(
      redactText("http://h/x?user=a&password=s3cr&token=t0k&api_key=k1&page=2"),
      `http://h/x?user=a&password=${REDACTED}&token=${REDACTED}&api_key=${REDACTED}&page=2`,
    );
    assert.equal(
      redactText("https://b.s3/k?X-Amz-Signature=abcd&X-Amz-Security-Token=zz&x=1"),
      `https://b.s3/k?X-Amz-Signature=${REDACTED}&X-Amz-Security-Token=${REDACTED}&x=1`,
    );
    assert.equal(redactText("s?client_secret=v"), `s?client_secret=${REDACTED}`);
  });

  await t.step("Basic and Bearer values", () => {
    assert.equal(
      redactText("authorization: Basic YW5uOmh1bnRlcjI="),
      `authorization: Basic ${REDACTED}`,
    );
    assert.equal(redactText("Bearer eyJhbGciOi.x-y_z"), `Bearer ${REDACTED}`);
  });

  await t.step("remembered literal secrets, raw and percent-encoded", () => {
    rememberSecret("AKIA-very-Secret/Key+1");
    rememberSecret("ab"); // too short to hide safely: ignored
    assert.equal(redactText("key AKIA-very-Secret/Key+1 leaked"), `key ${REDACTED} leaked`);
    assert.equal(
      redactText(`x=${encodeURIComponent("AKIA-very-Secret/Key+1")}`),
      `x=${REDACTED}`,
    );
    assert.equal(redactText("ab cd"), "ab cd");
  });
});

Deno.test("redactDeep walks payloads", () => {
  const err = new Error("GET http://u:pw12@h/x failed");
  assert.deepEqual(
    redactDeep({ a: ["http://u:pw12@h"], b: { c: err, n: 3, z: null } }),
    {
      a: [`http://u:${REDACTED}@h`],
      b: { c: `GET http://u:${REDACTED}@h/x failed`, n: 3, z: null },
    },
  );
});

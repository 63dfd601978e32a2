import assert from "node:assert/strict";
import { z } from "zod";
import { isSecret, redact, REDACTED, redactUrl, secret } from "./secret.ts";

Deno.test("secret marking", async (t) => {
  await t.step("secret() and .meta({ secret: true }) survive wrappers", () => {
    assert.equal(isSecret(secret(z.string())), true);
    assert.equal(isSecret(secret(z.string()).optional()), true);
    assert.equal(isSecret(z.string().meta({ secret: true }).default("x").describe("d")), true);
    assert.equal(isSecret(z.string().optional()), false);
  });

  await t.step("secret() keeps an existing description", () => {
    const s = secret(z.string().describe("API token"));
    assert.equal(s.meta()?.description, "API token");
  });
});

Deno.test("redact", async (t) => {
  const schema = z.object({
    user: z.string(),
    token: secret(z.string()).optional(),
    unset: secret(z.string()).optional(),
    nested: z.object({ keys: z.array(secret(z.string())) }),
    byName: z.record(z.string(), secret(z.string())),
    db: z.string(),
  });
  const value = {
    user: "ann",
    token: "t0k3n",
    nested: { keys: ["k1", "k2"] },
    byName: { a: "s1" },
    db: "postgres://app:hunter2@db:5432/sluice",
  };

  await t.step("secrets anywhere in the tree are replaced", () => {
    assert.deepEqual(redact(value, schema), {
      user: "ann",
      token: REDACTED,
      nested: { keys: [REDACTED, REDACTED] },
      byName: { a: REDACTED },
      db: `postgres://app:${REDACTED}@db:5432/sluice`,
    });
  });

  await t.step("the input is not modified", () => {
    assert.equal(value.token, "t0k3n");
  });

  await t.step("URL passwords only", () => {
    assert.equal(redactUrl("https://user@host/x"), "https://user@host/x");
    assert.equal(redactUrl("https://u:p@host/x?y=1"), `https://u:${REDACTED}@host/x?y=1`);
    assert.equal(redactUrl("not a url: x:y@z"), "not a url: x:y@z");
  });

  await t.step("an @ inside the password, an upper-case scheme, secret query values", () => {
    assert.equal(redactUrl("http://u:p@ss@host/x"), `http://u:${REDACTED}@host/x`);
    assert.equal(redactUrl("POSTGRES://u:pw@db/s"), `POSTGRES://u:${REDACTED}@db/s`);
    assert.equal(
      redactUrl("https://h/x?password=pw&token=tk&n=1"),
      `https://h/x?password=${REDACTED}&token=${REDACTED}&n=1`,
    );
  });
});

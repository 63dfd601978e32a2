import assert from "node:assert/strict";
import { SluiceError } from "../errors/mod.ts";
import { isPermanentFailure, PERMANENT_CODES } from "./retry_policy.ts";

class NotRetryable extends Error {
  readonly retryable = false;
}

Deno.test("isPermanentFailure", async (t) => {
  await t.step("listed codes are permanent", () => {
    for (const code of PERMANENT_CODES) {
      assert.equal(isPermanentFailure(new SluiceError(code, "x")), true, code);
    }
  });
  await t.step("retryable === false is permanent whatever the code", () => {
    assert.equal(isPermanentFailure(new NotRetryable("no")), true);
    assert.equal(isPermanentFailure(Object.assign(new Error("x"), { retryable: true })), false);
  });
  await t.step("other errors and non-errors are retryable", () => {
    assert.equal(isPermanentFailure(new SluiceError("staging_full", "x")), false);
    assert.equal(isPermanentFailure(new Error("ECONNRESET")), false);
    assert.equal(isPermanentFailure("a string"), false);
    assert.equal(isPermanentFailure(null), false);
  });
  await t.step("extra codes extend the list", () => {
    assert.equal(isPermanentFailure(new SluiceError("quota", "x"), ["quota"]), true);
    assert.equal(isPermanentFailure(new SluiceError("quota", "x")), false);
  });
});

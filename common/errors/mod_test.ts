import assert from "node:assert/strict";
import { messageOf, SluiceError } from "./mod.ts";

Deno.test("messageOf never carries URL credentials", () => {
  const msg = messageOf(new SluiceError("x", "GET http://u:s3cr@t@h:1/api: no answer"));
  assert.ok(!msg.includes("s3cr"), msg);
  assert.equal(msg, "GET http://u:***redacted***@h:1/api: no answer");
  assert.equal(messageOf("token ?token=abc"), "token ?token=***redacted***");
});

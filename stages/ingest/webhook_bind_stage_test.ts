/**
 * The ingest stage's `POST /events` route follows `http.hostname`: without a webhook token (served
 * only because ingest.insecureWebhook says so) it refuses events on a non-loopback bind (403); on
 * loopback the same request reaches the parser.
 * The handler is called directly: nothing binds a non-loopback address.
 */
import assert from "node:assert/strict";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { createIngestStage } from "./stage.ts";
import { openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();

Deno.test({
  name: "ingest stage: the events webhook without a token is refused on a non-loopback bind",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const env = await openTestEnv(server, {
      settings: { webhook: true, insecureWebhook: true },
    });
    try {
      const post = () =>
        new Request("http://sluice/events", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ Records: [] }),
        });
      for (const [hostname, refused] of [["0.0.0.0", true], ["127.0.0.1", false]] as const) {
        const config = { ...env.config, http: { ...env.config.http, hostname } };
        const stage = createIngestStage(config, { ...env });
        try {
          const res = await stage.handler.fetch(post());
          const body = await res.text();
          if (refused) {
            assert.equal(res.status, 403, `${hostname}: ${body}`);
            assert.match(body, /no_webhook_token/);
          } else {
            assert.notEqual(res.status, 403, `${hostname}: ${body}`);
            assert.ok(res.status < 500, `${hostname}: ${res.status} ${body}`);
          }
        } finally {
          await stage.close();
        }
      }
    } finally {
      await env.close();
      await server.stop();
    }
  },
});

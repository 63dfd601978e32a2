/**
 * Whether and how the ingest webhook (POST /events) is served. A webhook without a bearer token
 * accepts events from anyone who can reach the port, so an unset or empty
 * `SLUICE_INGEST_WEBHOOK_TOKEN` no longer turns authentication off silently: the webhook is
 * not served, and an error says why, unless `ingest.insecureWebhook` is set, which serves it
 * without authentication and says so as an error at every start.
 *
 * @example
 * ```ts
 * const auth = webhookAuth(config.stage, log); // null: do not serve POST /events
 * if (auth) routes["POST /events"] = createWebhookRoute({ ...auth, record, maxBodyBytes });
 * ```
 * @module
 */
import type { Logger } from "../../common/log/mod.ts";

export interface WebhookAuthSettings {
  webhook: boolean;
  webhookToken?: string;
  insecureWebhook?: boolean;
}

/** `{ token }` to serve with authentication, `{}` to serve without, null not to serve. */
export function webhookAuth(s: WebhookAuthSettings, log: Logger): { token?: string } | null {
  if (!s.webhook) return null;
  if (s.webhookToken) return { token: s.webhookToken };
  if (s.insecureWebhook) {
    log.error(
      "webhook authentication OFF: POST /events accepts events from anyone who can reach " +
        "this port (ingest.insecureWebhook=true; set SLUICE_INGEST_WEBHOOK_TOKEN instead)",
    );
    return {};
  }
  log.error(
    "webhook not served: expected SLUICE_INGEST_WEBHOOK_TOKEN (ingest.webhookToken), found " +
      "none or an empty one; set a token, or ingest.insecureWebhook=true to accept " +
      "unauthenticated events",
  );
  return null;
}

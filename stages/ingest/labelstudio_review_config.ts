/**
 * Settings of review ingestion from Label Studio (issue 16), spread into the `ingest` section.
 * The route `POST /labelstudio/webhook` exists when `reviewWebhookToken` is set; the reconciling
 * export runs in events mode when `reviewLabelStudioUrl`, `reviewApiToken` and
 * `reviewProjectId` are set.
 *
 * @example
 * ```ts
 * const IngestSettingsSchema = z.strictObject({ ...LABEL_STUDIO_REVIEW_SETTINGS });
 * ```
 * @module
 */
import { z } from "zod";
import { secret } from "../../common/config/mod.ts";

export const LABEL_STUDIO_REVIEW_SETTINGS = {
  reviewWebhookToken: secret(z.string().min(16)).optional().describe(
    "Bearer token Label Studio's webhook must send to POST /labelstudio/webhook " +
      "(unset = no review webhook; at least 16 characters)",
  ),
  reviewLabelStudioUrl: z.url({ protocol: /^https?$/ }).optional().describe(
    "Label Studio base URL for the reconciling export of reviews (unset = no reconcile)",
  ),
  reviewApiToken: secret(z.string().min(1)).optional().describe(
    "Label Studio API token (Authorization: Token) for the reconciling export",
  ),
  reviewProjectId: z.int().min(1).optional().describe("Label Studio project the reviews come from"),
  reviewReconcileIntervalMs: z.int().min(1000).default(600_000).describe(
    "events mode: how often the review export is reconciled, ms",
  ),
  reviewDataKey: z.string().min(1).default("image").describe(
    "The Label Studio task `data` key holding the image URL",
  ),
};

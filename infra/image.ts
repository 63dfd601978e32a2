/**
 * The one container image setting every Kubernetes object uses: the stage Deployments and the
 * train Indexed Job the launcher writes (`train.k8sImage`) get the same reference.
 *
 * @example
 * ```ts
 * imageRef(ImageSettingsSchema.parse({ tag: "1.2.0" })); // "ghcr.io/sluice/sluice:1.2.0"
 * ```
 * @module
 */
import { z } from "zod";
import { SLUICE_RELEASE } from "./release.ts";

const REPOSITORY = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Image repository and tag (the tag defaults to the release). */
export const ImageSettingsSchema = z.strictObject({
  repository: z.string().regex(REPOSITORY, {
    error: "expected an image repository like ghcr.io/sluice/sluice (lower case, no tag)",
  }).default("ghcr.io/sluice/sluice").describe("Image repository holding the sluice-* binaries"),
  tag: z.string().regex(TAG, { error: "expected an image tag (A-Z a-z 0-9 . _ -, <= 128)" })
    .default(SLUICE_RELEASE).describe("Image tag: the release version"),
});

/** Parsed image settings. */
export type ImageSettings = z.infer<typeof ImageSettingsSchema>;

/**
 * `repository:tag`.
 *
 * @example
 * ```ts
 * imageRef({ repository: "reg.local/sluice", tag: "dev" }); // "reg.local/sluice:dev"
 * ```
 */
export function imageRef(s: ImageSettings): string {
  return `${s.repository}:${s.tag}`;
}

/**
 * The release the infrastructure deploys by default: the container image tag and the artifacts
 * path (`s3://<artifacts>/sluice/<release>/`) both default to it. It is the product's own
 * {@link SLUICE_VERSION}, so a release bump is one edit in `common/release/version.ts`.
 *
 * @example
 * ```ts
 * `ghcr.io/sluice/sluice:${SLUICE_RELEASE}`; // "ghcr.io/sluice/sluice:0.1.0"
 * ```
 * @module
 */
import { SLUICE_VERSION } from "../common/release/version.ts";

/** Default release version of the stage binaries and the image. */
export const SLUICE_RELEASE: string = SLUICE_VERSION;

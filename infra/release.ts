/**
 * The release the infrastructure deploys by default: the container image tag and the artifacts
 * path (`s3://<artifacts>/sluice/<release>/`) both default to it.
 *
 * @example
 * ```ts
 * `ghcr.io/sluice/sluice:${SLUICE_RELEASE}`; // "ghcr.io/sluice/sluice:0.1.0"
 * ```
 * @module
 */

/** Default release version of the stage binaries and the image. */
export const SLUICE_RELEASE = "0.1.0";

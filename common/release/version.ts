/**
 * Sluice's release version and the container image that carries it. The train launcher's k8s
 * Job, the Kubernetes objects under infra/k8s and the image builds all name {@link DEFAULT_IMAGE}.
 *
 * @example
 * ```ts
 * import { DEFAULT_IMAGE, SLUICE_VERSION } from "./version.ts";
 * DEFAULT_IMAGE; // "ghcr.io/sluice/sluice:0.1.0"
 * SLUICE_VERSION; // "0.1.0"
 * ```
 * @module
 */

/** The release version (semver). */
export const SLUICE_VERSION = "0.1.0";

/** Where the stage images are published. */
export const IMAGE_REPOSITORY = "ghcr.io/sluice/sluice";

/** The image of this release: `ghcr.io/sluice/sluice:<version>`. */
export const DEFAULT_IMAGE = `${IMAGE_REPOSITORY}:${SLUICE_VERSION}`;

/**
 * The suite's rule for tests that need a tool, a privilege or a device: outside CI a missing
 * requirement skips the test with the reason printed; under `CI=true` it is a failure, because
 * `.ci/run` installs everything CI needs and a skip there would hide a broken behaviour.
 *
 * @example
 * ```ts
 * const noTorch = skipUnless("torch", torchOk ? null : "python3 cannot import torch");
 * Deno.test({ name: "needs torch", ignore: noTorch, fn: () => {} });
 * ```
 * @module
 */

/** The requirement is missing and `CI=true`: the suite must not pass by skipping. */
export class RequirementMissingError extends Error {
  constructor(what: string, reason: string) {
    super(`${what}: ${reason}; CI=true makes a missing requirement a failure, not a skip`);
    this.name = "RequirementMissingError";
  }
}

/**
 * Returns whether to skip: `false` when `missing` is null (the requirement is there). When it
 * is missing, warns and returns `true`, or throws {@link RequirementMissingError} under
 * `CI=true` (`env` defaults to the process environment).
 *
 * @example
 * ```ts
 * const ignore = skipUnless("systemd-analyze", hasAnalyze ? null : "not installed");
 * ```
 */
export function skipUnless(
  what: string,
  missing: string | null,
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): boolean {
  if (missing === null) return false;
  if (env.CI === "true") throw new RequirementMissingError(what, missing);
  console.warn(`${what}: skipped: ${missing}`);
  return true;
}

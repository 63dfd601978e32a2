/**
 * A stage CLI's mode argument (`sluice-normalize once`): the first positional, `run` when there
 * is none. A mode not in the list, or more positionals than allowed, prints the usage error to
 * stderr and gives `null` (the caller exits with its usage status).
 *
 * @example
 * ```ts
 * const mode = modeArgument("sluice-normalize", ["run", "once", "backfill"], ["once"]);
 * if (mode === null) return EXIT_USAGE; // mode: "once"
 * ```
 * @module
 */

/**
 * The mode named by `positionals[0]` (default `run`), or `null` after printing why not.
 * `maxPositionals` is how many positionals the mode may take in all (default 1).
 */
export function modeArgument<M extends string>(
  program: string,
  modes: readonly M[],
  positionals: readonly string[],
  maxPositionals: (mode: M) => number = () => 1,
): M | null {
  const mode = (positionals[0] ?? "run") as M;
  if (!modes.includes(mode) || positionals.length > maxPositionals(mode)) {
    console.error(
      `${program}: expected one mode of ${modes.join(", ")}, found ${
        JSON.stringify(positionals)
      }\nRun with --help for usage.`,
    );
    return null;
  }
  return mode;
}

/**
 * The configuration error: every problem found, each naming the field, where its value came from,
 * the value (redacted when secret) and what was expected.
 *
 * @example
 * ```ts
 * try {
 *   await loadConfig({ stage: "ingest", stageSchema });
 * } catch (err) {
 *   if (err instanceof ConfigError) for (const i of err.issues) console.error(i.path, i.source);
 * }
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";

/** One problem with one setting. */
export interface ConfigIssue {
  /** Dotted field path as written in the config file, e.g. `worker.concurrency`, `ingest.batchSize`. */
  path: string;
  /** Where the value came from: `env SLUICE_X`, `file /etc/sluice.json`, `flag --x`, `default`, `argv`. */
  source: string;
  /** The offending value as given (already redacted when secret); absent when there is none. */
  found?: string;
  /** What was expected, e.g. `expected an integer >= 1`. */
  expected: string;
}

/** Formats one issue as a single line. */
export function formatIssue(i: ConfigIssue): string {
  const found = i.found === undefined ? "" : `, found ${i.found}`;
  return `${i.path || "(root)"}: ${i.expected}${found} (from ${i.source})`;
}

/** The configuration could not be loaded; `issues` lists every problem, not only the first. */
export class ConfigError extends SluiceError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    const n = issues.length;
    super(
      "invalid_config",
      `invalid configuration (${n} problem${n === 1 ? "" : "s"}):\n` +
        issues.map((i) => `  - ${formatIssue(i)}`).join("\n"),
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

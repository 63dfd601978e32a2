/**
 * The run tags MLflow's own clients set, so that the MLflow UI shows who ran a training, from
 * what, and at which commit: `mlflow.user`, `mlflow.source.name`, `mlflow.source.type` and, when
 * known, `mlflow.source.git.commit`.
 *
 * The commit comes from `SLUICE_GIT_COMMIT` (set it in images built from a checkout) or from
 * `git rev-parse HEAD` in the directory Sluice runs from, when that is a git checkout.
 *
 * @example
 * ```ts
 * const tags = await runSourceTags({ sourceName: "sluice-train", sourceType: "LOCAL" });
 * // { "mlflow.user": "ops", "mlflow.source.name": "sluice-train", "mlflow.source.type": "LOCAL",
 * //   "mlflow.source.git.commit": "5bf8efd…" }
 * ```
 * @module
 */
import { userInfo } from "node:os";

/** MLflow's source types (`mlflow.entities.SourceType`). */
export type MlflowSourceType = "LOCAL" | "JOB" | "PROJECT" | "NOTEBOOK" | "UNKNOWN";

/** What {@link runSourceTags} needs. */
export interface RunSourceOptions {
  sourceName: string;
  sourceType: MlflowSourceType;
  /** Environment lookup (default `Deno.env.get`). */
  env?: (name: string) => string | undefined;
  /** Directory to ask git in (default the cwd); null skips git. */
  gitDir?: string | null;
}

/** The user running this process: `USER`/`LOGNAME`, else the OS account name. */
export function currentUser(env: (name: string) => string | undefined): string {
  const fromEnv = env("USER") || env("LOGNAME");
  if (fromEnv) return fromEnv;
  try {
    return userInfo().username;
  } catch {
    return "unknown";
  }
}

async function gitCommit(dir: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      cwd: dir,
      stdout: "piped",
      stderr: "null",
    }).output();
    const sha = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{40}$/.test(sha) ? sha : undefined;
  } catch {
    return undefined; // no git binary
  }
}

/** The tags (see the module docs). */
export async function runSourceTags(o: RunSourceOptions): Promise<Record<string, string>> {
  const env = o.env ?? ((k: string) => Deno.env.get(k));
  const tags: Record<string, string> = {
    "mlflow.user": currentUser(env),
    "mlflow.source.name": o.sourceName,
    "mlflow.source.type": o.sourceType,
  };
  const fromEnv = env("SLUICE_GIT_COMMIT")?.trim();
  const commit = fromEnv ||
    (o.gitDir === null ? undefined : await gitCommit(o.gitDir ?? Deno.cwd()));
  if (commit) tags["mlflow.source.git.commit"] = commit;
  return tags;
}

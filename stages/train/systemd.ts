/**
 * systemd definitions for a multi-host run: one template unit `sluice-train-node@.service` (the
 * instance is the rank: `systemctl start sluice-train-node@0` on the first host, `@1` on the second,
 * …) and one environment file per rank with the torch.distributed rendezvous (`RANK`,
 * `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`). Shared settings (manifest, stores, MLflow) come
 * from the host's own environment file (`envFile`).
 *
 * @example
 * ```ts
 * const defs = renderSystemd(plan, { binPath: "/usr/local/bin/sluice-train", envFile: "/etc/sluice/sluice.env",
 *   masterAddr: "gpu-1.internal", masterPort: 29500 });
 * defs.unit; // "[Unit]\nDescription=…"
 * defs.envFiles[1]; // "RANK=1\nWORLD_SIZE=2\n…"
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import type { LaunchPlan } from "./training_inputs.ts";

/** The template unit's file name. */
export const UNIT_NAME = "sluice-train-node@.service";
/** Where the units expect the per-rank environment files on each host. */
export const RANK_ENV_DIR = "/etc/sluice/train";

/** The user units run as unless configured otherwise (create it on the hosts). */
export const DEFAULT_UNIT_USER = "sluice";

export interface SystemdOptions {
  binPath: string;
  /** The host's shared settings (SLUICE_*, AWS_*, MLFLOW_*). */
  envFile: string;
  masterAddr: string;
  masterPort: number;
  /** Where the per-rank files are installed (default {@link RANK_ENV_DIR}). */
  rankEnvDir?: string;
  /** The user the trainer runs as (default {@link DEFAULT_UNIT_USER}; never root unless asked). */
  user?: string;
}

export interface SystemdDefinitions {
  /** `sluice-train-node@.service` content (the same name as infra/systemd's template). */
  unit: string;
  /** `rank-<r>.env` content per rank. */
  envFiles: string[];
  /** Where each env file goes on the hosts. */
  envPaths: string[];
}

/**
 * A plain unit-file value: one line, `%` doubled (specifiers), and no backslash, which systemd
 * would take as a line continuation at the end of a line.
 */
function unitValue(what: string, v: string): string {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(v)) {
    throw new SluiceError(
      "invalid_unit",
      `${what}: expected one line without control characters, found ${JSON.stringify(v)}`,
    );
  }
  if (v.includes("\\")) {
    throw new SluiceError(
      "invalid_unit",
      `${what}: expected no backslash (a unit-file line continuation), found ${JSON.stringify(v)}`,
    );
  }
  return v.replace(/%/g, "%%");
}

/**
 * One word of an `ExecStart=` command line: `%` doubled (specifiers), `$` doubled in arguments
 * (variable expansion; the executable's path is not expanded), and quoted with `\\` and `"`
 * escaped when it holds spaces, quotes or backslashes.
 */
function execWord(what: string, v: string, executable = false): string {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(v)) {
    throw new SluiceError(
      "invalid_unit",
      `${what}: expected one line without control characters, found ${JSON.stringify(v)}`,
    );
  }
  const specifiers = v.replace(/%/g, "%%");
  const word = executable ? specifiers : specifiers.replace(/\$/g, "$$$$");
  if (!/[\s"'\\]/.test(word)) return word;
  return `"${word.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A user name for `User=` (root only when asked for by name). */
function userValue(v: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/i.test(v)) {
    throw new SluiceError(
      "invalid_unit",
      `user: expected a user name like sluice, found ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** Environment-file values: quoted so spaces and `#` survive. */
function envValue(what: string, v: string): string {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(v)) {
    throw new SluiceError("invalid_unit", `${what}: expected one line, found a line break`);
  }
  return JSON.stringify(v).replace(/\$/g, "\\$");
}

/**
 * Renders the template unit and the per-rank environment files for `plan`.
 *
 * @example
 * ```ts
 * renderSystemd(plan, { binPath, envFile, masterAddr: "10.0.0.5", masterPort: 29500 }).envFiles.length; // nodes
 * ```
 */
export function renderSystemd(plan: LaunchPlan, opts: SystemdOptions): SystemdDefinitions {
  const dir = opts.rankEnvDir ?? RANK_ENV_DIR;
  const nodes = plan.settings.nodes;
  const unit = [
    "[Unit]",
    `Description=Sluice trainer rank %i (snapshot ${unitValue("snapshot", plan.snapshotId)}, ` +
    `${unitValue("layout", plan.layout)}, ${nodes} ranks)`,
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=exec",
    `User=${userValue(opts.user ?? DEFAULT_UNIT_USER)}`,
    `EnvironmentFile=${unitValue("envFile", opts.envFile)}`,
    `EnvironmentFile=${unitValue("rankEnvDir", dir)}/rank-%i.env`,
    `ExecStart=${execWord("binPath", opts.binPath, true)} node --plan ${
      execWord("plan key", plan.keys.launch)
    } --rank %i`,
    // A rank that dies must not come back alone: the others have already failed the rendezvous.
    "Restart=no",
    "KillMode=mixed",
    "KillSignal=SIGTERM",
    "TimeoutStopSec=60",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
  const envFiles: string[] = [];
  const envPaths: string[] = [];
  for (let r = 0; r < nodes; r++) {
    const vars: [string, string][] = [
      ["RANK", String(r)],
      ["WORLD_SIZE", String(nodes)],
      ["LOCAL_RANK", "0"],
      ["LOCAL_WORLD_SIZE", "1"],
      ["MASTER_ADDR", opts.masterAddr],
      ["MASTER_PORT", String(opts.masterPort)],
      // The installed template `sluice-train-node@.service` reads the plan key from here.
      ["SLUICE_TRAIN_PLAN", plan.keys.launch],
    ];
    envFiles.push(
      `# ${plan.snapshotId} ${plan.layout}: rank ${r} of ${nodes}\n` +
        vars.map(([k, v]) => `${k}=${envValue(k, v)}`).join("\n") + "\n",
    );
    envPaths.push(`${dir}/rank-${r}.env`);
  }
  return { unit, envFiles, envPaths };
}

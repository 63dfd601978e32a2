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

export interface SystemdOptions {
  binPath: string;
  /** The host's shared settings (SLUICE_*, AWS_*, MLFLOW_*). */
  envFile: string;
  masterAddr: string;
  masterPort: number;
  /** Where the per-rank files are installed (default {@link RANK_ENV_DIR}). */
  rankEnvDir?: string;
  /** The user the trainer runs as (default: unset = root). */
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

/** systemd unit files treat `%` and `\` specially and lines cannot be continued by accident. */
function unitValue(what: string, v: string): string {
  if (/[\n\r]/.test(v)) {
    throw new SluiceError("invalid_unit", `${what}: expected one line, found a line break`);
  }
  return v.replace(/%/g, "%%");
}

/** Environment-file values: quoted so spaces and `#` survive. */
function envValue(what: string, v: string): string {
  if (/[\n\r]/.test(v)) {
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
    ...(opts.user ? [`User=${unitValue("user", opts.user)}`] : []),
    `EnvironmentFile=${unitValue("envFile", opts.envFile)}`,
    `EnvironmentFile=${unitValue("rankEnvDir", dir)}/rank-%i.env`,
    `ExecStart=${unitValue("binPath", opts.binPath)} node --plan ${
      unitValue("plan key", plan.keys.launch)
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

/**
 * `sluice-train models …`: manage the registered model from the command line, on the configured
 * tracker (an MLflow server via `MLFLOW_TRACKING_URI`, else the embedded file store).
 *
 * ```
 * sluice-train models list                         versions, aliases, mAP@0.5, approval
 * sluice-train models show VERSION|@ALIAS          one version, its run's params and metrics, and
 *                                                  its live review quality (manifest reviews)
 * sluice-train models promote VERSION [--alias A]  point alias A (default: the approved alias) at it
 * sluice-train models approve VERSION [--tag k=v]  tag it approved (default approved=true)
 * sluice-train models rollback [--alias A]         move A back to the version it replaced
 * sluice-train models compare A B                  metrics side by side, AP per class
 * ```
 *
 * @example
 * ```ts
 * // deno run -A stages/train/main.ts models promote 7 --alias champion
 * const code = await modelsMain(["promote", "7", "--alias", "champion"]);
 * ```
 * @module
 */
import { EXIT_USAGE, parseStageArgs } from "../../common/config/mod.ts";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import { openTracker } from "../../common/mlflow/mod.ts";
import type { Tracker } from "../../common/mlflow/tracker.ts";
import { TrainSettingsSchema } from "./config.ts";
import { openManifest } from "../../common/manifest/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import { formatReviewQuality, reviewQualityOf } from "./models_review.ts";
import {
  approveVersion,
  compareVersions,
  listVersions,
  promoteVersion,
  rollbackAlias,
  showVersion,
} from "./models.ts";

const ACTIONS = ["list", "show", "promote", "approve", "rollback", "compare"] as const;
type Action = typeof ACTIONS[number];
const ARITY: Record<Action, number> = {
  list: 0,
  show: 1,
  promote: 1,
  approve: 1,
  rollback: 0,
  compare: 2,
};

const USAGE = `sluice-train models <list|show|promote|approve|rollback|compare> [args] [options]

Manages the registered model (mlflow.modelName) on the configured tracker: the MLflow server
named by MLFLOW_TRACKING_URI, else the embedded file store in mlflow.localDir.

  list                        every version: aliases, status, mAP@0.5, approval, run
  show VERSION|@ALIAS         one version with its run's params and latest metrics, and its
                              live review quality from the manifest: acceptance, boxes by edit,
                              precision / recall of its pre-annotations per class (IoU 0.5)
  promote VERSION [--alias A] point alias A at VERSION (default A: the approved alias, champion)
  approve VERSION [--tag k=v] tag VERSION approved (default approved=true, what infer looks for
                              when the alias is unset)
  rollback [--alias A]        move alias A back to the version it replaced
  compare A B                 the two versions' metrics side by side and AP per class

VERSION is a number (7, v7) or an alias (@champion). --json prints JSON instead of a table.`;

const FLAGS = {
  alias: { type: "string", description: "models promote/rollback: the alias to move" },
  tag: { type: "string", description: "models approve: the approval tag as key=value" },
  json: { type: "boolean", description: "models: print JSON instead of a table" },
} as const;

function fmt(v: number | null | undefined): string {
  return v === null || v === undefined ? "-" : Number.isFinite(v) ? v.toFixed(4) : String(v);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** Runs one `models` action against `tracker`; returns what to print (text or JSON value). */
export async function runModelsAction(
  tracker: Tracker,
  o: {
    modelName: string;
    action: Action;
    args: string[];
    alias: string;
    tag: { key: string; value: string };
    /** `show`: the manifest whose reviews give the version's live review quality. */
    manifest?: ManifestStore;
  },
): Promise<{ text: string; json: unknown }> {
  const name = o.modelName;
  switch (o.action) {
    case "list": {
      const vs = await listVersions(tracker, name);
      const rows = [["version", "aliases", "status", "map50", "approved", "created", "run"]];
      for (const v of vs) {
        rows.push([
          v.version,
          v.aliases.join(",") || "-",
          v.status,
          fmt(v.map50),
          v.approved ? "yes" : "no",
          v.created,
          v.runId || "-",
        ]);
      }
      const text = vs.length ? table(rows) : `model ${name}: no versions registered`;
      return { text, json: vs };
    }
    case "show": {
      const { version, run } = await showVersion(tracker, name, o.args[0]);
      const lines = [
        `model ${name} version ${version.version} (${version.status})`,
        `  aliases: ${version.aliases.join(", ") || "none"}`,
        `  source:  ${version.source}`,
        `  run:     ${version.runId || "none"}`,
        `  created: ${new Date(version.creationTimestamp).toISOString()}`,
        `  tags:    ${
          Object.entries(version.tags).map(([k, v]) => `${k}=${v}`).sort().join(", ") || "none"
        }`,
      ];
      if (run) {
        lines.push(`  run status: ${run.info.status}`);
        for (const [k, m] of Object.entries(run.metrics).sort()) {
          lines.push(`  metric ${k} = ${fmt(m.value)}`);
        }
        for (const [k, v] of Object.entries(run.params).sort()) lines.push(`  param ${k} = ${v}`);
      }
      if (!o.manifest) return { text: lines.join("\n"), json: { version, run } };
      const review = await reviewQualityOf(o.manifest, name, version.version);
      lines.push(...formatReviewQuality(review));
      return { text: lines.join("\n"), json: { version, run, review } };
    }
    case "promote": {
      const r = await promoteVersion(tracker, name, o.args[0], o.alias);
      const text = r.from === r.to
        ? `model ${name}: ${r.alias} already points at version ${r.to}`
        : `model ${name}: ${r.alias} moved from ${r.from ?? "none"} to version ${r.to}`;
      return { text, json: r };
    }
    case "approve": {
      const r = await approveVersion(tracker, name, o.args[0], o.tag);
      return { text: `model ${name}: version ${r.version} tagged ${r.tag}`, json: r };
    }
    case "rollback": {
      const r = await rollbackAlias(tracker, name, o.alias);
      return {
        text: `model ${name}: ${r.alias} rolled back from version ${r.from} to ${r.to}`,
        json: r,
      };
    }
    case "compare": {
      const r = await compareVersions(tracker, name, o.args[0], o.args[1]);
      const rows = [["metric", `v${r.a}`, `v${r.b}`, "b - a"]];
      for (const row of r.rows) {
        const d = row.a !== null && row.b !== null ? row.b - row.a : null;
        rows.push([row.metric, fmt(row.a), fmt(row.b), d === null ? "-" : d.toFixed(4)]);
      }
      return { text: table(rows), json: r };
    }
  }
}

/** The `models` entry point (argv after `models`); returns the exit code. */
export async function modelsMain(argv: readonly string[]): Promise<number> {
  const { config, positionals, flags } = await parseStageArgs(argv, {
    stage: "train",
    stageSchema: TrainSettingsSchema,
    usage: USAGE,
    flags: FLAGS,
    allowPositionals: true,
  });
  const action = positionals[0] as Action;
  if (!(ACTIONS as readonly string[]).includes(action)) {
    console.error(
      `sluice-train models: expected one of ${ACTIONS.join(", ")}, found ${
        JSON.stringify(positionals[0] ?? null)
      }\nRun "sluice-train models --help" for usage.`,
    );
    return EXIT_USAGE;
  }
  const args = positionals.slice(1);
  if (args.length !== ARITY[action]) {
    console.error(
      `sluice-train models ${action}: expected ${ARITY[action]} argument(s), found ${
        JSON.stringify(args)
      }`,
    );
    return EXIT_USAGE;
  }
  const tagText = flags.tag ?? "approved=true";
  const eq = tagText.indexOf("=");
  if (eq <= 0) {
    console.error(
      `sluice-train models: --tag expected key=value, found ${JSON.stringify(tagText)}`,
    );
    return EXIT_USAGE;
  }
  const tracker = openTracker({
    trackingUri: config.mlflow.trackingUri,
    localDir: config.mlflow.localDir,
    token: config.mlflow.token,
    username: config.mlflow.username,
    password: config.mlflow.password,
    retryBudgetSeconds: config.mlflow.retryBudgetSeconds,
  });
  let manifest: ManifestStore | undefined;
  try {
    // `show` adds the version's live review quality from the manifest's reviews.
    if (action === "show") manifest = await openManifest(config.manifest.url);
    const out = await runModelsAction(tracker, {
      manifest,
      modelName: config.mlflow.modelName,
      action,
      args,
      alias: flags.alias ?? config.stage.approvedAlias,
      tag: { key: tagText.slice(0, eq), value: tagText.slice(eq + 1) },
    });
    console.log(flags.json ? JSON.stringify(out.json, null, 2) : out.text);
    return 0;
  } catch (err) {
    console.error(`sluice-train models ${action}: ${reasonOf(err)}: ${messageOf(err)}`);
    return 1;
  } finally {
    await tracker.close();
    await manifest?.close();
  }
}

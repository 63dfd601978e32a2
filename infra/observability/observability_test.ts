import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_HTTP_PORTS, STAGES } from "../../common/config/mod.ts";
import { createStageMetrics, promtoolCheck } from "../../common/metrics/mod.ts";
import { createInferMetrics } from "../../stages/infer/metrics.ts";
import { createIngestMetrics } from "../../stages/ingest/metrics.ts";
import { createNormalizeMetrics } from "../../stages/normalize/metrics.ts";
import { createTrainMetrics } from "../../stages/train/train_metrics.ts";

const dir = fileURLToPath(new URL(".", import.meta.url));

async function promtool(
  args: string[],
  cwd = dir,
): Promise<{ ok: boolean; out: string } | null> {
  try {
    const r = await new Deno.Command("promtool", { args, cwd, stdout: "piped", stderr: "piped" })
      .output();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

const havePromtool = (await promtool(["--version"])) !== null;
if (!havePromtool && Deno.env.get("CI") === "true") {
  throw new Error("promtool not found: CI must install Debian's `prometheus` package");
}

/** Each stage's real registry, as its stage creates it, with every labelled series touched. */
async function stageExpositions(): Promise<Record<string, string>> {
  const infer = createInferMetrics();
  infer.setModel({ name: "det", version: "3", alias: "champion" });
  infer.setQueueDepth({ pending: 1 });
  const ingest = createIngestMetrics(createStageMetrics("ingest"));
  const normalize = createNormalizeMetrics();
  const train = createTrainMetrics();
  const out: Record<string, string> = {};
  for (
    const [stage, m] of [
      ["ingest", ingest.stage],
      ["normalize", normalize],
      ["train", train.stage],
      ["infer", infer],
    ] as const
  ) {
    m.itemsTotal.inc({ result: "done" });
    m.itemDurationSeconds.observe(0.2);
    m.stagingBytes.set(0);
    m.stagingFreeBytes.set(1e10);
    m.queueDepth.set({ state: "pending" }, 0);
    out[stage] = await m.metrics();
  }
  return out;
}

/** Metric family names in an exposition (`# TYPE` lines), with histogram series names. */
function familyNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]);
    if (m[2] === "histogram") {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(m[1] + suffix);
    }
  }
  return names;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
}

type Dashboard = Record<string, unknown> & {
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: string }[] };
};

async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await Deno.readTextFile(`${dir}/grafana/sluice_pipeline.json`)) as Dashboard;
}

Deno.test({
  name: "promtool accepts the scrape config and the alert rules, and the rules' unit tests pass",
  ignore: !havePromtool,
  async fn() {
    const config = await promtool(["check", "config", "prometheus.yml"]);
    assert.ok(config?.ok, config?.out);
    const rules = await promtool(["check", "rules", "sluice_alerts.yml"]);
    assert.ok(rules?.ok, rules?.out);
    assert.match(rules!.out, /SUCCESS: \d+ rules found/);
    // Each alert fires on series shaped like the stages' metrics, with the expected labels.
    const tests = await promtool(["test", "rules", "sluice_alerts_test.yml"]);
    assert.ok(tests?.ok, tests?.out);
    const alerts = [
      ...(await Deno.readTextFile(`${dir}/sluice_alerts.yml`)).matchAll(/- alert: (\w+)/g),
    ].map((m) => m[1]);
    const tested = await Deno.readTextFile(`${dir}/sluice_alerts_test.yml`);
    for (const a of alerts) {
      assert.ok(tested.includes(`alertname: ${a}\n`), `sluice_alerts_test.yml: no case for ${a}`);
    }
  },
});

Deno.test("the scrape config names one job per stage on the stage's default port", async () => {
  const text = await Deno.readTextFile(`${dir}/prometheus.yml`);
  for (const stage of STAGES) {
    assert.match(text, new RegExp(`job_name: sluice-${stage}\\n`));
    assert.match(
      text,
      new RegExp(
        `127\\.0\\.0\\.1:${DEFAULT_HTTP_PORTS[stage]}"\\]\\n\\s+labels: \\{ stage: ${stage} \\}`,
      ),
    );
  }
});

Deno.test("the Grafana dashboard has the fields Grafana requires and covers every stage", async () => {
  const dash = await dashboard();
  for (const field of ["uid", "title", "schemaVersion", "panels", "time", "templating"]) {
    assert.ok(field in dash, `dashboard: expected field ${field}`);
  }
  // Provisioned dashboards are identified by uid; a numeric id would clash between instances.
  assert.ok(!("id" in dash) || dash.id === null, "dashboard: expected no numeric id");
  assert.match(String(dash.uid), /^[A-Za-z0-9_-]{1,40}$/, "uid: at most 40 URL-safe characters");
  assert.equal(typeof dash.schemaVersion, "number");
  const variables = new Set(dash.templating.list.map((v) => v.name));
  const ids = new Set<number>();
  for (const p of dash.panels) {
    assert.ok(Number.isInteger(p.id) && !ids.has(p.id), `panel ${p.title}: unique integer id`);
    ids.add(p.id);
    assert.ok(p.type && p.title, `panel ${p.id}: type and title`);
    const g = p.gridPos;
    assert.ok(
      g && g.w > 0 && g.w <= 24 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24,
      `panel ${p.title}: gridPos`,
    );
    if (p.type !== "row") {
      assert.ok(p.targets?.length, `panel ${p.title}: at least one query`);
      for (const t of p.targets!) assert.ok(t.refId && t.expr, `panel ${p.title}: refId and expr`);
      for (const uid of [p.datasource?.uid, ...p.targets!.map((t) => t.datasource?.uid)]) {
        const v = uid?.match(/^\$\{(\w+)\}$/)?.[1];
        assert.ok(!v || variables.has(v), `panel ${p.title}: datasource \${${v}} is not defined`);
      }
    }
  }
  // No two panels overlap on the grid.
  const cells = new Set<string>();
  for (const p of dash.panels) {
    for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        assert.ok(!cells.has(`${x},${y}`), `panel ${p.title} overlaps another at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
  }
  const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr).join("\n");
  for (const stage of STAGES) {
    for (
      const metric of [
        "items_total",
        "item_duration_seconds_bucket",
        "queue_depth",
        "staging_bytes",
        "staging_free_bytes",
        "errors_total",
      ]
    ) {
      assert.ok(
        exprs.includes(`sluice_${stage}_${metric}`),
        `dashboard: expected sluice_${stage}_${metric}`,
      );
    }
  }
  assert.ok(exprs.includes("sluice_infer_model_info"));
  // The model: training loss and validation mAP, inference latency per batch, predictions per
  // class, the score distribution, event lag and the served version.
  for (
    const metric of [
      "sluice_train_loss",
      "sluice_train_val_map",
      "sluice_infer_inference_seconds_bucket",
      "sluice_infer_predictions_by_class_total",
      "sluice_infer_detection_score_bucket",
      "sluice_ingest_event_lag_seconds_bucket",
    ]
  ) assert.ok(exprs.includes(metric), `dashboard: expected a panel on ${metric}`);

  const provisioning = await Deno.readTextFile(`${dir}/grafana/provisioning.yml`);
  assert.match(provisioning, /^apiVersion: 1$/m);
  assert.match(provisioning, /^\s+type: file$/m);
  assert.match(provisioning, /^\s+path: \/\S+$/m);
});

Deno.test("every metric the dashboard and the alerts query is one a stage exports", async () => {
  const expositions = await stageExpositions();
  const known = new Set<string>();
  for (const text of Object.values(expositions)) for (const n of familyNames(text)) known.add(n);
  const dash = await dashboard();
  const queried = [
    ...dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr),
    await Deno.readTextFile(`${dir}/sluice_alerts.yml`),
  ].join("\n");
  const names = new Set([...queried.matchAll(/\bsluice_[a-z0-9_]+/g)].map((m) => m[0]));
  assert.ok(names.size > 20, `found only ${names.size} metric names`);
  for (const name of names) {
    assert.ok(known.has(name), `${name}: queried, but no stage registry defines it`);
  }
  // The alerts' name patterns each match every stage's family.
  for (const pattern of ["items_total", "queue_depth", "staging_free_bytes"]) {
    for (const stage of STAGES) assert.ok(known.has(`sluice_${stage}_${pattern}`));
  }
});

Deno.test({
  name: "promtool parses every dashboard query and accepts every stage's /metrics",
  ignore: !havePromtool,
  async fn() {
    const dash = await dashboard();
    const tmp = await mkdtemp(join(tmpdir(), "observability-"));
    try {
      // promtool has no query linter; recording rules get their expressions parsed.
      const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
      const rules = [
        "groups:",
        "  - name: dashboard",
        "    rules:",
        ...exprs.flatMap((e, i) => [
          `      - record: dashboard:query_${i}`,
          `        expr: ${JSON.stringify(e)}`,
        ]),
      ].join("\n") + "\n";
      await writeFile(join(tmp, "dashboard_rules.yml"), rules);
      const parsed = await promtool(["check", "rules", "dashboard_rules.yml"], tmp);
      assert.ok(parsed?.ok, parsed?.out);
      assert.match(parsed!.out, new RegExp(`SUCCESS: ${exprs.length} rules found`));

      for (const [stage, text] of Object.entries(await stageExpositions())) {
        const lint = await promtoolCheck(text, "promtool");
        assert.ok(lint.ok, `${stage}: ${lint.output}`);
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  },
});

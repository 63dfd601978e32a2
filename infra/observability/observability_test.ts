import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const STAGES = ["ingest", "normalize", "train", "infer"];

async function promtool(...args: string[]): Promise<{ ok: boolean; out: string } | null> {
  try {
    const r = await new Deno.Command("promtool", {
      args,
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

const havePromtool = (await promtool("--version")) !== null;
if (!havePromtool && Deno.env.get("CI") === "true") {
  throw new Error("promtool not found: CI must install Debian's `prometheus` package");
}

Deno.test({
  name: "promtool accepts the scrape config and the alert rules",
  ignore: !havePromtool,
  async fn() {
    const config = await promtool("check", "config", "prometheus.yml");
    assert.ok(config?.ok, config?.out);
    const rules = await promtool("check", "rules", "sluice_alerts.yml");
    assert.ok(rules?.ok, rules?.out);
    assert.match(rules!.out, /SUCCESS: \d+ rules found/);
  },
});

Deno.test("the scrape config names one job per stage on its default port", async () => {
  const text = await Deno.readTextFile(`${dir}/prometheus.yml`);
  for (const [i, stage] of STAGES.entries()) {
    assert.match(text, new RegExp(`job_name: sluice-${stage}\\n`));
    assert.match(
      text,
      new RegExp(`127\\.0\\.0\\.1:${9101 + i}"\\]\\n\\s+labels: \\{ stage: ${stage} \\}`),
    );
  }
});

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; expr: string }[];
}

Deno.test("the Grafana dashboard has the fields Grafana requires and covers every stage", async () => {
  const dash = JSON.parse(
    await Deno.readTextFile(`${dir}/grafana/sluice_pipeline.json`),
  ) as Record<string, unknown> & { panels: Panel[] };
  for (const field of ["uid", "title", "schemaVersion", "panels", "time", "templating"]) {
    assert.ok(field in dash, `dashboard: expected field ${field}`);
  }
  assert.match(String(dash.uid), /^[A-Za-z0-9_-]{1,40}$/, "uid: at most 40 URL-safe characters");
  assert.equal(typeof dash.schemaVersion, "number");
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
    }
  }
  const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr).join("\n");
  for (const stage of STAGES) {
    for (
      const metric of [
        "items_total",
        "item_duration_seconds_bucket",
        "queue_depth",
        "staging_free_bytes",
      ]
    ) {
      assert.ok(
        exprs.includes(`sluice_${stage}_${metric}`),
        `dashboard: expected sluice_${stage}_${metric}`,
      );
    }
  }
  assert.ok(exprs.includes("sluice_infer_model_info"));
});

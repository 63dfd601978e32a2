import assert from "node:assert/strict";
import { SluiceError } from "../errors/mod.ts";
import { createStageMetrics } from "./stage_metrics.ts";
import { findPromtool, promtoolCheck } from "./promtool.ts";

/** `# TYPE` lines of an exposition: name → type. */
function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1], m[2]);
  return out;
}

/** The value of one sample line, e.g. `sluice_ingest_items_total{result="ok"}`. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

Deno.test("createStageMetrics", async (t) => {
  await t.step("common metrics are named sluice_<stage>_ with the right types", async () => {
    const m = createStageMetrics("ingest", { version: "1.2.3" });
    const text = await m.metrics();
    const ty = types(text);
    assert.equal(ty.get("sluice_ingest_items_total"), "counter");
    assert.equal(ty.get("sluice_ingest_item_duration_seconds"), "histogram");
    assert.equal(ty.get("sluice_ingest_queue_depth"), "gauge");
    assert.equal(ty.get("sluice_ingest_staging_bytes"), "gauge");
    assert.equal(ty.get("sluice_ingest_staging_free_bytes"), "gauge");
    assert.equal(ty.get("sluice_ingest_errors_total"), "counter");
    assert.equal(ty.get("sluice_ingest_build_info"), "gauge");
    assert.equal(sample(text, 'sluice_ingest_build_info{version="1.2.3"}'), 1);
    assert.equal(m.prefix, "sluice_ingest_");
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  });

  await t.step("recorded values appear in the exposition", async () => {
    const m = createStageMetrics("normalize");
    m.itemsTotal.inc({ result: "ok" }, 3);
    m.itemsTotal.inc({ result: "failed" });
    m.errorsTotal.inc({ reason: "decode_failed" });
    m.queueDepth.set({ state: "pending" }, 17);
    m.stagingFreeBytes.set(1e9);
    m.itemDurationSeconds.observe(0.3);
    m.itemDurationSeconds.observe(7);
    const text = await m.metrics();
    assert.equal(sample(text, 'sluice_normalize_items_total{result="ok"}'), 3);
    assert.equal(sample(text, 'sluice_normalize_items_total{result="failed"}'), 1);
    assert.equal(sample(text, 'sluice_normalize_errors_total{reason="decode_failed"}'), 1);
    assert.equal(sample(text, 'sluice_normalize_queue_depth{state="pending"}'), 17);
    assert.equal(sample(text, "sluice_normalize_staging_free_bytes"), 1e9);
    assert.equal(sample(text, 'sluice_normalize_item_duration_seconds_bucket{le="0.5"}'), 1);
    assert.equal(sample(text, 'sluice_normalize_item_duration_seconds_bucket{le="10"}'), 2);
    assert.equal(sample(text, "sluice_normalize_item_duration_seconds_count"), 2);
    assert.equal(sample(text, 'sluice_normalize_build_info{version="dev"}'), 1);
  });

  await t.step("registries are per stage", async () => {
    const a = createStageMetrics("train");
    const b = createStageMetrics("train");
    a.itemsTotal.inc({ result: "ok" });
    assert.equal(sample(await b.metrics(), 'sluice_train_items_total{result="ok"}'), undefined);
  });

  await t.step("process metrics report real values", async () => {
    const text = await createStageMetrics("infer").metrics();
    assert.ok(sample(text, "process_resident_memory_bytes")! > 1e6);
    assert.ok(sample(text, "process_cpu_seconds_total")! > 0);
    const start = sample(text, "process_start_time_seconds")!;
    assert.ok(Math.abs(start - Date.now() / 1000) < 3600, `start time ${start}`);
    assert.ok(sample(text, "process_open_fds")! > 2);
    const bare = await createStageMetrics("infer", { processMetrics: false }).metrics();
    assert.ok(!bare.includes("process_"));
  });

  await t.step("stage-specific metrics get the prefix", async () => {
    const m = createStageMetrics("normalize");
    m.counter({ name: "variants_total", help: "Variants written.", labelNames: ["variant"] })
      .inc({ variant: "640" });
    m.gauge({ name: "sluice_normalize_inflight", help: "Items in flight." }).set(2);
    m.histogram({ name: "decode_seconds", help: "Decode time.", buckets: [0.1, 1] }).observe(0.5);
    let collected = 0;
    m.gauge({
      name: "last_scrape_marker",
      help: "Set on scrape.",
      collect() {
        this.set(++collected);
      },
    });
    const text = await m.metrics();
    assert.equal(sample(text, 'sluice_normalize_variants_total{variant="640"}'), 1);
    assert.equal(sample(text, "sluice_normalize_inflight"), 2);
    assert.equal(sample(text, 'sluice_normalize_decode_seconds_bucket{le="1"}'), 1);
    assert.equal(sample(text, "sluice_normalize_last_scrape_marker"), 1);
  });

  await t.step("bad names are refused with the reason", () => {
    const m = createStageMetrics("ingest");
    const refused = (fn: () => unknown, re: RegExp) =>
      assert.throws(
        fn,
        (e: unknown) =>
          e instanceof SluiceError && e.code === "invalid_metric" && re.test(e.message),
      );
    refused(() => m.counter({ name: "bytes", help: "x" }), /ending in _total/);
    refused(() => m.gauge({ name: "open_total", help: "x" }), /no _total suffix/);
    refused(() => m.counter({ name: "sluice_train_x_total", help: "x" }), /prefix sluice_ingest_/);
    refused(() => m.gauge({ name: "Bad-Name", help: "x" }), /lower-case/);
    refused(() => m.histogram({ name: "x_count", help: "x" }), /_count/);
    refused(() => m.gauge({ name: "queue_depth", help: "x" }), /already registered/);
    refused(() => m.gauge({ name: "g", help: "x", labelNames: ["le"] }), /label "le"/);
    refused(() => createStageMetrics("In Gest"), /stage name/);
  });
});

const promtool = await findPromtool();
const ci = Deno.env.get("CI") === "true";
if (!promtool && !ci) {
  console.warn("promtool not found: skipping the promtool lint (apt-get install -y prometheus)");
}

Deno.test({
  name: "the exposition passes promtool check metrics",
  ignore: !promtool && !ci,
  fn: async (t) => {
    assert.ok(promtool, "promtool is required when CI=true: apt-get install -y prometheus");

    await t.step("the lint can fail", async () => {
      const bad = "# HELP x_total A gauge.\n# TYPE x_total gauge\nx_total 1\n";
      const r = await promtoolCheck(bad, promtool);
      assert.equal(r.ok, false);
      assert.match(r.output, /non-counter metrics should not have "_total" suffix/);
    });

    await t.step("a stage registry with every kind of metric in use passes", async () => {
      const m = createStageMetrics("ingest", { version: "0.1.0" });
      m.itemsTotal.inc({ result: "ok" });
      m.errorsTotal.inc({ reason: "not_found" });
      m.queueDepth.set({ state: "leased" }, 3);
      m.stagingBytes.set(123);
      m.itemDurationSeconds.observe(1.5);
      m.counter({ name: "bytes_read_total", help: "Bytes read from the source." }).inc(10);
      m.histogram({ name: "download_seconds", help: "Download time." }).observe(0.2);
      const r = await promtoolCheck(await m.metrics(), promtool);
      assert.ok(r.ok, r.output);
    });
  },
});

import assert from "node:assert/strict";
import { createStageMetrics, findPromtool, promtoolCheck } from "../../common/metrics/mod.ts";
import { createIngestMetrics } from "./metrics.ts";

const promtool = await findPromtool();

Deno.test("ingest metrics are named sluice_ingest_*, registered once per registry", () => {
  const stage = createStageMetrics("ingest", { processMetrics: false });
  const m = createIngestMetrics(stage);
  assert.equal(createIngestMetrics(stage), m, "a second stage on one registry shares the metrics");
  assert.notEqual(createIngestMetrics(createStageMetrics("ingest", { processMetrics: false })), m);
});

Deno.test({
  name: "ingest metrics pass promtool check metrics",
  ignore: promtool === undefined,
  fn: async () => {
    const stage = createStageMetrics("ingest", { processMetrics: false });
    const m = createIngestMetrics(stage);
    m.objectsSeen.inc({ via: "list" });
    m.foundByReconcile.inc();
    m.failures.inc({ reason: "corrupt_image" });
    m.events.inc({ source: "webhook", result: "created" });
    m.eventLag.observe({ source: "sqs" }, 0.3);
    m.sqsMessages.inc({ result: "deleted" });
    m.annotationImports.inc({ format: "coco", result: "imported" });
    m.annotationRecords.inc({ result: "matched" });
    m.annotationBoxes.inc({ outcome: "clamped" });
    const text = await stage.metrics();
    for (
      const name of [
        "found_by_reconcile_total",
        "objects_ingested_total",
        "event_lag_seconds",
        "fused_renders_total",
      ]
    ) {
      assert.match(text, new RegExp(`# TYPE sluice_ingest_${name} `));
    }
    const r = await promtoolCheck(text, promtool!);
    assert.ok(r.ok, r.output);
  },
});

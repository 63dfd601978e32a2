// Test child for serve_stage_test.ts: serves a stage handler on 127.0.0.1, prints the port, and
// runs until SIGTERM. Argument: JSON HttpLimits.
import { createLogger } from "../../log/mod.ts";
import { createStageMetrics } from "../../metrics/mod.ts";
import { createStageHandler } from "../stage_handler.ts";
import { serveStage } from "../serve_stage.ts";

const limits = JSON.parse(Deno.args[0] ?? "{}");
const log = createLogger({ stage: "ingest", json: true, level: "warn" });
const handler = createStageHandler({
  stage: "ingest",
  metrics: createStageMetrics("ingest", { processMetrics: false }),
  log,
});
const ac = new AbortController();
Deno.addSignalListener("SIGTERM", () => ac.abort());
const server = serveStage(handler, {
  hostname: "127.0.0.1",
  port: 0,
  signal: ac.signal,
  log,
  limits,
});
console.log(JSON.stringify({ port: server.addr.port }));
await server.finished;
console.log(JSON.stringify({ finished: true }));

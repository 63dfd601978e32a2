import assert from "node:assert/strict";
import { SluiceError } from "../errors/mod.ts";
import { createLogger, type LoggerOptions } from "./mod.ts";

function collect(opts: Partial<LoggerOptions> = {}) {
  const lines: string[] = [];
  const log = createLogger({ stage: "ingest", json: true, sink: (l) => lines.push(l), ...opts });
  return { log, lines, records: () => lines.map((l) => JSON.parse(l)) };
}

Deno.test("createLogger JSON lines", async (t) => {
  await t.step("one object per line: ts, level, stage, item, msg and fields", () => {
    const { log, lines, records } = collect();
    const before = Date.now();
    log.info("staged", { item: "img_01", bytes: 1234 });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0].includes("\n"));
    const [rec] = records();
    assert.deepEqual(Object.keys(rec), ["ts", "level", "stage", "msg", "item", "bytes"]);
    assert.equal(rec.level, "info");
    assert.equal(rec.stage, "ingest");
    assert.equal(rec.item, "img_01");
    assert.equal(rec.msg, "staged");
    assert.equal(rec.bytes, 1234);
    assert.match(rec.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.parse(rec.ts) >= before - 1 && Date.parse(rec.ts) <= Date.now());
  });

  await t.step("levels below the threshold are dropped", () => {
    const { log, records } = collect({ level: "warn" });
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    assert.deepEqual(records().map((r) => [r.level, r.msg]), [["warn", "w"], ["error", "e"]]);
  });

  await t.step("child loggers add fields to every line; call fields win", () => {
    const { log, records } = collect();
    const item = log.child({ item: "img_02", attempt: 1 });
    item.warn("retrying", { attempt: 2 });
    item.child({ variant: "640" }).info("rendered");
    const [a, b] = records();
    assert.equal(a.item, "img_02");
    assert.equal(a.attempt, 2);
    assert.deepEqual([b.item, b.attempt, b.variant], ["img_02", 1, "640"]);
  });

  await t.step("fields cannot overwrite ts, level, stage or msg", () => {
    const { log, records } = collect();
    log.error("real message", { level: "debug", msg: "fake", stage: "other", ts: 0 });
    const [rec] = records();
    assert.deepEqual([rec.level, rec.msg, rec.stage], ["error", "real message", "ingest"]);
    assert.notEqual(rec.ts, 0);
    assert.deepEqual(
      [rec.field_level, rec.field_msg, rec.field_stage, rec.field_ts],
      ["debug", "fake", "other", 0],
    );
  });

  await t.step("errors, bigints and cycles are written, never thrown", () => {
    const { log, records } = collect();
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    log.error("failed", {
      error: new SluiceError("corrupt_image", "truncated JPEG"),
      nested: { cause: new Error("inner") },
      size: 12n ** 20n,
      cyclic,
      shared: [{ a: 1 }, { a: 1 }],
    });
    const [rec] = records();
    assert.equal(rec.error, "truncated JPEG");
    assert.deepEqual(rec.nested, { cause: "inner" });
    assert.equal(rec.size, (12n ** 20n).toString());
    assert.deepEqual(rec.cyclic, { name: "loop", self: "[circular]" });
    assert.deepEqual(rec.shared, [{ a: 1 }, { a: 1 }]);
  });
});

Deno.test("createLogger pretty lines", () => {
  const lines: string[] = [];
  const log = createLogger({ stage: "normalize", json: false, sink: (l) => lines.push(l) });
  log.warn("variant skipped", { item: "img_03", variant: "1280" });
  log.info("idle");
  assert.match(
    lines[0],
    /^\d\d:\d\d:\d\d WARN {2}\[normalize\] variant skipped \{"item":"img_03","variant":"1280"\}$/,
  );
  assert.match(lines[1], /^\d\d:\d\d:\d\d INFO {2}\[normalize\] idle$/);
});

// A real process: the default format follows whether stderr (where lines go) is a terminal.
const modUrl = new URL("./mod.ts", import.meta.url).href;
const program = `
  import { createLogger } from ${JSON.stringify(modUrl)};
  createLogger({ stage: "infer" }).info("hello", { item: "img_04" });
`;
const deno = Deno.execPath();

async function hasScript(): Promise<boolean> {
  try {
    return (await new Deno.Command("script", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}
const script = await hasScript();

Deno.test("createLogger default format in a real process", async (t) => {
  const env = { NO_COLOR: "1", SLUICE_LOG_LEVEL: "info" };
  await t.step("stderr piped (a file, a collector): JSON", async () => {
    const out = await new Deno.Command(deno, {
      args: ["eval", program],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const line = new TextDecoder().decode(out.stderr).trim();
    const rec = JSON.parse(line);
    assert.deepEqual([rec.level, rec.stage, rec.item, rec.msg], [
      "info",
      "infer",
      "img_04",
      "hello",
    ]);
    assert.equal(new TextDecoder().decode(out.stdout), "", "logs never go to stdout");
  });

  await t.step({
    name: "stderr a terminal (a pseudo-terminal from `script`): a readable line",
    ignore: !script,
    fn: async () => {
      const cmd = `${deno} eval '${program.replaceAll("'", "'\\''")}'`;
      const out = await new Deno.Command("script", {
        args: ["-qec", cmd, "/dev/null"],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).replaceAll("\r", "").trim();
      assert.ok(out.success, text);
      assert.match(text, /^\d\d:\d\d:\d\d INFO {2}\[infer\] hello \{"item":"img_04"\}$/m);
      assert.ok(!text.includes('"level"'), text);
    },
  });
});

Deno.test("createLogger redacts credentials as a last line of defence", async (t) => {
  for (const json of [true, false]) {
    await t.step(json ? "JSON lines" : "pretty lines", () => {
      const { log, lines } = collect({ json });
      log.warn("no answer from http://ann:pw@rd@mlflow:5000", {
        error: new Error("GET http://ann:pw@rd@mlflow:5000/api failed"),
        url: "postgres://app:Hunter22@db/sluice?sslpassword=Zz9",
        nested: { header: "Bearer abcdef123456" },
      });
      const line = lines.join("\n");
      for (const leaked of ["pw@rd", "Hunter22", "Zz9", "abcdef123456"]) {
        assert.ok(!line.includes(leaked), `${leaked} leaked in ${line}`);
      }
      assert.ok(line.includes("***redacted***"));
    });
  }
});

import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../common/config/mod.ts";
import {
  cpuSlotsFor,
  effectiveConcurrency,
  NormalizeSettingsSchema,
  recommendedConcurrency,
} from "./config.ts";

const load = (env: Record<string, string>) =>
  loadConfig({
    stage: "normalize",
    stageSchema: NormalizeSettingsSchema,
    env,
    cwd: "/srv",
    hostname: "h",
    pid: 1,
  });

Deno.test("normalize configuration", async (t) => {
  await t.step("defaults: 320/640 letterbox and 1280 fit, the default key template", async () => {
    const c = await load({});
    assert.deepEqual(
      c.stage.variants.map((v) => [v.name, v.width, v.height, v.mode, v.format, v.quality]),
      [["320", 320, 320, "letterbox", "jpeg", 85], ["640", 640, 640, "letterbox", "jpeg", 85], [
        "1280",
        1280,
        1280,
        "fit",
        "jpeg",
        85,
      ]],
    );
    assert.equal(c.stage.keyTemplate, "{prefix}/{variant}/{stem}.{ext}");
    assert.equal(c.stage.prefix, "variants");
    assert.equal(c.stage.resizer, "auto");
  });

  await t.step("variants as JSON in the environment, defaults filled in", async () => {
    const c = await load({
      SLUICE_NORMALIZE_VARIANTS:
        '[{"name":"sq","width":256,"height":256,"mode":"cover","format":"webp"}]',
    });
    assert.deepEqual(c.stage.variants, [{
      name: "sq",
      width: 256,
      height: 256,
      mode: "cover",
      format: "webp",
      quality: 85,
      background: "#727272",
    }]);
  });

  await t.step("bad settings are refused with what was expected", async () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{
        SLUICE_NORMALIZE_VARIANTS:
          '[{"name":"a","width":1,"height":1},{"name":"a","width":2,"height":2}]',
      }, /unique variant names/],
      [
        { SLUICE_NORMALIZE_VARIANTS: '[{"name":"a","width":1,"height":1,"mode":"squash"}]' },
        /variants/,
      ],
      [{ SLUICE_NORMALIZE_VARIANTS: "[]" }, /variants/],
      [
        { SLUICE_NORMALIZE_KEY_TEMPLATE: "{prefix}/{variant}/{sha256}.{ext}" },
        /\{stem\}, \{specHash\} or \{version\}/,
      ],
      [{ SLUICE_NORMALIZE_PREFIX: "/abs" }, /key prefix/],
      [{ SLUICE_NORMALIZE_RESIZER: "tpu" }, /resizer/],
    ];
    for (const [env, message] of bad) {
      await assert.rejects(
        load(env),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    }
  });

  await t.step("concurrency: CPU slots per core, items in flight two more unless set", async () => {
    const cores = Math.max(1, navigator.hardwareConcurrency || 1);
    assert.equal(cpuSlotsFor({ cpuSlots: 0, sharpThreads: 1 }), cores);
    assert.equal(cpuSlotsFor({ cpuSlots: 3, sharpThreads: 4 }), 3);
    assert.equal(cpuSlotsFor({ cpuSlots: 0, sharpThreads: 64 }), 1);
    assert.equal(recommendedConcurrency({ cpuSlots: 0, sharpThreads: 1 }), cores + 2);
    const c = await load({});
    assert.equal(effectiveConcurrency(c, {}), cores + 2);
    const set = await load({ SLUICE_WORKER_CONCURRENCY: "7" });
    assert.equal(
      effectiveConcurrency(set, { "worker.concurrency": "env SLUICE_WORKER_CONCURRENCY" }),
      7,
    );
  });
});

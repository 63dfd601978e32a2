import assert from "node:assert/strict";
import { hasPyYaml, pyYamlLoad } from "../../tests/support/pyyaml.ts";
import { parseYaml, parseYamlMapping, toYaml } from "./mod.ts";

const pyyaml = hasPyYaml;
if (!pyyaml && Deno.env.get("CI") !== "true") {
  console.warn("yaml mod_test: PyYAML missing: skipping the cross-check with Python");
}

const AWKWARD = {
  experiment_id: "123",
  name: "true",
  a: "null",
  b: "1e5",
  c: "-1",
  d: "None",
  e: "",
  f: "2024-01-01",
  g: ".inf",
  h: "yes",
  i: "it's",
  j: 'say "hi"',
  k: "two\nlines",
  l: "tab\there",
  m: "ünïcode",
  n: "a: b",
  o: "x #y",
  p: "@at",
  q: " lead",
  source: "runs:/abc/model",
  artifact_uri: "file:///a b/c",
};

Deno.test("toYaml: strings YAML 1.1 would read as another type stay strings", async (t) => {
  await t.step("round trip through parseYaml", () => {
    assert.deepEqual(parseYamlMapping(toYaml(AWKWARD)), AWKWARD);
  });
  await t.step("keys sorted on request; plain words and URIs stay plain", () => {
    const text = toYaml({ source: "runs:/abc/model", artifact_uri: "file:///a b/c", status: 3 }, {
      sortKeys: true,
    });
    assert.equal(text, "artifact_uri: file:///a b/c\nsource: runs:/abc/model\nstatus: 3\n");
    assert.equal(toYaml({ tags: [], aliases: {} }, { sortKeys: true }), "aliases: {}\ntags: []\n");
  });
  await t.step({
    name: "PyYAML reads back the same values and types",
    ignore: !pyyaml && Deno.env.get("CI") !== "true",
    fn: async () => {
      const value = {
        ...AWKWARD,
        nums: [0, -1.5, 1e21, 1e-7],
        flags: [true, false],
        nil: null,
        empty: [],
        none: {},
        nested: [{ a: [{ b: 1 }], c: "d" }, [1, [2]]],
        "weird key": { "true": 1 },
      };
      assert.deepEqual(await pyYamlLoad(toYaml(value)), value);
    },
  });
});

Deno.test("parseYaml reads what PyYAML writes", () => {
  const text = "artifact_uri: file:///x\ndescription: 'a long text that PyYAML\n" +
    "  folded over lines, with ''quotes''\n\n  and a kept newline'\nend_time: null\n" +
    "experiment_id: 7\nflag: true\nratio: 0.5\nneg: -.inf\nnan: .nan\nwhen: 2024-01-01\n" +
    "l:\n- a\n- 'b c'\nm:\n  k: '1'\n";
  const m = parseYamlMapping(text);
  assert.equal(m.artifact_uri, "file:///x");
  assert.equal(
    m.description,
    "a long text that PyYAML folded over lines, with 'quotes'\nand a kept newline",
  );
  assert.equal(m.end_time, null);
  assert.equal(m.experiment_id, 7);
  assert.equal(m.flag, true);
  assert.equal(m.ratio, 0.5);
  assert.equal(m.neg, -Infinity);
  assert.ok(Number.isNaN(m.nan));
  assert.equal(m.when, "2024-01-01");
  assert.deepEqual(m.l, ["a", "b c"]);
  assert.deepEqual(m.m, { k: "1" });
});

Deno.test("parseYamlMapping: empty is {}, a list is refused by name", () => {
  assert.deepEqual(parseYamlMapping(""), {});
  assert.equal(parseYaml(""), null);
  assert.throws(() => parseYamlMapping("- a\n", "meta.yaml"), /meta.yaml: expected a mapping/);
});

Deno.test("toYaml: one object used twice is written twice, never as an alias", () => {
  const labels = { app: "sluice" };
  const text = toYaml({ metadata: { labels }, selector: { labels } }, { quoteStrings: true });
  assert.doesNotMatch(text, /[&*]a\d/);
  assert.match(text, /app: "sluice"/);
  assert.deepEqual(parseYaml(text), { metadata: { labels }, selector: { labels } });
});

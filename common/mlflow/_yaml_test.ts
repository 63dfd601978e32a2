import assert from "node:assert/strict";
import { parseYaml, toYaml } from "./_yaml.ts";

Deno.test("toYaml quotes what YAML would read as another type", async (t) => {
  await t.step("ids, numbers, booleans and nulls stay strings", () => {
    const text = toYaml({
      experiment_id: "123",
      name: "true",
      a: "null",
      b: "1e5",
      c: "-1",
      d: "None",
      e: "",
      f: "2024-01-01",
      g: ".inf",
    });
    assert.equal(
      text,
      "a: 'null'\nb: '1e5'\nc: '-1'\nd: None\ne: ''\nexperiment_id: '123'\nf: '2024-01-01'\n" +
        "g: '.inf'\nname: 'true'\n",
    );
    assert.deepEqual(parseYaml(text), {
      a: "null",
      b: "1e5",
      c: "-1",
      d: "None",
      e: "",
      experiment_id: "123",
      f: "2024-01-01",
      g: ".inf",
      name: "true",
    });
  });
  await t.step("URIs and plain words stay plain; keys are sorted", () => {
    assert.equal(
      toYaml({ source: "runs:/abc/model", artifact_uri: "file:///a b/c", status: 3, x: null }),
      "artifact_uri: file:///a b/c\nsource: runs:/abc/model\nstatus: 3\nx: null\n",
    );
  });
  await t.step("quotes, newlines and control characters round-trip", () => {
    for (
      const v of [
        "it's",
        'say "hi"',
        "two\nlines",
        "tab\there",
        "ünïcode",
        "a: b",
        "x #y",
        "@at",
        " lead",
      ]
    ) {
      const back = parseYaml(toYaml({ v }));
      assert.equal(back.v, v, JSON.stringify(v));
    }
  });
  await t.step("lists and maps", () => {
    assert.equal(toYaml({ tags: [], aliases: {} }), "aliases: {}\ntags: []\n");
    assert.equal(toYaml({ l: ["a", "b"] }), "l:\n- a\n- b\n");
    assert.deepEqual(parseYaml("l:\n- a\n- 'b c'\nm:\n  k: '1'\nn: 2\n"), {
      l: ["a", "b c"],
      m: { k: "1" },
      n: 2,
    });
  });
});

Deno.test("parseYaml reads what PyYAML writes", () => {
  const text = "artifact_uri: file:///x\ndescription: 'a long text that PyYAML\n" +
    "  folded over lines, with ''quotes''\n\n  and a kept newline'\nend_time: null\n" +
    "experiment_id: 7\nflag: true\nratio: 0.5\nneg: -.inf\nnan: .nan\n";
  const m = parseYaml(text);
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
});

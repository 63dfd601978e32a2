import assert from "node:assert/strict";
import { textFileProblems } from "./text_files.ts";
import { formatNotebook, stripNotebook } from "./notebook.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("textFileProblems", async (t) => {
  await t.step("LF with final newline passes", () => {
    assert.deepEqual(textFileProblems("a.ts", enc("a\nb\n")), []);
  });
  await t.step("CRLF is reported with its line", () => {
    assert.deepEqual(textFileProblems("a.ts", enc("a\nb\r\n")), [
      "a.ts: CRLF line ending on line 2, expected LF",
    ]);
  });
  await t.step("missing final newline is reported", () => {
    assert.deepEqual(textFileProblems("a.md", enc("a")), ["a.md: no newline at end of file"]);
  });
  await t.step("binary files are skipped", () => {
    assert.deepEqual(textFileProblems("x.bin", new Uint8Array([1, 0, 13, 10, 5])), []);
    assert.deepEqual(textFileProblems("x.png", enc("a\r\n")), []);
  });
});

Deno.test("stripNotebook clears outputs and is a fixed point", () => {
  const nb = {
    cells: [
      {
        cell_type: "code",
        execution_count: 3,
        outputs: [{ text: "hi" }],
        metadata: { ExecuteTime: 1, tags: ["x"] },
        source: ["1"],
      },
      { cell_type: "markdown", metadata: {}, source: ["# t"] },
    ],
    metadata: { widgets: {}, kernelspec: { name: "python3" } },
    nbformat: 4,
  };
  const out = stripNotebook(nb);
  assert.deepEqual(out.cells?.[0].outputs, []);
  assert.equal(out.cells?.[0].execution_count, null);
  assert.deepEqual(out.cells?.[0].metadata, { tags: ["x"] });
  assert.equal(out.metadata?.widgets, undefined);
  assert.deepEqual(out.metadata?.kernelspec, { name: "python3" });
  assert.equal(nb.cells[0].execution_count, 3, "input is not mutated");
  const once = formatNotebook(out);
  assert.equal(formatNotebook(stripNotebook(JSON.parse(once))), once);
  assert.throws(() => stripNotebook({} as never), /expected an object with a `cells` array/);
});

import assert from "node:assert/strict";
import { safeFileName } from "./safe_name.ts";

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

Deno.test("safeFileName", async (t) => {
  await t.step("keeps a readable basename and the extension", () => {
    const n = safeFileName("raw/2024/cat photo.JPG");
    assert.match(n, /^cat_photo-[0-9a-f]{12}\.jpg$/);
  });

  await t.step("hostile names become one safe segment", () => {
    const hostile = [
      "../../etc/passwd",
      "/etc/shadow",
      "..",
      ".",
      "",
      "a/../../b",
      "x\0y.jpg",
      "..\\..\\windows\\system32",
      ".hidden",
      "...",
      "dir/",
      "name\nwith\rcontrol\tchars",
      "é/ü/日本語.png",
      "a".repeat(5000) + ".jpg",
      ".lease.json",
      ".tmp-123",
      "C:\\x.jpg",
    ];
    for (const name of hostile) {
      const n = safeFileName(name);
      assert.match(n, SAFE, `for ${JSON.stringify(name.slice(0, 40))}: ${n}`);
      assert.ok(n !== "." && n !== "..");
      assert.ok(new TextEncoder().encode(n).length <= 110, n);
    }
    assert.match(safeFileName("../../etc/passwd"), /^passwd-[0-9a-f]{12}$/);
    assert.match(safeFileName(""), /^file-[0-9a-f]{12}$/);
  });

  await t.step("distinct inputs give distinct names; equal inputs equal names", () => {
    const inputs = ["a/x.jpg", "b/x.jpg", "x.jpg", "x.JPG", "x jpg", "x_jpg", "x\0.jpg"];
    const names = inputs.map(safeFileName);
    assert.equal(new Set(names).size, inputs.length);
    assert.equal(safeFileName("a/x.jpg"), names[0]);
  });
});

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { compareKeys } from "./_key_order.ts";

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

// Characters where UTF-16 order and UTF-8 byte order disagree, plus ordinary ones.
const ALPHABET = ["a", "B", "/", "-", "+", " ", "é", "\uE000", "\uFFFD", "\u{1F600}", "\u{10000}"];

function randomKey(): string {
  const n = 1 + Math.floor(Math.random() * 5);
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(Math.random() * ALPHABET.length)];
  return s;
}

Deno.test("compareKeys orders like S3 (UTF-8 bytes)", async (t) => {
  await t.step("known cases", () => {
    assert.deepEqual(["b", "a/x", "a-y", "B"].sort(compareKeys), ["B", "a-y", "a/x", "b"]);
    // UTF-16 would put the astral character (a surrogate pair) before U+FFFD.
    assert.ok(compareKeys("\u{1F600}", "\uFFFD") > 0);
    assert.ok("\u{1F600}" < "\uFFFD", "JS string order differs here");
    assert.ok(compareKeys("a", "ab") < 0);
    assert.equal(compareKeys("same", "same"), 0);
  });
  await t.step("agrees in sign with a byte comparison on random keys", () => {
    for (let i = 0; i < 5000; i++) {
      const a = randomKey();
      const b = randomKey();
      assert.equal(Math.sign(compareKeys(a, b)), Math.sign(byteCompare(a, b)), `${a} vs ${b}`);
    }
  });
});

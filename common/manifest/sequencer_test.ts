import assert from "node:assert/strict";
import { compareSequencers, isStaleSequencer } from "./sequencer.ts";

Deno.test("compareSequencers", async (t) => {
  await t.step("orders AWS sequencers of different lengths by right-padding", () => {
    assert.ok(compareSequencers("0055AED6DCD90281E5", "0055AED6DCD90281E6") < 0);
    // Without padding "0A" < "0A00" as strings; padded they are equal.
    assert.equal(compareSequencers("0A", "0A00"), 0);
    assert.ok(compareSequencers("0B", "0A01") > 0);
    assert.ok(compareSequencers("0A", "0A01") < 0);
  });
  await t.step("orders MinIO/RustFS nanosecond hex timestamps", () => {
    const older = (1_700_000_000_000_000_000n).toString(16).toUpperCase();
    const newer = (1_700_000_000_000_000_001n).toString(16).toUpperCase();
    assert.ok(compareSequencers(older, newer) < 0);
    assert.ok(compareSequencers(newer, older) > 0);
  });
  await t.step("treats a missing sequencer on either side as not stale", () => {
    assert.equal(isStaleSequencer(null, "02"), false);
    assert.equal(isStaleSequencer("01", null), false);
    assert.equal(isStaleSequencer("01", "02"), true);
    assert.equal(isStaleSequencer("02", "02"), false);
    assert.equal(isStaleSequencer("03", "02"), false);
  });
});

Deno.test("compareSequencers: hex is compared case-insensitively (issue 12 item 8)", () => {
  assert.equal(compareSequencers("0055aed6dcd90281e5", "0055AED6DCD90281E5"), 0);
  // "a" (0x61) sorts after "B" (0x42) as text, but 0xA < 0xB as hex.
  assert.ok(compareSequencers("0A", "0b") < 0);
  assert.ok(compareSequencers("0a", "0B") < 0);
  assert.equal(isStaleSequencer("0a", "0B"), true);
  assert.equal(isStaleSequencer("0C", "0b"), false);
});

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { diffReview } from "./review_diff.ts";

Deno.test("diffReview: accepted, moved, relabelled, deleted and added boxes", () => {
  const predicted = [
    { label: "cat", bbox: [0, 0, 100, 100] as [number, number, number, number] },
    { label: "cat", bbox: [200, 0, 100, 100] as [number, number, number, number] },
    { label: "dog", bbox: [400, 0, 100, 100] as [number, number, number, number] },
    { label: "dog", bbox: [600, 0, 100, 100] as [number, number, number, number] },
  ];
  const reviewed = [
    { label: "cat", bbox: [0, 0, 100, 100] as [number, number, number, number] }, // unchanged
    { label: "cat", bbox: [220, 0, 100, 100] as [number, number, number, number] }, // moved (IoU .67)
    { label: "cat", bbox: [400, 0, 100, 100] as [number, number, number, number] }, // relabelled
    { label: "bird", bbox: [900, 0, 50, 50] as [number, number, number, number] }, // added
  ]; // the dog at 600 was deleted
  const d = diffReview(predicted, reviewed);
  assertEquals(d.counts, { unchanged: 1, moved: 1, relabelled: 1, deleted: 1, added: 1 });
  assertEquals(d.perClass, {
    cat: { tp: 2, predicted: 2, reviewed: 3 },
    dog: { tp: 0, predicted: 2, reviewed: 0 },
    bird: { tp: 0, predicted: 0, reviewed: 1 },
  });
});

Deno.test("diffReview: a box moved below IoU 0.5 is a deletion plus an addition", () => {
  const d = diffReview(
    [{ label: "cat", bbox: [0, 0, 100, 100] }],
    [{ label: "cat", bbox: [60, 0, 100, 100] }], // IoU 40/160 = 0.25
  );
  assertEquals(d.counts, { unchanged: 0, moved: 0, relabelled: 0, deleted: 1, added: 1 });
});

Deno.test("diffReview: each box matches at most once, best IoU first", () => {
  const d = diffReview(
    [{ label: "cat", bbox: [0, 0, 100, 100] }, { label: "cat", bbox: [10, 0, 100, 100] }],
    [{ label: "cat", bbox: [10, 0, 100, 100] }],
  );
  assertEquals(d.counts, { unchanged: 1, moved: 0, relabelled: 0, deleted: 1, added: 0 });
  assertEquals(d.perClass.cat, { tp: 1, predicted: 2, reviewed: 1 });
});

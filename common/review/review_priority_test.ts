import assert from "node:assert/strict";
import {
  classCountsOf,
  formatPriority,
  PRIORITY_KEY,
  reviewPriority,
  topKForReview,
} from "./review_priority.ts";

const b = (label: string, score: number) => ({ label, score });
const near = (a: number, e: number) =>
  assert.ok(Math.abs(a - e) < 1e-9, `expected ${e}, found ${a}`);

Deno.test("reviewPriority: the least confident box drives it; confident images come last", () => {
  const sure = reviewPriority([b("cat", 0.98), b("cat", 0.95)], { classCounts: { cat: 99 } });
  const unsure = reviewPriority([b("cat", 0.98), b("cat", 0.52)], { classCounts: { cat: 99 } });
  assert.ok(unsure > sure, `${unsure} > ${sure}`);
  // u = 1 - |2·0.52 - 1| = 0.96, b = 1/sqrt(100) = 0.1 → (0.96 + 0.025) / 1.25
  near(unsure, (0.96 + 0.25 * 0.1) / 1.25);
  near(reviewPriority([], {}), 0.5 / 1.25);
  near(reviewPriority([b("cat", 0.5)], { balanceWeight: 0 }), 1);
});

Deno.test("reviewPriority: at equal confidence the rarer class comes first", () => {
  const counts = classCountsOf([{ boxes: [{ label: "cat" }, { label: "cat" }, { label: "dog" }] }]);
  assert.deepEqual(counts, { cat: 2, dog: 1 });
  const cat = reviewPriority([b("cat", 0.8)], { classCounts: counts });
  const dog = reviewPriority([b("dog", 0.8)], { classCounts: counts });
  assert.ok(dog > cat, `${dog} > ${cat}`);
});

Deno.test("topKForReview: highest priority first, ties in input order, unscored last", () => {
  const t = (id: string, p?: number) => ({
    id,
    data: p === undefined ? {} : { [PRIORITY_KEY]: formatPriority(p) },
  });
  const tasks = [t("a", 0.2), t("b", 0.9), t("c"), t("d", 0.9), t("e", 0.5)];
  assert.deepEqual(topKForReview(tasks, 3).map((x) => x.id), ["b", "d", "e"]);
  assert.deepEqual(topKForReview(tasks, 10).map((x) => x.id), ["b", "d", "e", "a", "c"]);
  assert.deepEqual(topKForReview(tasks, 0), []);
  assert.equal(formatPriority(1.2), "1.0000");
  assert.equal(formatPriority(0.12345), "0.1235");
});

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

Deno.test("reviewPriority: the image's best box drives it, whatever the score scale", () => {
  // A young model: every score below 0.5. The image whose best box is 0.2 comes before the one
  // whose best box is 0.45 (the old 1 - |2s - 1| ranked them the other way round).
  const low = reviewPriority([b("cat", 0.2), b("cat", 0.1)], { classCounts: { cat: 99 } });
  const mid = reviewPriority([b("cat", 0.45), b("cat", 0.1)], { classCounts: { cat: 99 } });
  assert.ok(low > mid, `${low} > ${mid}`);
  // A trained model: the same order on the other side of 0.5.
  const unsure = reviewPriority([b("cat", 0.2)], { classCounts: { cat: 99 } });
  const sure = reviewPriority([b("cat", 0.9), b("cat", 0.2)], { classCounts: { cat: 99 } });
  assert.ok(unsure > sure, `${unsure} > ${sure}`);
  // u = 1 - 0.2 = 0.8; b = 1/sqrt(100) = 0.1 (one class) → (0.8 + 0.025) / 1.25
  near(unsure, (0.8 + 0.25 * 0.1) / 1.25);
  near(sure, (0.1 + 0.25 * 0.1) / 1.25);
  // Only the order of scores matters: halving every score keeps the ranking.
  const ranks = (f: number) =>
    [0.9, 0.2, 0.6, 0.05].map((s) => reviewPriority([b("cat", s * f)], { balanceWeight: 0 }));
  const order = (xs: number[]) => xs.map((_, i) => i).sort((i, j) => xs[j] - xs[i]);
  assert.deepEqual(order(ranks(1)), order(ranks(0.5)));
  assert.deepEqual(order(ranks(1)), [3, 1, 2, 0]);
  // No box: a best score of 0, the most uncertain; in [0, 1] throughout.
  near(reviewPriority([], {}), 1 / 1.25);
  near(reviewPriority([], { emptyUncertainty: 0.5 }), 0.5 / 1.25);
  near(reviewPriority([b("cat", 0)], { balanceWeight: 0 }), 1);
  near(reviewPriority([b("cat", 1)], { balanceWeight: 0 }), 0);
});

Deno.test("reviewPriority: at equal confidence the rarer class comes first", () => {
  const counts = classCountsOf([{ boxes: [{ label: "cat" }, { label: "cat" }, { label: "dog" }] }]);
  assert.deepEqual(counts, { cat: 2, dog: 1 });
  const cat = reviewPriority([b("cat", 0.8)], { classCounts: counts });
  const dog = reviewPriority([b("dog", 0.8)], { classCounts: counts });
  assert.ok(dog > cat, `${dog} > ${cat}`);
});

Deno.test("reviewPriority: low-score noise boxes do not flatten the class term", () => {
  // 20 images, each with a sure cat (0.9) and 50 noise "bird" boxes at 0.01 (a detector near its
  // threshold), and 2 images with a sure bird. Counting every box, bird (1002) would look far
  // commoner than cat (20) and every image would carry bird's rarity; counting the boxes within
  // a factor 2 of their image's best, bird is the rare class (2 vs 20).
  const noisy = Array.from({ length: 20 }, () => ({
    boxes: [b("cat", 0.9), ...Array.from({ length: 50 }, () => b("bird", 0.01))],
  }));
  const images = [...noisy, { boxes: [b("bird", 0.9)] }, { boxes: [b("bird", 0.9)] }];
  const counts = classCountsOf(images);
  assert.deepEqual(counts, { cat: 20, bird: 2 });
  // At equal best score, the bird image outranks the cat image, whose noise birds lend it none of
  // bird's rarity: b(cat image) = 1/sqrt(21), b(bird image) = 1/sqrt(3).
  const opts = { classCounts: counts };
  const cat = reviewPriority(images[0].boxes, opts);
  const bird = reviewPriority(images[20].boxes, opts);
  near(cat, (0.1 + 0.25 / Math.sqrt(21)) / 1.25);
  near(bird, (0.1 + 0.25 / Math.sqrt(3)) / 1.25);
  assert.ok(bird > cat, `${bird} > ${cat}`);
  // The floor is relative, so a young model's boxes count the same way: scores ÷ 5.
  const young = images.map((img) => ({
    boxes: img.boxes.map((x) => b(x.label, x.score / 5)),
  }));
  assert.deepEqual(classCountsOf(young), counts);
  // Boxes within a factor 2 of the image's best all count (ρ = 0.5; 0.25 is under 0.5·0.6).
  assert.deepEqual(
    classCountsOf([{ boxes: [b("cat", 0.6), b("dog", 0.3), b("cow", 0.25)] }]),
    { cat: 1, dog: 1 },
  );
  assert.deepEqual(
    classCountsOf([{ boxes: [b("cat", 0.6), b("cow", 0.25)] }], 0.4),
    { cat: 1, cow: 1 },
  );
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

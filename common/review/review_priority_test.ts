import assert from "node:assert/strict";
import {
  binaryEntropy,
  classCountsOf,
  formatPriority,
  PRIORITY_KEY,
  reviewPriority,
  topKForReview,
} from "./review_priority.ts";

const b = (label: string, score: number) => ({ label, score });
const near = (a: number, e: number) =>
  assert.ok(Math.abs(a - e) < 1e-9, `expected ${e}, found ${a}`);

Deno.test("reviewPriority: the entropy of the image's counted boxes, summed over the top K", () => {
  const only = { balanceWeight: 0 };
  // u = Σ H(s) / K over the K = 8 highest boxes within a factor 2 of the best.
  near(reviewPriority([b("cat", 0.5)], only), 1 / 8);
  near(reviewPriority([b("cat", 0.5), b("cat", 0.5), b("dog", 0.5)], only), 3 / 8);
  near(binaryEntropy(0.5), 1);
  near(binaryEntropy(0.05), binaryEntropy(0.95));
  near(binaryEntropy(0.2), -(0.2 * Math.log2(0.2) + 0.8 * Math.log2(0.8)));
  // More unsure objects in one image come first: three boxes at 0.3 beat one box at 0.3, and
  // one box at 0.3 beats one at 0.1 (0.88 bits against 0.47).
  const three = reviewPriority([b("cat", 0.3), b("cat", 0.3), b("cat", 0.3)], only);
  const one = reviewPriority([b("cat", 0.3)], only);
  const faint = reviewPriority([b("cat", 0.1)], only);
  assert.ok(three > one && one > faint, `${three} > ${one} > ${faint}`);
  // A sure box teaches little: 0.95 adds as much as 0.05; two sure boxes rank below one unsure.
  near(reviewPriority([b("cat", 0.95)], only), binaryEntropy(0.95) / 8);
  assert.ok(
    reviewPriority([b("cat", 0.5)], only) > reviewPriority([b("cat", 0.95), b("dog", 0.95)], only),
  );
  // Boxes under half the image's best do not count: 50 noise boxes at 0.01 next to a 0.6 add nothing.
  const noise = Array.from({ length: 50 }, () => b("bird", 0.01));
  near(reviewPriority([b("cat", 0.6), ...noise], only), binaryEntropy(0.6) / 8);
  // K caps the sum: 20 boxes at 0.5 count as 8 (u = 1); K = 4 caps at 4 bits.
  const crowd = Array.from({ length: 20 }, () => b("car", 0.5));
  near(reviewPriority(crowd, only), 1);
  near(reviewPriority(crowd.slice(0, 3), { ...only, maxBoxes: 4 }), 3 / 4);
  // No box: one wholly uncertain object's worth (1 bit) unless told otherwise; in [0, 1].
  near(reviewPriority([], only), 1 / 8);
  near(reviewPriority([], { ...only, emptyBits: 0 }), 0);
  near(reviewPriority([], {}), (1 / 8) / 1.25);
  near(reviewPriority([b("cat", 0)], only), 0);
  near(reviewPriority([b("cat", 1)], only), 0);
  // With the class term: (u + 0.25 b) / 1.25, b = 1/sqrt(1 + n) of the rarest counted class.
  near(
    reviewPriority([b("cat", 0.5)], { classCounts: { cat: 99 } }),
    (1 / 8 + 0.25 * 0.1) / 1.25,
  );
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
  near(cat, (binaryEntropy(0.9) / 8 + 0.25 / Math.sqrt(21)) / 1.25);
  near(bird, (binaryEntropy(0.9) / 8 + 0.25 / Math.sqrt(3)) / 1.25);
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

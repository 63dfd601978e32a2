"""COCO-style mean average precision, the definition pycocotools uses for bbox "all areas":

- IoU thresholds 0.50:0.05:0.95 (numpy.linspace values), a match needs IoU >= threshold;
- per image and category, detections sorted by score (stable), at most max_dets kept; each is
  matched greedily to the unmatched ground truth with the highest IoU (ties: the later one);
- per category, detections from all images (in ascending image id order) sorted by score
  (stable); precision made monotone; AP = mean of the precision at 101 recall points
  (0, 0.01, ..., 1; "COCO 101-point interpolation");
- categories without ground truth are left out; mAP is the mean over the rest.

Pure Python on purpose: common/eval/mean_ap.ts implements the same steps and a test checks both
agree within 1e-6 on the same predictions file.

CLI: python3 mean_ap.py --gt gt.json --predictions predictions.json  -> JSON on stdout.
"""

import argparse
import json
import sys

EPS = 2.220446049250313e-16  # numpy.spacing(1), as pycocotools


def linspace(start, stop, num):
    step = (stop - start) / (num - 1)
    return [i * step + start for i in range(num - 1)] + [stop]


IOU_THRESHOLDS = linspace(0.5, 0.95, 10)
RECALL_POINTS = linspace(0.0, 1.0, 101)


def _iou(a, b):
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _ap(matched_scores, num_gt):
    """matched_scores: [(score, matched_bool)] in the per-category order; returns AP."""
    order = sorted(range(len(matched_scores)), key=lambda i: -matched_scores[i][0])
    tp = fp = 0
    rc, pr = [], []
    for i in order:
        if matched_scores[i][1]:
            tp += 1
        else:
            fp += 1
        rc.append(tp / num_gt)
        pr.append(tp / (tp + fp + EPS))
    for i in range(len(pr) - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    total = 0.0
    j = 0
    for r in RECALL_POINTS:
        while j < len(rc) and rc[j] < r:
            j += 1
        if j < len(rc):
            total += pr[j]
    return total / len(RECALL_POINTS)


def evaluate(gt, predictions, max_dets=100):
    """gt: COCO dict; predictions: [{image_id, category_id, bbox, score}]. Returns a dict."""
    image_ids = sorted({im["id"] for im in gt["images"]})
    known = set(image_ids)
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    gts, dts = {}, {}
    for a in gt["annotations"]:
        if a.get("iscrowd", 0):
            continue
        gts.setdefault((a["image_id"], a["category_id"]), []).append(a["bbox"])
    for d in predictions:
        if d["image_id"] in known:
            dts.setdefault((d["image_id"], d["category_id"]), []).append(d)
    per_class = []
    for cat in cats:
        cid = cat["id"]
        num_gt = sum(len(gts.get((i, cid), [])) for i in image_ids)
        if num_gt == 0:
            per_class.append({"category_id": cid, "name": cat.get("name"), "num_gt": 0, "ap50": None, "ap": None})
            continue
        per_t = [[] for _ in IOU_THRESHOLDS]
        for img in image_ids:
            g = gts.get((img, cid), [])
            d = dts.get((img, cid), [])
            d = sorted(d, key=lambda x: -x["score"])[:max_dets]
            ious = [[_iou(dd["bbox"], gg) for gg in g] for dd in d]
            for t_i, t in enumerate(IOU_THRESHOLDS):
                used = [False] * len(g)
                for k, dd in enumerate(d):
                    best = min(t, 1 - 1e-10)
                    m = -1
                    for j in range(len(g)):
                        if used[j] or ious[k][j] < best:
                            continue
                        best = ious[k][j]
                        m = j
                    if m >= 0:
                        used[m] = True
                    per_t[t_i].append((dd["score"], m >= 0))
        aps = [_ap(per_t[t_i], num_gt) for t_i in range(len(IOU_THRESHOLDS))]
        per_class.append(
            {"category_id": cid, "name": cat.get("name"), "num_gt": num_gt, "ap50": aps[0], "ap": sum(aps) / len(aps)}
        )
    scored = [c for c in per_class if c["num_gt"] > 0]
    map50 = sum(c["ap50"] for c in scored) / len(scored) if scored else 0.0
    map50_95 = sum(c["ap"] for c in scored) / len(scored) if scored else 0.0
    return {"map50": map50, "map50_95": map50_95, "ap_definition": "coco-101-point", "per_class": per_class}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gt", required=True, help="COCO ground truth JSON")
    p.add_argument("--predictions", required=True, help="COCO results JSON (list of detections)")
    p.add_argument("--max-dets", type=int, default=100)
    a = p.parse_args(argv)
    with open(a.gt, "r", encoding="utf-8") as f:
        gt = json.load(f)
    with open(a.predictions, "r", encoding="utf-8") as f:
        preds = json.load(f)
    json.dump(evaluate(gt, preds, a.max_dets), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

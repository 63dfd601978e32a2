"""COCO bbox evaluation exactly as pycocotools' COCOeval computes it:

- IoU thresholds 0.50:0.05:0.95 (numpy.linspace values), 101 recall points, maxDets 1/10/100,
  area ranges all / small (< 32^2) / medium (32^2-96^2) / large (> 96^2); areas from the
  annotation's "area" (else w*h) and the detection's w*h;
- crowd ground truth (iscrowd: 1) is an ignore region: IoU = intersection / detection area, it
  absorbs any number of detections, and a detection matched to it (or to ground truth outside the
  area range) is neither a true nor a false positive; an unmatched detection outside the area
  range is ignored too;
- per image and category, detections sorted by score (stable), at most max_dets kept; each is
  matched greedily to the unmatched ground truth with the highest IoU (ties: the later one),
  regular ground truth before ignored;
- per category, detections from all images (in ascending image id order) sorted by score
  (stable); precision made monotone; AP = mean of the precision at the 101 recall points; AR =
  the recall reached; categories without (non-ignored) ground truth are left out of the means.

"stats" holds COCOeval.summarize()'s twelve numbers (-1 where nothing could be measured).

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


AREA_RANGES = [("all", (0, 1e10)), ("small", (0, 32 ** 2)), ("medium", (32 ** 2, 96 ** 2)),
               ("large", (96 ** 2, 1e10))]


def _iou(d, g, crowd):
    """pycocotools' box IoU; for a crowd ground truth the union is the detection's area."""
    w = min(d[2] + d[0], g[2] + g[0]) - max(d[0], g[0])
    if w <= 0:
        return 0.0
    h = min(d[3] + d[1], g[3] + g[1]) - max(d[1], g[1])
    if h <= 0:
        return 0.0
    i = w * h
    da = d[2] * d[3]
    return i / (da if crowd else da + g[2] * g[3] - i)


def _evaluate_image(gts, dts, ious, rng, max_det):
    """COCOeval.evaluateImg: dts sorted by score and cut as ious' rows; None when both empty."""
    if not gts and not dts:
        return None
    ignored_gt = [g["crowd"] or g["area"] < rng[0] or g["area"] > rng[1] for g in gts]
    gt_order = sorted(range(len(gts)), key=lambda i: int(ignored_gt[i]))  # stable
    g = [gts[i] for i in gt_order]
    gt_ig = [ignored_gt[i] for i in gt_order]
    d = dts[:max_det]
    matched, ignored = [], []
    for t in IOU_THRESHOLDS:
        gt_matched = [False] * len(g)
        m_row, ig_row = [], []
        for di, dd in enumerate(d):
            best = min(t, 1 - 1e-10)
            hit = -1
            for gi in range(len(g)):
                if gt_matched[gi] and not g[gi]["crowd"]:
                    continue
                if hit > -1 and not gt_ig[hit] and gt_ig[gi]:
                    break
                iou = ious[di][gt_order[gi]]
                if iou < best:
                    continue
                best = iou
                hit = gi
            if hit == -1:
                area = dd["bbox"][2] * dd["bbox"][3]
                m_row.append(False)
                ig_row.append(area < rng[0] or area > rng[1])
                continue
            gt_matched[hit] = True
            m_row.append(True)
            ig_row.append(gt_ig[hit])
        matched.append(m_row)
        ignored.append(ig_row)
    return {"scores": [x["score"] for x in d], "matched": matched, "ignored": ignored, "gt_ignored": gt_ig}


def _accumulate(evals, max_det):
    """COCOeval.accumulate for one category, area range and maxDets: (precision[T][R], recall[T])."""
    E = [e for e in evals if e is not None]
    if not E:
        return None
    parts = [(e, i) for e in E for i in range(min(max_det, len(e["scores"])))]
    npig = sum(1 for e in E for x in e["gt_ignored"] if not x)
    if npig == 0:
        return None
    order = sorted(range(len(parts)), key=lambda k: -parts[k][0]["scores"][parts[k][1]])  # stable
    precision, recall = [], []
    for t in range(len(IOU_THRESHOLDS)):
        tp = fp = 0
        rc, pr = [], []
        for k in order:
            e, i = parts[k]
            if not e["ignored"][t][i]:
                if e["matched"][t][i]:
                    tp += 1
                else:
                    fp += 1
            rc.append(tp / npig)
            pr.append(tp / (fp + tp + EPS))
        recall.append(rc[-1] if rc else 0)
        for i in range(len(pr) - 1, 0, -1):
            if pr[i] > pr[i - 1]:
                pr[i - 1] = pr[i]
        q = []
        j = 0
        for r in RECALL_POINTS:
            while j < len(rc) and rc[j] < r:
                j += 1
            q.append(pr[j] if j < len(rc) else 0.0)
        precision.append(q)
    return precision, recall


def _mean(values):
    kept = [v for v in values if v > -1]
    return sum(kept) / len(kept) if kept else -1


def evaluate(gt, predictions, max_dets=100):
    """gt: COCO dict; predictions: [{image_id, category_id, bbox, score}]. Returns a dict."""
    max_dets_list = [1, 10, max_dets]
    image_ids = sorted({im["id"] for im in gt["images"]})
    known = set(image_ids)
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    gts, dts = {}, {}
    for a in gt["annotations"]:
        b = a["bbox"]
        gts.setdefault((a["image_id"], a["category_id"]), []).append(
            {"bbox": b, "area": a.get("area", b[2] * b[3]), "crowd": bool(a.get("iscrowd", 0))})
    for d in predictions:
        if d["image_id"] in known:
            dts.setdefault((d["image_id"], d["category_id"]), []).append(d)
    acc = []  # [category][area][maxDets] -> (precision, recall) or None
    for cat in cats:
        cid = cat["id"]
        per_image = []
        for img in image_ids:
            g = gts.get((img, cid), [])
            d = sorted(dts.get((img, cid), []), key=lambda x: -x["score"])[:max_dets]
            ious = [[_iou(dd["bbox"], gg["bbox"], gg["crowd"]) for gg in g] for dd in d]
            per_image.append((g, d, ious))
        per_area = []
        for _, rng in AREA_RANGES:
            evals = [_evaluate_image(g, d, ious, rng, max_dets) for g, d, ious in per_image]
            per_area.append([_accumulate(evals, m) for m in max_dets_list])
        acc.append(per_area)
    area_index = {name: i for i, (name, _) in enumerate(AREA_RANGES)}

    def ap_of(area, m, t=None):
        vals = []
        for per_area in acc:
            r = per_area[area_index[area]][m]
            if r is None:
                continue
            vals.extend([p for row in r[0] for p in row] if t is None else r[0][t])
        return _mean(vals)

    def ar_of(area, m):
        vals = []
        for per_area in acc:
            r = per_area[area_index[area]][m]
            if r is not None:
                vals.extend(r[1])
        return _mean(vals)

    t75 = IOU_THRESHOLDS.index(0.75) if 0.75 in IOU_THRESHOLDS else -1
    stats = {
        "ap": ap_of("all", 2), "ap50": ap_of("all", 2, 0), "ap75": ap_of("all", 2, t75) if t75 >= 0 else -1,
        "ap_small": ap_of("small", 2), "ap_medium": ap_of("medium", 2), "ap_large": ap_of("large", 2),
        "ar1": ar_of("all", 0), "ar10": ar_of("all", 1), "ar100": ar_of("all", 2),
        "ar_small": ar_of("small", 2), "ar_medium": ar_of("medium", 2), "ar_large": ar_of("large", 2),
    }
    per_class = []
    for k, cat in enumerate(cats):
        cid = cat["id"]
        num_gt = sum(1 for i in image_ids for g in gts.get((i, cid), []) if not g["crowd"])
        r = acc[k][0][2]
        if r is None:
            per_class.append({"category_id": cid, "name": cat.get("name"), "num_gt": num_gt, "ap50": None, "ap": None})
            continue
        per_class.append({"category_id": cid, "name": cat.get("name"), "num_gt": num_gt,
                          "ap50": _mean(r[0][0]), "ap": _mean([p for row in r[0] for p in row])})
    return {"map50": max(0.0, stats["ap50"]), "map50_95": max(0.0, stats["ap"]),
            "ap_definition": "coco-101-point", "per_class": per_class, "stats": stats}


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

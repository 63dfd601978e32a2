"""Decoding detector outputs into boxes, outside the graph.

This is the reference that common/detector/decode.ts mirrors step for step (same candidate
order, same float64 arithmetic), so the TypeScript inference stage reproduces the boxes this
trainer scored:

1. peaks: cells whose score equals the maximum of their 3x3 neighbourhood (out-of-map cells
   count as -inf) and is >= score_threshold;
2. candidates sorted by score descending, ties by flat index (class, y, x) ascending; keep the
   first pre_nms_top_k;
3. box: centre = ((x + offset_x) * stride, (y + offset_y) * stride), size = (w, h) from the size
   map (input pixels); corners clipped to [0, input_w] x [0, input_h]; empty boxes dropped;
4. class-wise greedy NMS in that order: a box is dropped when its IoU with a kept box of the
   same class is > nms_iou;
5. the first top_k survivors.
Boxes are [x, y, w, h] in input (variant) pixels.
"""

import numpy as np

DEFAULTS = {"score_threshold": 0.05, "pre_nms_top_k": 100, "nms_iou": 0.5, "top_k": 100}


def iou_xywh(a, b):
    """IoU of two [x, y, w, h] boxes (no +1 pixel convention, as COCO)."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def peaks(hm):
    """Boolean mask of 3x3 local maxima of a C x H x W float32 map."""
    c, h, w = hm.shape
    padded = np.full((c, h + 2, w + 2), -np.inf, dtype=hm.dtype)
    padded[:, 1:-1, 1:-1] = hm
    mx = padded[:, 0:h, 0:w]
    for dy in range(3):
        for dx in range(3):
            mx = np.maximum(mx, padded[:, dy:dy + h, dx:dx + w])
    return hm == mx


def decode_one(hm, size, offset, stride=4, input_w=None, input_h=None, score_threshold=0.05,
               pre_nms_top_k=100, nms_iou=0.5, top_k=100):
    """Decodes one image: hm C x H x W (probabilities), size 2 x H x W, offset 2 x H x W.

    Returns a list of dicts {class_id, score, bbox} in score order.
    """
    hm = np.ascontiguousarray(hm, dtype=np.float32)
    size = np.asarray(size, dtype=np.float32)
    offset = np.asarray(offset, dtype=np.float32)
    c, h, w = hm.shape
    in_w = float(input_w if input_w is not None else w * stride)
    in_h = float(input_h if input_h is not None else h * stride)
    mask = peaks(hm) & (hm >= np.float32(score_threshold))
    idx = np.flatnonzero(mask.ravel())
    scores = hm.ravel()[idx]
    order = np.argsort(-scores, kind="stable")[:pre_nms_top_k]
    kept = []
    for k in order:
        flat = int(idx[k])
        cls, rem = divmod(flat, h * w)
        y, x = divmod(rem, w)
        score = float(scores[k])
        cx = (x + float(offset[0, y, x])) * stride
        cy = (y + float(offset[1, y, x])) * stride
        bw, bh = float(size[0, y, x]), float(size[1, y, x])
        x1 = max(0.0, cx - bw / 2)
        y1 = max(0.0, cy - bh / 2)
        x2 = min(in_w, cx + bw / 2)
        y2 = min(in_h, cy + bh / 2)
        if not (x2 > x1 and y2 > y1):
            continue
        box = [x1, y1, x2 - x1, y2 - y1]
        if any(d["class_id"] == cls and iou_xywh(d["bbox"], box) > nms_iou for d in kept):
            continue
        kept.append({"class_id": cls, "score": score, "bbox": box})
        if len(kept) >= top_k:
            break
    return kept


def decode_batch(hm, size, offset, **kw):
    """Decodes N images (numpy arrays N x C x H x W etc.)."""
    return [decode_one(hm[i], size[i], offset[i], **kw) for i in range(hm.shape[0])]


def load_reference(index_path):
    """Reads tensors written by train.py's dump_reference (JSON index + raw float32 .bin)."""
    import json
    import os

    with open(index_path, "r", encoding="utf-8") as f:
        index = json.load(f)
    bin_path = index.get("bin") or os.path.splitext(index_path)[0] + ".bin"
    raw = np.fromfile(bin_path, dtype="<f4")
    out = {}
    for name, t in index["tensors"].items():
        count = int(np.prod(t["dims"]))
        start = t["offset"] // 4
        out[name] = raw[start:start + count].reshape(t["dims"])
    return index, out


def main(argv=None):
    """CLI: decode tensors from a reference_outputs.json (heatmap, size, offset) to JSON."""
    import argparse
    import json
    import sys

    p = argparse.ArgumentParser(description="Decode detector outputs (reference implementation).")
    p.add_argument("--tensors", required=True, help="reference_outputs.json (index of a float32 .bin)")
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--score-threshold", type=float, default=DEFAULTS["score_threshold"])
    p.add_argument("--pre-nms-top-k", type=int, default=DEFAULTS["pre_nms_top_k"])
    p.add_argument("--nms-iou", type=float, default=DEFAULTS["nms_iou"])
    p.add_argument("--top-k", type=int, default=DEFAULTS["top_k"])
    a = p.parse_args(argv)
    _, t = load_reference(a.tensors)
    dets = decode_batch(t["heatmap"], t["size"], t["offset"], stride=a.stride, score_threshold=a.score_threshold,
                        pre_nms_top_k=a.pre_nms_top_k, nms_iou=a.nms_iou, top_k=a.top_k)
    json.dump(dets, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""Training data: COCO files, shard lists, images preloaded as one uint8 tensor, batch
augmentation and CenterNet targets.

Shard list format (written by the launcher): one image per line, either the image's `file_name`
exactly as in the train COCO file or its COCO `id`; blank lines and lines starting with `#` are
skipped. Each rank reads only the images its shard names.
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model import STRIDE

PAD_VALUE = 114


class DataError(Exception):
    """Input files are missing or do not say what we expect."""


def load_coco(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            coco = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"COCO file {path}: expected readable JSON, found error: {e}") from e
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise DataError(f"COCO file {path}: expected a list at '{key}', found {type(coco.get(key)).__name__}")
    return coco


def categories_of(coco):
    """Categories sorted by id: class index i is categories[i]."""
    return sorted(coco["categories"], key=lambda c: c["id"])


def read_shard(path, coco):
    """Returns the COCO image records a shard list names, in file order."""
    by_name = {im["file_name"]: im for im in coco["images"]}
    by_id = {str(im["id"]): im for im in coco["images"]}
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise DataError(f"shard list {path}: expected a readable file, found error: {e}") from e
    out = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        im = by_name.get(line) or by_id.get(line)
        if im is None:
            raise DataError(
                f"shard list {path} line {n}: expected a file_name or id from the train COCO file, found {line!r}"
            )
        out.append(im)
    if not out:
        raise DataError(f"shard list {path}: expected at least one image, found none")
    return out


def _letterbox(img, size):
    """Fits an image into size x size (centred, grey padding); returns it, scale and offsets."""
    w, h = img.size
    if w == size and h == size:
        return img, 1.0, 1.0, 0, 0
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = Image.new("RGB", (size, size), (PAD_VALUE,) * 3)
    left, top = (size - nw) // 2, (size - nh) // 2
    canvas.paste(img.resize((nw, nh), Image.BILINEAR), (left, top))
    return canvas, nw / w, nh / h, left, top


def load_images(records, coco, images_root, size):
    """Decodes images into a uint8 tensor N x 3 x size x size, per-image boxes and classes (in
    input pixels) and per-image transforms (sx, sy, left, top) from COCO pixels to input pixels.

    Variant images are already letterboxed to `size`; any other size is letterboxed here (and
    its boxes moved) so a mismatched input degrades gracefully instead of failing.
    """
    cats = categories_of(coco)
    cls_of = {c["id"]: i for i, c in enumerate(cats)}
    anns = {}
    for a in coco["annotations"]:
        if a.get("iscrowd", 0):
            continue
        anns.setdefault(a["image_id"], []).append(a)
    pixels = torch.empty((len(records), 3, size, size), dtype=torch.uint8)
    boxes, classes, transforms = [], [], []
    for i, im in enumerate(records):
        path = os.path.join(images_root, im["file_name"])
        try:
            with Image.open(path) as raw:
                img = raw.convert("RGB")
        except OSError as e:
            raise DataError(f"image {path}: expected a readable JPEG/PNG, found error: {e}") from e
        img, sx, sy, left, top = _letterbox(img, size)
        transforms.append((sx, sy, left, top))
        pixels[i] = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)
        b, c = [], []
        for a in anns.get(im["id"], []):
            if a["category_id"] not in cls_of:
                raise DataError(f"annotation {a.get('id')}: category_id {a['category_id']} is not among the categories")
            x, y, w, h = a["bbox"]
            if w <= 0 or h <= 0:
                continue
            b.append([x * sx + left, y * sy + top, w * sx, h * sy])
            c.append(cls_of[a["category_id"]])
        boxes.append(torch.tensor(b, dtype=torch.float32).view(-1, 4))
        classes.append(torch.tensor(c, dtype=torch.int64))
    return pixels, boxes, classes, transforms


def _window(lo_obj, size_obj, crop, size, u):
    """A crop origin in [0, size - crop] that keeps [lo_obj, lo_obj + size_obj] inside."""
    lo = max(0.0, lo_obj + size_obj - crop)
    hi = min(float(size - crop), lo_obj)
    if lo > hi:  # object larger than the crop: centre it
        return int(round(min(max(lo_obj + size_obj / 2 - crop / 2, 0.0), size - crop)))
    return int(lo + (hi - lo) * u)


def _clip_boxes(b, classes, x0, y0, crop):
    """Boxes shifted by (-x0, -y0) and clipped to the crop: (kept boxes, kept classes, ignored)."""
    x1, y1 = b[:, 0] - x0, b[:, 1] - y0
    x2, y2 = x1 + b[:, 2], y1 + b[:, 3]
    cx1, cy1, cx2, cy2 = (np.clip(v, 0, crop) for v in (x1, y1, x2, y2))
    vis = np.clip(cx2 - cx1, 0, None) * np.clip(cy2 - cy1, 0, None)
    clipped = np.stack([cx1, cy1, cx2 - cx1, cy2 - cy1], axis=1).reshape(-1, 4)
    keep = vis >= 0.45 * b[:, 2] * b[:, 3]
    drop = ~keep & (vis > 0)
    return (torch.from_numpy(clipped[keep].astype(np.float32)).view(-1, 4),
            classes[torch.from_numpy(keep)], clipped[drop])


def random_crops(images, boxes, classes, crop, gen):
    """Object-centred square crops at full scale: each crop holds one whole object (picked at
    random) plus whatever surrounds it. A crop costs (crop / size)^2 of a full image but keeps
    most of its objects, so early training sees more objects per second. Objects cut to under
    45% become ignore regions (no heatmap penalty) rather than background.
    """
    n, _, size, _ = images.shape
    out = images.new_empty((n, images.shape[1], crop, crop))
    out_boxes, out_classes, ignores = [], [], []
    for i in range(n):
        b = boxes[i].numpy().astype(np.float64).reshape(-1, 4)
        r = torch.rand(3, generator=gen).tolist()
        if len(b):
            bx, by, bw, bh = b[min(int(r[0] * len(b)), len(b) - 1)]
            x0, y0 = _window(bx, bw, crop, size, r[1]), _window(by, bh, crop, size, r[2])
        else:
            x0, y0 = int(r[1] * (size - crop + 1)), int(r[2] * (size - crop + 1))
        out[i] = images[i, :, y0:y0 + crop, x0:x0 + crop]
        kb, kc, ig = _clip_boxes(b, classes[i], x0, y0, crop)
        out_boxes.append(kb)
        out_classes.append(kc)
        ignores.append(ig)
    return out, out_boxes, out_classes, ignores


def augment_light(images, boxes, classes, gen, ignores=None):
    """Exact dihedral flips/transposes and a channel permutation: no resampling, nearly free.

    Every shape class is closed under the 8 flips/rotations, and colour is not a class cue.
    `ignores` (per-image arrays of boxes) move with the image.
    """
    n, _, size, _ = images.shape
    r = torch.rand(n, 3, generator=gen).tolist()
    perm = [torch.randperm(3, generator=gen) for _ in range(n)]
    out, out_boxes, out_ignores = [], [], []
    for i in range(n):
        img = images[i, perm[i]]
        b = boxes[i].clone()
        g = np.array(ignores[i], dtype=np.float64).reshape(-1, 4) if ignores is not None else np.zeros((0, 4))
        if r[i][0] < 0.5:
            img = img.flip(2)
            b[:, 0] = size - b[:, 0] - b[:, 2]
            g[:, 0] = size - g[:, 0] - g[:, 2]
        if r[i][1] < 0.5:
            img = img.flip(1)
            b[:, 1] = size - b[:, 1] - b[:, 3]
            g[:, 1] = size - g[:, 1] - g[:, 3]
        if r[i][2] < 0.5:
            img = img.transpose(1, 2)
            b = b[:, [1, 0, 3, 2]]
            g = g[:, [1, 0, 3, 2]]
        out.append(img)
        out_boxes.append(b)
        out_ignores.append(g)
    return torch.stack(out), out_boxes, [c.clone() for c in classes], out_ignores


def augment(images, boxes, classes, gen):
    """Random dihedral flips/transposes, scale and translation (one batched grid_sample), colour
    (channel mix, inversion, gain, bias: one 3x3 matrix per image) and noise on a float batch in
    [0, 1]. Colour is not a class cue in our data, so colour changes are free variety, and every
    shape class is closed under the 8 flips/rotations.
    """
    n, _, size, _ = images.shape
    device = images.device
    r = torch.rand(n, 4, generator=gen)
    flip_x = torch.where(r[:, 0] < 0.5, -1.0, 1.0)
    flip_y = torch.where(r[:, 1] < 0.5, -1.0, 1.0)
    transpose = r[:, 2] < 0.5
    s = torch.empty(n).uniform_(0.7, 1.3, generator=gen)
    t = torch.empty(n, 2).uniform_(-0.2, 0.2, generator=gen)
    # Forward map in normalised coords: out = s * T(F(in)) + t, with F the flips and T an
    # optional x/y swap; affine_grid wants the inverse: in = F^-1 T^-1 ((out - t) / s).
    a = torch.zeros(n, 2, 2)
    a[:, 0, 0] = flip_x
    a[:, 1, 1] = flip_y
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    a = torch.where(transpose[:, None, None], swap @ a, a)  # forward linear part without scale
    inv = a.transpose(1, 2)  # a is orthogonal
    theta = torch.zeros(n, 2, 3)
    theta[:, :, :2] = inv / s[:, None, None]
    theta[:, :, 2] = -(inv @ t[:, :, None])[:, :, 0] / s[:, None]
    grid = F.affine_grid(theta.to(device), [n, 3, size, size], align_corners=False)
    fill = torch.rand(n, 1, 1, 1, generator=gen).to(device)
    x = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill

    half = size / 2.0
    a_np, s_np, t_np = a.numpy().astype(np.float64), s.numpy().astype(np.float64), t.numpy().astype(np.float64)
    out_boxes, out_classes, ignores = [], [], []
    for i in range(n):
        b = boxes[i].numpy().astype(np.float64)
        # Box corners to normalised coords, through the forward map, back to pixels.
        cx = np.stack([b[:, 0], b[:, 0] + b[:, 2]], 1) / half - 1.0
        cy = np.stack([b[:, 1], b[:, 1] + b[:, 3]], 1) / half - 1.0
        ai = a_np[i]
        nx = (s_np[i] * (ai[0, 0] * cx + ai[0, 1] * cy) + t_np[i, 0] + 1.0) * half
        ny = (s_np[i] * (ai[1, 0] * cx + ai[1, 1] * cy) + t_np[i, 1] + 1.0) * half
        x1, x2 = nx.min(1, initial=np.inf), nx.max(1, initial=-np.inf)
        y1, y2 = ny.min(1, initial=np.inf), ny.max(1, initial=-np.inf)
        area = (x2 - x1) * (y2 - y1)
        cx1, cy1, cx2, cy2 = (np.clip(v, 0, size) for v in (x1, y1, x2, y2))
        vis = np.clip(cx2 - cx1, 0, None) * np.clip(cy2 - cy1, 0, None)
        # Objects pushed mostly out of frame become ignore regions; the visible rest is the box.
        keep = vis >= 0.45 * area
        nb = np.stack([cx1, cy1, cx2 - cx1, cy2 - cy1], axis=1)
        out_boxes.append(torch.from_numpy(nb[keep].astype(np.float32)).view(-1, 4))
        out_classes.append(classes[i][torch.from_numpy(keep)])
        ignores.append(nb[~keep & (vis > 0)].reshape(-1, 4))

    perm = torch.stack([torch.randperm(3, generator=gen) for _ in range(n)])
    m = torch.zeros(n, 3, 3)
    m.scatter_(2, perm[:, :, None], 1.0)
    invert = torch.rand(n, generator=gen) < 0.2
    sign = torch.where(invert, -1.0, 1.0)
    gain = torch.empty(n, 3).uniform_(0.7, 1.3, generator=gen) * sign[:, None]
    m = m * gain[:, :, None]
    # y = gain * (P x - 0.5) + 0.5 + bias, with inversion folded into the gain's sign.
    bias = torch.empty(n, 3).uniform_(-0.12, 0.12, generator=gen) + 0.5 - 0.5 * m.sum(2)
    x = torch.einsum("nij,njhw->nihw", m.to(device), x) + bias.to(device)[:, :, None, None]
    sigma = torch.empty(n, 1, 1, 1).uniform_(0.0, 0.04, generator=gen).to(device)
    x = x + torch.randn((n, 1, size, size), generator=gen).to(device) * sigma
    return x.clamp_(0.0, 1.0), out_boxes, out_classes, ignores


def build_targets(boxes, classes, num_classes, size, device, ignores=None):
    """CenterNet targets at stride 4.

    heatmap: elliptical Gaussians (sigma = 0.54 * side / 6 in cells, as TTFNet) peaking at 1 on
    each object's centre cell. Size (log w, log h in cells) is supervised at the centre cell and
    its 8 neighbours (weight 1 at the centre, 0.5 around), so a peak found one cell off still
    reads a sensible box; the loss reads offsets at weight-1 cells only. Smaller objects win
    shared cells. Cells inside `ignores` boxes (cut-off objects) carry no background penalty.
    """
    n = len(boxes)
    h = w = size // STRIDE
    hm = np.zeros((n, num_classes, h, w), dtype=np.float32)
    reg = np.zeros((n, 4, h, w), dtype=np.float32)
    weight = np.zeros((n, 1, h, w), dtype=np.float32)
    ignore = np.zeros((n, 1, h, w), dtype=np.float32)
    for i in range(n):
        for gx0, gy0, gw, gh in (ignores[i] if ignores is not None else ()):
            xa, xb = int(gx0 // STRIDE), int(math.ceil((gx0 + gw) / STRIDE))
            ya, yb = int(gy0 // STRIDE), int(math.ceil((gy0 + gh) / STRIDE))
            ignore[i, 0, max(0, ya):min(h, yb), max(0, xa):min(w, xb)] = 1.0
        b = boxes[i].numpy().astype(np.float64)
        c = classes[i].numpy()
        for j in np.argsort(-(b[:, 2] * b[:, 3]), kind="stable"):
            bx, by, bw, bh = b[j]
            if bw < 1 or bh < 1:
                continue
            cx, cy = (bx + bw / 2) / STRIDE, (by + bh / 2) / STRIDE
            ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
            sx = max(0.54 * bw / STRIDE / 6, 0.4)
            sy = max(0.54 * bh / STRIDE / 6, 0.4)
            rx, ry = int(3 * sx) + 1, int(3 * sy) + 1
            x0, x1 = max(0, ix - rx), min(w, ix + rx + 1)
            y0, y1 = max(0, iy - ry), min(h, iy + ry + 1)
            gx = np.exp(-((np.arange(x0, x1) - ix) ** 2) / (2 * sx * sx))
            gy = np.exp(-((np.arange(y0, y1) - iy) ** 2) / (2 * sy * sy))
            win = hm[i, c[j], y0:y1, x0:x1]
            np.maximum(win, (gy[:, None] * gx[None, :]).astype(np.float32), out=win)
            lw, lh = np.log(bw / STRIDE), np.log(bh / STRIDE)
            ya, yb = max(0, iy - 1), min(h, iy + 2)
            xa, xb = max(0, ix - 1), min(w, ix + 2)
            reg[i, 0, ya:yb, xa:xb] = lw
            reg[i, 1, ya:yb, xa:xb] = lh
            reg[i, 2, ya:yb, xa:xb] = cx - np.arange(xa, xb)[None, :]
            reg[i, 3, ya:yb, xa:xb] = cy - np.arange(ya, yb)[:, None]
            weight[i, 0, ya:yb, xa:xb] = 0.5
            weight[i, 0, iy, ix] = 1.0
    return tuple(torch.from_numpy(a).to(device) for a in (hm, reg, weight, ignore))

"""Training augmentation as named transforms and presets (`--augment`).

Each transform is one name, applied per image with its own probability; a policy is a preset name
or a comma-separated list of transform names. The default, `photo`, is safe for real photographs:
nothing in it changes what an object is (no vertical flips, transposes or channel swaps, which
turn people upside down, mirror text and make a red traffic light green).

Transforms (see TRANSFORMS for the exact parameters):

- hflip            mirror left-right, p 0.5; exact. Safe for nearly all photos (not for text).
- vflip            mirror top-bottom, p 0.5; exact. Only for top-down imagery (aerial, microscopy)
                   or synthetic shapes.
- transpose        swap x and y, p 0.5; exact. With both flips: all 8 rotations/reflections.
                   Same caveat as vflip.
- channel_shuffle  random order of the R, G, B channels. Only when colour carries no class meaning.
- scale_translate  zoom 0.75-1.25 and shift up to 10% of the side (one bilinear resample per
                   image); boxes pushed mostly (> 55%) out of frame become ignore regions.
- color_jitter     brightness x0.8-1.2, contrast x0.8-1.2, saturation x0.7-1.3.
- invert           photographic negative, p 0.2. Synthetic data only.
- noise            Gaussian pixel noise, sigma 0-0.04.
- mosaic           p 0.5: the image becomes a 2x2 mosaic of itself and three other images of the
                   batch at half scale (more, smaller objects per image).

Presets: photo (default) = hflip, scale_translate, color_jitter; photo-mosaic = photo + mosaic;
shapes = hflip, vflip, transpose, channel_shuffle (the old `light`); shapes-full = shapes +
scale_translate, color_jitter, invert, noise; none. `light` and `full` remain as the old
implementations (synthetic shapes) for runs that name them.

The trainer logs the policy as run params `augment` (as given) and `augment_transforms` (the
expanded list).
"""

import numpy as np
import torch
import torch.nn.functional as F

TRANSFORMS = {
    "hflip": "mirror left-right (p 0.5)",
    "vflip": "mirror top-bottom (p 0.5); top-down imagery and synthetic shapes only",
    "transpose": "swap x and y (p 0.5); top-down imagery and synthetic shapes only",
    "channel_shuffle": "random RGB channel order; only where colour is not a class cue",
    "scale_translate": "zoom 0.75-1.25, shift up to 10% (bilinear); cut-off boxes become ignore regions",
    "color_jitter": "brightness x0.8-1.2, contrast x0.8-1.2, saturation x0.7-1.3",
    "invert": "photographic negative (p 0.2); synthetic data only",
    "noise": "Gaussian pixel noise, sigma 0-0.04",
    "mosaic": "2x2 mosaic with three other batch images at half scale (p 0.5)",
}

PRESETS = {
    "photo": ["hflip", "scale_translate", "color_jitter"],
    "photo-mosaic": ["hflip", "scale_translate", "color_jitter", "mosaic"],
    "shapes": ["hflip", "vflip", "transpose", "channel_shuffle"],
    "shapes-full": ["hflip", "vflip", "transpose", "channel_shuffle", "scale_translate", "color_jitter",
                    "invert", "noise"],
    "none": [],
}

DEFAULT_POLICY = "photo"
LEGACY = {"light", "full"}
EXACT = ["hflip", "vflip", "transpose", "channel_shuffle"]


def parse_policy(value):
    """A preset, a legacy name or a comma-separated list of transforms -> list of names.

    Raises ValueError naming the unknown parts.
    """
    value = value.strip()
    if value in PRESETS:
        return list(PRESETS[value])
    if value in LEGACY:
        return [value]
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown or not names:
        raise ValueError(
            f"--augment: expected a preset ({', '.join(PRESETS)}) or a comma-separated list of "
            f"{', '.join(TRANSFORMS)}; found {value!r}" + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    # Keep the canonical order (the order they are applied in).
    return [n for n in TRANSFORMS if n in names]


def _mosaic(images, boxes, classes, ignores, gen):
    n, c, size, _ = images.shape
    half = size // 2
    small = F.interpolate(images, size=(half, half), mode="bilinear", align_corners=False)
    use = (torch.rand(n, generator=gen) < 0.5).tolist()
    out = images.clone()
    out_boxes, out_classes, out_ignores = [], [], []
    for i in range(n):
        if not use[i] or n < 2:
            out_boxes.append(boxes[i])
            out_classes.append(classes[i])
            out_ignores.append(ignores[i])
            continue
        picks = [i] + [(i + k) % n for k in (1, 2, 3)]
        bl, cl, gl = [], [], []
        for q, j in enumerate(picks):
            ox, oy = (q % 2) * half, (q // 2) * half
            out[i, :, oy:oy + half, ox:ox + half] = small[j]
            scale = half / size
            b = boxes[j].clone() * scale
            b[:, 0] += ox
            b[:, 1] += oy
            bl.append(b)
            cl.append(classes[j])
            g = np.array(ignores[j], dtype=np.float64).reshape(-1, 4) * scale
            g[:, 0] += ox
            g[:, 1] += oy
            gl.append(g)
        out_boxes.append(torch.cat(bl).view(-1, 4))
        out_classes.append(torch.cat(cl))
        out_ignores.append(np.concatenate(gl).reshape(-1, 4))
    return out, out_boxes, out_classes, out_ignores


def _exact(images, boxes, ignores, names, gen):
    n, _, size, _ = images.shape
    r = torch.rand(n, 3, generator=gen).tolist()
    perms = [torch.randperm(3, generator=gen) for _ in range(n)]
    out, out_boxes, out_ignores = [], [], []
    for i in range(n):
        img = images[i]
        b = boxes[i].clone()
        g = np.array(ignores[i], dtype=np.float64).reshape(-1, 4).copy()
        if "channel_shuffle" in names:
            img = img[perms[i]]
        if "hflip" in names and r[i][0] < 0.5:
            img = img.flip(2)
            b[:, 0] = size - b[:, 0] - b[:, 2]
            g[:, 0] = size - g[:, 0] - g[:, 2]
        if "vflip" in names and r[i][1] < 0.5:
            img = img.flip(1)
            b[:, 1] = size - b[:, 1] - b[:, 3]
            g[:, 1] = size - g[:, 1] - g[:, 3]
        if "transpose" in names and r[i][2] < 0.5:
            img = img.transpose(1, 2)
            b = b[:, [1, 0, 3, 2]]
            g = g[:, [1, 0, 3, 2]]
        out.append(img)
        out_boxes.append(b)
        out_ignores.append(g)
    return torch.stack(out), out_boxes, out_ignores


def _scale_translate(images, boxes, classes, ignores, gen):
    n, _, size, _ = images.shape
    device = images.device
    s = torch.empty(n).uniform_(0.75, 1.25, generator=gen)
    t = torch.empty(n, 2).uniform_(-0.1, 0.1, generator=gen) * 2.0  # normalised coords span 2
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1.0 / s
    theta[:, 1, 1] = 1.0 / s
    theta[:, :, 2] = -t / s[:, None]
    grid = F.affine_grid(theta.to(device), [n, images.shape[1], size, size], align_corners=False)
    fill = images.mean(dim=(1, 2, 3), keepdim=True)
    x = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    half = size / 2.0
    out_boxes, out_classes, out_ignores = [], [], []
    for i in range(n):
        si, tx, ty = float(s[i]), float(t[i, 0]), float(t[i, 1])

        def move(b):
            x1 = ((b[:, 0] / half - 1.0) * si + tx + 1.0) * half
            y1 = ((b[:, 1] / half - 1.0) * si + ty + 1.0) * half
            return x1, y1, b[:, 2] * si, b[:, 3] * si

        b = boxes[i].numpy().astype(np.float64).reshape(-1, 4)
        x1, y1, w, h = move(b)
        cx1, cy1 = np.clip(x1, 0, size), np.clip(y1, 0, size)
        cx2, cy2 = np.clip(x1 + w, 0, size), np.clip(y1 + h, 0, size)
        vis = np.clip(cx2 - cx1, 0, None) * np.clip(cy2 - cy1, 0, None)
        keep = vis >= 0.45 * (w * h)
        nb = np.stack([cx1, cy1, cx2 - cx1, cy2 - cy1], axis=1)
        out_boxes.append(torch.from_numpy(nb[keep].astype(np.float32)).view(-1, 4))
        out_classes.append(classes[i][torch.from_numpy(keep)])
        g = np.array(ignores[i], dtype=np.float64).reshape(-1, 4)
        gx, gy, gw, gh = move(g)
        moved = np.stack([gx, gy, gw, gh], axis=1).reshape(-1, 4)
        out_ignores.append(np.concatenate([moved, nb[~keep & (vis > 0)].reshape(-1, 4)]))
    return x, out_boxes, out_classes, out_ignores


def _color(images, names, gen):
    n = images.shape[0]
    device = images.device
    x = images
    if "color_jitter" in names:
        b = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.2, generator=gen).to(device)
        c = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.2, generator=gen).to(device)
        s = torch.empty(n, 1, 1, 1).uniform_(0.7, 1.3, generator=gen).to(device)
        x = x * b
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * c + mean
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = gray + (x - gray) * s
    if "invert" in names:
        inv = (torch.rand(n, generator=gen) < 0.2).to(device)[:, None, None, None]
        x = torch.where(inv, 1.0 - x, x)
    if "noise" in names:
        sigma = torch.empty(n, 1, 1, 1).uniform_(0.0, 0.04, generator=gen).to(device)
        x = x + torch.randn((n, 1) + tuple(x.shape[2:]), generator=gen).to(device) * sigma
    return x.clamp(0.0, 1.0)


def apply_policy(images, boxes, classes, names, gen, ignores=None, resample=True):
    """Applies the transforms `names` (a parsed policy) to a float batch in [0, 1].

    `boxes` are per-image [N, 4] xywh tensors in pixels, `classes` per-image tensors, `ignores`
    per-image arrays of ignore boxes (moved with the image). `resample=False` leaves out mosaic
    and scale_translate (object-centred crops are already rescaled views). Returns (images,
    boxes, classes, ignores).
    """
    n = images.shape[0]
    ignores = [np.zeros((0, 4)) for _ in range(n)] if ignores is None else list(ignores)
    boxes = [b.reshape(-1, 4) for b in boxes]
    classes = list(classes)
    if resample and "mosaic" in names:
        images, boxes, classes, ignores = _mosaic(images, boxes, classes, ignores, gen)
    if any(t in names for t in EXACT):
        images, boxes, ignores = _exact(images, boxes, ignores, names, gen)
    if resample and "scale_translate" in names:
        images, boxes, classes, ignores = _scale_translate(images, boxes, classes, ignores, gen)
    if any(t in names for t in ("color_jitter", "invert", "noise")):
        images = _color(images, names, gen)
    return images, boxes, [c.clone() for c in classes], ignores

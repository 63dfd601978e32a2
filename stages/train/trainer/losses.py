"""CenterNet losses: penalty-reduced focal loss on the heatmap, L1 on log-size and offset."""

import torch
import torch.nn.functional as F


def focal_loss(logits, target, ignore=None, alpha=2.0, beta=4.0):
    """CenterNet's variant of focal loss, normalised by the number of objects. `ignore` (N x 1 x
    H x W, 1 = ignore) removes the background penalty where a cut-off object lies."""
    pos = target.eq(1.0).float()
    neg = 1.0 - pos
    if ignore is not None:
        neg = neg * (1.0 - ignore)
    logp = F.logsigmoid(logits)
    log1mp = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos_loss = logp * (1 - p).pow(alpha) * pos
    neg_loss = log1mp * p.pow(alpha) * (1 - target).pow(beta) * neg
    num_pos = pos.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos


def regression_loss(pred, target, weight):
    """Weighted L1 over the supervised cells; pred/target are N x K x H x W."""
    total = weight.sum().clamp(min=1.0)
    return (F.l1_loss(pred, target, reduction="none") * weight).sum() / total


def detection_loss(outputs, targets, size_weight=1.0, offset_weight=1.0):
    hm_logits, size, offset = outputs
    hm_t, reg_t, w, ignore = targets
    l_hm = focal_loss(hm_logits, hm_t, ignore)
    l_size = regression_loss(size, reg_t[:, 0:2], w)
    # Offsets only at centre cells: a neighbour's offset (in [-1, 2)) needs sub-cell position
    # knowledge the network learns slowly, and peaks land on the centre cell nearly always.
    l_off = regression_loss(offset, reg_t[:, 2:4], w.eq(1.0).float())
    total = l_hm + size_weight * l_size + offset_weight * l_off
    return total, {"loss_heatmap": l_hm.detach(), "loss_size": l_size.detach(), "loss_offset": l_off.detach()}

#!/usr/bin/python3
"""Trains the Sluice detector (a small CenterNet, see model.py) and exports it to ONNX.

  python3 train.py --data-dir DIR --shard DIR/shards/node-<rank>.txt --train-coco DIR/train.json \
      --val-coco DIR/val.json --images-root DIR/images --out DIR/out --epochs N --batch-size B \
      --lr LR --input-size 320 [--device auto|cpu|cuda] [--max-minutes M] [--seed S]

Distributed data parallel when WORLD_SIZE > 1 (env RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
gloo on CPU, NCCL on CUDA); each rank reads only its shard (`{rank}` in --shard is replaced by
the rank). --batch-size is per process. Events go to stdout as JSON lines (see events.py), logs
to stderr. mAP is COCO-style (101-point interpolation, IoU 0.50:0.95), see mean_ap.py.

With --max-minutes the learning-rate schedule follows whichever of steps or wall time is further
along, so a slower machine still ends with a fully annealed model inside the budget.

Exit status: 0 done, 2 bad input (message on stderr and an "error" event), 1 anything else.
"""

import argparse
import copy
import math
import os
import sys
import time

# Before torch loads libgomp: spinning OpenMP workers cost up to 3x throughput when other
# processes held one of the two cores (measured); sleeping ones cost ~15% on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.distributed as dist

from augment_policy import DEFAULT_POLICY, LEGACY, PRESETS, TRANSFORMS, apply_policy, parse_policy
from data import DataError, augment, augment_light, build_targets, random_crops, categories_of, load_coco, load_images, read_shard
from decode import DEFAULTS as DECODE_DEFAULTS, decode_batch
from events import emit, log, set_rank
from export_onnx import export_onnx, model_card, verify_onnx, write_json
from losses import detection_loss
from mean_ap import evaluate
from model import STRIDE, CenterNet, ExportWrapper, count_parameters


def parse_args(argv):
    p = argparse.ArgumentParser(description="Train the Sluice CenterNet detector and export ONNX.")
    p.add_argument("--data-dir", default=None, help="base for relative paths and the defaults below")
    p.add_argument("--shard", default=None, help="shard list for this rank ({rank} is substituted); "
                   "default: every train image, split round-robin by rank")
    p.add_argument("--train-coco", default="train.json")
    p.add_argument("--val-coco", default="val.json")
    p.add_argument("--images-root", default="images")
    p.add_argument("--out", default="out")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16, help="images per step per process")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--input-size", type=int, default=320)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget of the training loop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", type=int, default=128,
                   help="train on object-centred crops of this side (multiple of 32; 0: off) ...")
    p.add_argument("--crop-until", type=float, default=0.9,
                   help="... until this fraction of training, then on full images")
    p.add_argument("--ema-decay", type=float, default=0.998, help="EMA of weights used for eval/export")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    p.add_argument("--init-weights", default=None,
                   help="start from this model.pt (a state dict of the same architecture) instead of random weights")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: cores / local ranks)")
    p.add_argument("--eval-every", type=int, default=0, help="also evaluate every N epochs (0: only at the end)")
    p.add_argument("--log-every", type=int, default=10, help="steps between metric events")
    p.add_argument("--augment", default=DEFAULT_POLICY,
                   help="augmentation: a preset (" + ", ".join(PRESETS) + "; default " + DEFAULT_POLICY +
                   ", safe for photos) or a comma-separated list of " + ", ".join(TRANSFORMS) +
                   "; see augment_policy.py")
    p.add_argument("--dump-predictions", action="store_true",
                   help="also write reference outputs for the first val images (val_predictions.json is always written)")
    p.add_argument("--bench", action="store_true", help="measure training images/s on random data and exit")
    p.add_argument("--bench-steps", type=int, default=15)
    a = p.parse_args(argv)
    try:
        a.augment_transforms = parse_policy(a.augment)
    except ValueError as err:
        p.error(str(err))
    if a.input_size % 32 != 0 or a.input_size < 64:
        p.error(f"--input-size: expected a multiple of 32 >= 64, found {a.input_size}")
    if a.crop % 32 != 0 or a.crop < 0:
        p.error(f"--crop: expected 0 or a multiple of 32, found {a.crop}")
    if a.crop >= a.input_size:
        a.crop = 0  # a crop as large as the image is no crop
    if a.batch_size < 1 or a.epochs < 1:
        p.error("--batch-size and --epochs: expected >= 1")
    return a


def resolve(base, path):
    if path is None or base is None or os.path.isabs(path):
        return path
    return os.path.join(base, path)


class Dist:
    """Process-group facts; a plain object when not distributed."""

    def __init__(self, device):
        self.device_type = device.type
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", str(self.rank)))
        self.enabled = self.world > 1
        if self.enabled:
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, init_method="env://", world_size=self.world, rank=self.rank)

    def reduce(self, value, op):
        if not self.enabled:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64)
        if self.device_type == "cuda":
            t = t.cuda()
        dist.all_reduce(t, op=op)
        return float(t.item())

    def barrier(self):
        if self.enabled:
            dist.barrier()

    def close(self):
        if self.enabled:
            dist.destroy_process_group()


def init_weights(model, path):
    """Loads a previous model.pt (warm start); a file for another architecture or class count is bad input."""
    try:
        state = torch.load(path, map_location="cpu")
        model.load_state_dict(state)
    except (OSError, RuntimeError, KeyError) as err:
        raise DataError(f"--init-weights {path}: expected a state dict of this model ({err})") from err
    log(f"initialised from {path}")


class EMA:
    """Exponential moving average of weights (and BN buffers): a steadier model to evaluate."""

    def __init__(self, model, decay=0.998):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def pick_device(choice):
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise DataError("--device cuda: expected a CUDA device, found none")
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        torch.cuda.set_device(device)  # before NCCL starts, or every rank talks through GPU 0
        return device
    return torch.device("cpu")


def set_threads(args):
    if args.threads:
        n = args.threads
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        n = max(1, cores // max(1, local))
    torch.set_num_threads(n)
    return n


@torch.no_grad()
def predict(model, pixels, batch_size, device):
    """Raw exported-style outputs (probabilities, sizes in pixels, offsets) as numpy arrays."""
    wrapper = ExportWrapper(model).eval()
    outs = [[], [], []]
    for i in range(0, pixels.shape[0], batch_size):
        x = pixels[i:i + batch_size].to(device).float() / 255.0
        for k, t in enumerate(wrapper(x)):
            outs[k].append(t.float().cpu())
    return [torch.cat(o).numpy() for o in outs]


def evaluate_model(model, val, args, device, cats):
    pixels, _, _, records, transforms, coco = val
    if pixels.shape[0] == 0:
        return {"map50": 0.0, "map50_95": 0.0, "ap_definition": "coco-101-point", "per_class": []}, [], None
    hm, size, off = predict(model, pixels, max(8, args.batch_size), device)
    dets = decode_batch(hm, size, off, stride=STRIDE, input_w=args.input_size, input_h=args.input_size,
                        **DECODE_DEFAULTS)
    preds = []
    for rec, (sx, sy, left, top), ds in zip(records, transforms, dets):
        for d in ds:
            x, y, w, h = d["bbox"]
            # Back to the COCO file's pixel space (identity for variant images).
            bbox = [(x - left) / sx, (y - top) / sy, w / sx, h / sy]
            preds.append({"image_id": rec["id"], "category_id": cats[d["class_id"]]["id"], "bbox": bbox,
                          "score": d["score"]})
    return evaluate(coco, preds), preds, (hm, size, off)


def load_split(coco_path, records, images_root, size):
    coco = load_coco(coco_path)
    recs = coco["images"] if records is None else records
    pixels, boxes, classes, transforms = load_images(recs, coco, images_root, size)
    return pixels, boxes, classes, recs, transforms, coco


def lr_at(progress, step, warmup, base):
    if step < warmup:
        return base * (step + 1) / warmup
    p = min(1.0, max(0.0, progress))
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))


def train(args):
    device = pick_device(args.device)
    dd = Dist(device)
    set_rank(dd.rank)
    threads = set_threads(args)
    base = args.data_dir
    train_coco = resolve(base, args.train_coco)
    val_coco = resolve(base, args.val_coco)
    images_root = resolve(base, args.images_root)
    out = resolve(base, args.out)
    shard = resolve(base, args.shard.replace("{rank}", str(dd.rank))) if args.shard else None
    os.makedirs(out, exist_ok=True)

    coco = load_coco(train_coco)
    cats = categories_of(coco)
    if not cats:
        raise DataError(f"{train_coco}: expected at least one category, found none")
    if shard:
        records = read_shard(shard, coco)
    else:
        records = [im for i, im in enumerate(coco["images"]) if i % dd.world == dd.rank]
    t0 = time.time()
    pixels, boxes, classes, transforms = load_images(records, coco, images_root, args.input_size)
    emit({"type": "shard", "rank": dd.rank, "world_size": dd.world, "shard": shard, "count": len(records),
          "image_ids": [im["id"] for im in records]}, all_ranks=True)
    log(f"read {len(records)} training images in {time.time() - t0:.1f}s ({threads} threads, {device})")
    if dd.rank == 0:
        val = load_split(val_coco, None, images_root, args.input_size)
        val_cats = [c["id"] for c in categories_of(val[5])]
        if val_cats and val_cats != [c["id"] for c in cats]:
            raise DataError(f"{val_coco}: expected the train categories {[c['id'] for c in cats]}, found {val_cats}")

    torch.manual_seed(args.seed)
    model = CenterNet(len(cats), args.width).to(device)
    if args.init_weights:
        init_weights(model, args.init_weights)
    ema = EMA(model, args.ema_decay)
    params = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
        "input_size": args.input_size, "max_minutes": args.max_minutes, "seed": args.seed, "width": args.width,
        "world_size": dd.world, "device": device.type, "threads": threads, "augment": args.augment,
        "augment_transforms": ",".join(args.augment_transforms) or "none",
        "crop": args.crop, "crop_until": args.crop_until, "ema_decay": args.ema_decay, "model": "centernet-dw", "num_params": count_parameters(model), "num_classes": len(cats),
        "torch": torch.__version__, "init_weights": args.init_weights or "none",
    }
    for k, v in params.items():
        emit({"type": "param", "key": k, "value": str(v)})
    ddp = model
    if dd.enabled:
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    decay, no_decay = [], []
    for n_, p_ in model.named_parameters():
        (no_decay if p_.ndim <= 1 else decay).append(p_)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)

    n_local = len(records)
    steps_per_epoch = int(dd.reduce(math.ceil(n_local / args.batch_size), dist.ReduceOp.MIN if dd.enabled else None))
    total_steps = steps_per_epoch * args.epochs
    warmup = min(50, max(1, total_steps // 10))
    budget = args.max_minutes * 60.0 if args.max_minutes else None
    gen = torch.Generator().manual_seed(args.seed * 1000 + dd.rank)
    pixels_dev = pixels.to(device)
    step = 0
    epoch = 0
    seen = 0
    t_start = time.time()
    interval = {"n": 0, "loss": 0.0, "loss_heatmap": 0.0, "loss_size": 0.0, "loss_offset": 0.0, "t": t_start, "imgs": 0}
    stop = False
    last_eval = None
    while epoch < args.epochs and not stop:
        epoch += 1
        model.train()
        perm = torch.randperm(n_local, generator=gen)
        for b in range(steps_per_epoch):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            if idx.numel() == 0:  # shorter shard than another rank's: wrap around
                idx = torch.randint(0, n_local, (args.batch_size,), generator=gen)
            il = idx.tolist()
            elapsed = dd.reduce(time.time() - t_start, dist.ReduceOp.MAX if dd.enabled else None)
            progress = step / max(1, total_steps)
            if budget:
                progress = max(progress, elapsed / budget)
            if progress >= 1.0:
                stop = True
                break
            x = pixels_dev[idx].float() / 255.0
            bx = [boxes[i] for i in il]
            cl = [classes[i] for i in il]
            ig = None
            side = args.input_size
            if args.crop and progress < args.crop_until:
                x, bx, cl, ig = random_crops(x, bx, cl, args.crop, gen)
                side = args.crop
                if args.augment in LEGACY:
                    x, bx, cl, ig = augment_light(x, bx, cl, gen, ig)
                elif args.augment_transforms:
                    x, bx, cl, ig = apply_policy(x, bx, cl, args.augment_transforms, gen, ig, resample=False)
            elif args.augment == "full":
                x, bx, cl, ig = augment(x, bx, cl, gen)
            elif args.augment == "light":
                x, bx, cl, ig = augment_light(x, bx, cl, gen)
            elif args.augment_transforms:
                x, bx, cl, ig = apply_policy(x, bx, cl, args.augment_transforms, gen)
            targets = build_targets(bx, cl, len(cats), side, device, ig)
            lr = lr_at(progress, step, warmup, args.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            outputs = ddp(x)
            loss, parts = detection_loss(outputs, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            ema.update(model)
            step += 1
            seen += len(il)
            interval["n"] += 1
            interval["imgs"] += len(il)
            interval["loss"] += float(loss)
            for k, v in parts.items():
                interval[k] += float(v)
            if step % args.log_every == 0:
                now = time.time()
                ips = interval["imgs"] * dd.world / max(1e-9, now - interval["t"])
                for k in ("loss", "loss_heatmap", "loss_size", "loss_offset"):
                    emit({"type": "metric", "key": "train_" + k if k != "loss" else "train_loss",
                          "value": interval[k] / interval["n"], "step": step, "epoch": epoch})
                emit({"type": "metric", "key": "lr", "value": lr, "step": step, "epoch": epoch})
                emit({"type": "progress", "epoch": epoch, "step": step, "images_per_sec": ips,
                      "elapsed_s": now - t_start, "progress": min(1.0, progress)})
                interval.update({"n": 0, "loss": 0.0, "loss_heatmap": 0.0, "loss_size": 0.0, "loss_offset": 0.0,
                                 "t": now, "imgs": 0})
        if dd.rank == 0 and args.eval_every and epoch % args.eval_every == 0 and not stop:
            last_eval = evaluate_model(ema.model, val, args, device, cats)[0]
            emit({"type": "metric", "key": "val_map50", "value": last_eval["map50"], "step": step, "epoch": epoch})
            emit({"type": "metric", "key": "val_map50_95", "value": last_eval["map50_95"], "step": step,
                  "epoch": epoch})
            log(f"epoch {epoch} step {step}: val mAP@0.5 {last_eval['map50']:.4f} "
                f"mAP@0.5:0.95 {last_eval['map50_95']:.4f} ({time.time() - t_start:.0f}s)")
    train_seconds = time.time() - t_start
    ips = seen * dd.world / max(1e-9, train_seconds)
    train_images = int(dd.reduce(n_local, dist.ReduceOp.SUM if dd.enabled else None))
    log(f"trained {step} steps, {epoch} epochs in {train_seconds:.0f}s ({ips:.1f} img/s over {dd.world} ranks)")

    if dd.rank == 0:
        final = ema.model.to("cpu").eval()
        result, preds, raw = evaluate_model(final, val, args, torch.device("cpu"), cats)
        log(f"val mAP@0.5 {result['map50']:.4f}  mAP@0.5:0.95 {result['map50_95']:.4f} "
            f"on {val[0].shape[0]} images (COCO 101-point)")
        emit({"type": "metric", "key": "val_map50", "value": result["map50"], "step": step, "epoch": epoch})
        emit({"type": "metric", "key": "val_map50_95", "value": result["map50_95"], "step": step, "epoch": epoch})
        # COCOeval's other summary numbers (AP75, AP/AR by object size, AR@1/10/100); -1 = n/a.
        for k in ("ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100", "ar_small",
                  "ar_medium", "ar_large"):
            v = result.get("stats", {}).get(k, -1)
            if v >= 0:
                emit({"type": "metric", "key": "val_" + k, "value": v, "step": step, "epoch": epoch})
        artifacts = write_outputs(final, args, out, cats, result, preds, raw, val, params,
                                  {"steps": step, "epochs_completed": epoch, "train_seconds": train_seconds,
                                   "images_per_sec": ips})
        for path in artifacts:
            emit({"type": "artifact", "path": path})
        emit({"type": "summary", "map50": result["map50"], "map50_95": result["map50_95"],
              "ap_definition": "coco-101-point", "per_class": result["per_class"], "val_images": int(val[0].shape[0]),
              "train_images": train_images,
              "steps": step, "epochs": epoch, "train_seconds": train_seconds, "images_per_sec": ips,
              "world_size": dd.world, "device": device.type, "num_params": params["num_params"],
              "model": os.path.join(out, "model.onnx")})
    dd.barrier()
    dd.close()


def write_outputs(model, args, out, cats, result, preds, raw, val, params, stats):
    labels = [c["name"] for c in cats]
    onnx_path = os.path.join(out, "model.onnx")
    wrapper = export_onnx(model, args.input_size, onnx_path)
    verification = verify_onnx(onnx_path, wrapper, args.input_size, len(cats))
    log(f"exported {onnx_path}: {verification}")
    paths = [onnx_path]
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))
    paths.append(os.path.join(out, "model.pt"))
    write_json(os.path.join(out, "labels.json"), labels)
    paths.append(os.path.join(out, "labels.json"))
    metrics = {"map50": result["map50"], "map50_95": result["map50_95"], "ap_definition": "coco-101-point",
               "val_images": int(val[0].shape[0])}
    card = model_card(args.input_size, labels, [c["id"] for c in cats], metrics, {**params, **stats}, verification)
    write_json(os.path.join(out, "model_card.json"), card)
    paths.append(os.path.join(out, "model_card.json"))
    # The validation predictions (COCO results) always: Sluice draws its evaluation pictures
    # (PR curves, confusion matrix, contact sheet) from them.
    write_json(os.path.join(out, "val_predictions.json"), preds)
    paths.append(os.path.join(out, "val_predictions.json"))
    if args.dump_predictions:
        paths.extend(dump_reference(out, val, raw))
    return paths


def dump_reference(out, val, raw, count=2):
    """Inputs and PyTorch outputs for the first val images, raw little-endian, so another runtime
    can be compared on exactly the same tensor (independent of image decoders)."""
    pixels, _, _, records, _, _ = val
    n = min(count, pixels.shape[0])
    if n == 0:
        return []
    hm, size, off = raw
    blobs = {"images": (pixels[:n].float() / 255.0).numpy(), "heatmap": hm[:n], "size": size[:n], "offset": off[:n]}
    index = {"file_names": [r["file_name"] for r in records[:n]], "image_ids": [r["id"] for r in records[:n]],
             "tensors": {}}
    offset = 0
    with open(os.path.join(out, "reference_outputs.bin"), "wb") as f:
        for name, arr in blobs.items():
            data = arr.astype("<f4").tobytes()
            f.write(data)
            index["tensors"][name] = {"dims": list(arr.shape), "offset": offset, "dtype": "float32"}
            offset += len(data)
    write_json(os.path.join(out, "reference_outputs.json"), index)
    return [os.path.join(out, "reference_outputs.bin"), os.path.join(out, "reference_outputs.json")]


def bench(args):
    """Training throughput (augmentation + targets + forward + backward + step) on random data."""
    device = pick_device(args.device)
    threads = set_threads(args)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = CenterNet(3, args.width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    s = args.input_size
    n = args.batch_size
    pixels = torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8, generator=gen).to(device)
    boxes = [torch.tensor([[s * 0.2, s * 0.3, s * 0.2, s * 0.15], [s * 0.6, s * 0.5, s * 0.3, s * 0.3]])] * n
    classes = [torch.tensor([0, 2])] * n
    times = []
    for i in range(args.bench_steps + 3):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.time()
        x, bx, cl, ig = pixels.float() / 255.0, boxes, classes, None
        side = s
        if args.crop:
            x, bx, cl, ig = random_crops(x, bx, cl, args.crop, gen)
            side = args.crop
        elif args.augment == "full":
            x, bx, cl, ig = augment(x, bx, cl, gen)
        elif args.augment == "light":
            x, bx, cl, ig = augment_light(x, bx, cl, gen)
        elif args.augment_transforms:
            x, bx, cl, ig = apply_policy(x, bx, cl, args.augment_transforms, gen)
        targets = build_targets(bx, cl, 3, side, device, ig)
        loss, _ = detection_loss(model(x), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.time() - t)
    times.sort()
    median = times[len(times) // 2]
    emit({"type": "bench", "images_per_sec": n / median, "batch_size": n, "input_size": s, "threads": threads,
          "augment": args.augment, "crop": args.crop,
          "device": device.type, "steps": len(times), "median_step_s": median,
          "num_params": count_parameters(model), "torch": torch.__version__})


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.bench:
            bench(args)
        else:
            train(args)
    except DataError as e:
        log(f"error: {e}")
        emit({"type": "error", "code": "invalid_input", "message": str(e)}, all_ranks=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

/**
 * Python source of the GPU resize worker, run as `python3 -u -c <source> <device>` by
 * gpu_resizer.ts. Kept as a string (not a .py file beside it) so that a compiled stage binary
 * carries it without extra files.
 *
 * Protocol (stdin → stdout), one frame per message: u32 LE header length, UTF-8 JSON header,
 * then `header.payload` bytes.
 * - first frame out: `{ ready: true, device, torch, torchvision }` (or `{ ready: false, error }`);
 * - request: `{ id, kind: "jpeg" | "raw", width?, height?, orientation, variants: [{ content: [w, h],
 *   crop: [left, top, w, h] | null, pad: [left, top, right, bottom] | null, background: [r, g, b] }] }`
 *   with the JPEG bytes, or raw RGB (HWC, 8-bit, already oriented) of `width × height`;
 * - response: `{ id, ok: true, outputs: [{ width, height, length }] }` with the raw RGB outputs
 *   concatenated, or `{ id, ok: false, code, error }` and no payload.
 * @module
 */

/** The worker program. */
export const GPU_WORKER_SOURCE = String.raw`
import json, struct, sys

def read_exact(stream, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)

def send(out, header, payload=b""):
    header = dict(header, payload=len(payload))
    h = json.dumps(header).encode()
    out.write(struct.pack("<I", len(h)) + h)
    if payload:
        out.write(payload)
    out.flush()

def main():
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    try:
        import torch
        import torch.nn.functional as F
        import torchvision
        from torchvision.io import decode_jpeg, ImageReadMode
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False (torch %s)" % torch.__version__)
        dev = torch.device(device)
        torch.zeros(1, device=dev)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    except Exception as e:
        send(out, {"ready": False, "error": "%s: %s" % (type(e).__name__, e)})
        return
    send(out, {"ready": True, "device": name, "torch": torch.__version__, "torchvision": torchvision.__version__})

    def orient(img, o):
        # img: [3, H, W]; EXIF orientation -> upright (as libvips autorotate does).
        if o == 2: return img.flip(-1)
        if o == 3: return img.flip(-1).flip(-2)
        if o == 4: return img.flip(-2)
        if o == 5: return img.transpose(1, 2)
        if o == 6: return torch.rot90(img, -1, (1, 2))
        if o == 7: return torch.rot90(img, 1, (1, 2)).flip(-1)
        if o == 8: return torch.rot90(img, 1, (1, 2))
        return img

    def decode(req, payload):
        if req["kind"] == "jpeg":
            data = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
            try:
                img = decode_jpeg(data, mode=ImageReadMode.RGB, device=dev)
            except Exception:
                # nvjpeg refuses some JPEGs (e.g. some progressive or CMYK ones): CPU decode, then upload.
                img = decode_jpeg(data, mode=ImageReadMode.RGB).to(dev)
            return orient(img, int(req.get("orientation", 1)))
        w, h = int(req["width"]), int(req["height"])
        arr = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
        return arr.view(h, w, 3).permute(2, 0, 1).to(dev)

    def render(img, v):
        cw, ch = v["content"]
        x = img.unsqueeze(0).float()
        if (cw, ch) != (x.shape[3], x.shape[2]):
            x = F.interpolate(x, size=(ch, cw), mode="bilinear", align_corners=False, antialias=True)
        x = x.round_().clamp_(0, 255).to(torch.uint8)[0]
        if v.get("crop"):
            l, t, w, h = v["crop"]
            x = x[:, t:t + h, l:l + w]
        if v.get("pad"):
            l, t, r, b = v["pad"]
            canvas = torch.empty((3, ch + t + b, cw + l + r), dtype=torch.uint8, device=dev)
            canvas[0].fill_(v["background"][0]); canvas[1].fill_(v["background"][1]); canvas[2].fill_(v["background"][2])
            canvas[:, t:t + ch, l:l + cw] = x
            x = canvas
        return x.permute(1, 2, 0).contiguous()

    def to_bytes(t):
        t = t.cpu().contiguous()
        try:
            return t.numpy().tobytes()
        except Exception:  # torch built without numpy
            return bytes(t.flatten().tolist())

    while True:
        raw = read_exact(inp, 4)
        if raw is None:
            return
        (n,) = struct.unpack("<I", raw)
        req = json.loads(read_exact(inp, n))
        payload = read_exact(inp, int(req.get("payload", 0))) or b""
        try:
            img = decode(req, payload)
        except Exception as e:
            send(out, {"id": req["id"], "ok": False, "code": "decode_failed", "error": "%s: %s" % (type(e).__name__, e)})
            continue
        try:
            outs = [render(img, v) for v in req["variants"]]
            blobs = [to_bytes(o) for o in outs]
            send(out, {"id": req["id"], "ok": True, "outputs": [
                {"width": int(o.shape[1]), "height": int(o.shape[0]), "length": len(b)} for o, b in zip(outs, blobs)
            ]}, b"".join(blobs))
        except Exception as e:
            send(out, {"id": req["id"], "ok": False, "code": "render_failed", "error": "%s: %s" % (type(e).__name__, e)})

main()
`;

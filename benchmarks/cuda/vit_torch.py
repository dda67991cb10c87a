"""vit_torch.py — PyTorch reference and peer for tests/gpu/vit_check.c (CLIP ViT visual tower).

usage:
  vit_torch.py parity DIR           float64 PyTorch on DIR/weights.bin + images.bin (written by
                                    `vit_check parity DIR`); prints the cosine of each clipc
                                    embedding (cpu, cuda_f32, cuda_bf16) with the reference.
  vit_torch.py bench [--batch 256] [--iters 20] [--config b32]
                                    PyTorch eager on the GPU, same architecture and batch:
                                    inference images/s in bf16 (and f32 without TF32) and one AMP
                                    bf16 training step (forward, backward, grad-norm clip, fused
                                    AdamW) on the same InfoNCE loss as vit_check.
Lines "RESULT key=value ..." are parsed by tests/gpu/run.sh.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

CONFIGS = {  # name: image, patch, width, layers, heads, mlp, embed (as vit_check.c)
    "b32": (224, 32, 768, 12, 12, 3072, 512),
    "small": (64, 16, 128, 2, 2, 512, 64),
    "tiny": (64, 32, 64, 1, 2, 128, 32),
}


def param_shapes(image, patch, width, layers, heads, mlp, embed):
    tokens = (image // patch) ** 2 + 1
    shapes = [("conv1.weight", (width, 3, patch, patch)), ("class_embedding", (width,)),
              ("positional_embedding", (tokens, width)), ("ln_pre.weight", (width,)), ("ln_pre.bias", (width,))]
    for l in range(layers):
        p = f"blocks.{l}."
        shapes += [(p + "ln_1.weight", (width,)), (p + "ln_1.bias", (width,)),
                   (p + "attn.in_proj_weight", (3 * width, width)), (p + "attn.in_proj_bias", (3 * width,)),
                   (p + "attn.out_proj.weight", (width, width)), (p + "attn.out_proj.bias", (width,)),
                   (p + "ln_2.weight", (width,)), (p + "ln_2.bias", (width,)),
                   (p + "mlp.c_fc.weight", (mlp, width)), (p + "mlp.c_fc.bias", (mlp,)),
                   (p + "mlp.c_proj.weight", (width, mlp)), (p + "mlp.c_proj.bias", (width,))]
    shapes += [("ln_post.weight", (width,)), ("ln_post.bias", (width,)), ("proj", (width, embed))]
    return shapes


def forward(p, images, cfg):
    image, patch, width, layers, heads, mlp, embed = cfg
    x = F.conv2d(images, p["conv1.weight"], stride=patch).flatten(2).transpose(1, 2)
    b = x.shape[0]
    x = torch.cat([p["class_embedding"].to(x.dtype).expand(b, 1, width), x], dim=1)
    x = x + p["positional_embedding"]
    x = F.layer_norm(x, (width,), p["ln_pre.weight"], p["ln_pre.bias"], 1e-5)
    t = x.shape[1]
    d = width // heads
    for l in range(layers):
        q = lambda n: p[f"blocks.{l}.{n}"]
        h = F.layer_norm(x, (width,), q("ln_1.weight"), q("ln_1.bias"), 1e-5)
        qkv = F.linear(h, q("attn.in_proj_weight"), q("attn.in_proj_bias"))
        qs, ks, vs = (z.reshape(b, t, heads, d).transpose(1, 2) for z in qkv.split(width, dim=-1))
        if hasattr(F, "scaled_dot_product_attention"):  # PyTorch's fused (flash) attention
            a = F.scaled_dot_product_attention(qs, ks, vs)
        else:  # older PyTorch (Debian's): the same function spelled out
            a = torch.softmax((qs @ ks.transpose(-1, -2)) / math.sqrt(d), dim=-1) @ vs
        a = a.transpose(1, 2).reshape(b, t, width)
        x = x + F.linear(a, q("attn.out_proj.weight"), q("attn.out_proj.bias"))
        h = F.layer_norm(x, (width,), q("ln_2.weight"), q("ln_2.bias"), 1e-5)
        h = F.linear(h, q("mlp.c_fc.weight"), q("mlp.c_fc.bias"))
        h = h * torch.sigmoid(1.702 * h)
        x = x + F.linear(h, q("mlp.c_proj.weight"), q("mlp.c_proj.bias"))
    c = F.layer_norm(x[:, 0, :], (width,), p["ln_post.weight"], p["ln_post.bias"], 1e-5)
    return c @ p["proj"]


def min_cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return float(np.nan_to_num(cos, nan=-2.0).min())


def parity(directory):
    with open(os.path.join(directory, "weights.txt")) as f:
        head = f.readline().split()
        cfg = tuple(int(v) for v in head[2:9])
        batch = int(head[10])
        names = [line.split()[0] for line in f if line.strip()]
    flat = np.fromfile(os.path.join(directory, "weights.bin"), dtype="<f4")
    p, at = {}, 0
    for name, shape in param_shapes(*cfg):
        n = int(np.prod(shape))
        p[name] = torch.from_numpy(flat[at:at + n].reshape(shape).astype(np.float64))
        at += n
    if at != flat.size or names != [n for n, _ in param_shapes(*cfg)]:
        sys.exit("vit_torch.py: weights.txt/weights.bin do not match the architecture")
    image = cfg[0]
    images = np.fromfile(os.path.join(directory, "images.bin"), dtype="<f4").reshape(batch, 3, image, image)
    with torch.no_grad():
        ref = forward(p, torch.from_numpy(images.astype(np.float64)), cfg).numpy()
    limits = {"cpu": 0.99999, "cuda_f32": 0.99999, "cuda_bf16": 0.999}
    failed = 0
    for label, limit in limits.items():
        emb = np.fromfile(os.path.join(directory, f"emb_{label}.bin"), dtype="<f4").reshape(ref.shape)
        cos = min_cosine(emb, ref)
        ok = cos >= limit
        failed += not ok
        print(f"RESULT check=embed_cosine_{label}_vs_pytorch_f64 value={cos:.8f} limit={limit} {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0


def random_params(cfg, device, dtype):
    g = torch.Generator(device="cpu").manual_seed(0)
    p = {}
    for name, shape in param_shapes(*cfg):
        gain = "ln_" in name and name.endswith(".weight")
        fan_in = shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1) if len(shape) >= 2 else cfg[2]
        scale = 0.02 if "bias" in name else 0.5 if "embedding" in name else 1 / math.sqrt(cfg[2] if name == "proj" else fan_in)
        t = (1.0 if gain else 0.0) + scale * torch.randn(shape, generator=g)
        p[name] = t.to(device=device, dtype=dtype).requires_grad_(True)
    return p


def timed(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters


def bench(config, batch, iters):
    if not torch.cuda.is_available():
        sys.exit("vit_torch.py bench: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = CONFIGS[config]
    image = cfg[0]
    dev = "cuda"
    torch.manual_seed(0)
    images = torch.randn(batch, 3, image, image, device=dev)
    for dtype, label in ((torch.bfloat16, "bf16"), (torch.float32, "f32")):
        p = {k: v.detach() for k, v in random_params(cfg, dev, dtype).items()}
        x = images.to(dtype)
        with torch.inference_mode():
            ms = timed(lambda: forward(p, x, cfg), iters)
        print(f"RESULT bench=torch_vit_{config}_infer precision={label} batch={batch} ms={ms:.3f} img_per_s={batch / ms * 1e3:.1f}")
    # AMP bf16 training step: f32 master weights, autocast bf16 compute, fused AdamW
    p = random_params(cfg, dev, torch.float32)
    params = list(p.values())
    decay = [v for k, v in p.items() if v.dim() >= 2 and k != "positional_embedding"]
    no_decay = [v for k, v in p.items() if not (v.dim() >= 2 and k != "positional_embedding")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.2}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.98), eps=1e-6, fused=True)
    text = torch.randn(batch, cfg[6], device=dev)
    labels = torch.arange(batch, device=dev)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            emb = forward(p, images, cfg)
            logits = (1 / 0.07) * F.normalize(emb.float(), dim=-1) @ F.normalize(text, dim=-1).t()
            loss = F.cross_entropy(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    ms = timed(step, max(iters // 2, 3))
    print(f"RESULT bench=torch_vit_{config}_train_step precision=amp_bf16 batch={batch} ms={ms:.3f} "
          f"img_per_s={batch / ms * 1e3:.1f}")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["parity", "bench"])
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--config", default="b32", choices=sorted(CONFIGS))
    a = ap.parse_args()
    if a.mode == "parity":
        if not a.dir:
            sys.exit("vit_torch.py parity DIR")
        return parity(a.dir)
    return bench(a.config, a.batch, a.iters)


if __name__ == "__main__":
    sys.exit(main())

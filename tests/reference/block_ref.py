"""block_ref.py — PyTorch reference for the graph test: two pre-LN transformer blocks (CLIP
layout: ln1 -> q/k/v projections -> multi-head attention -> out projection -> residual;
ln2 -> fc1 -> QuickGELU -> fc2 -> residual), causal attention, followed by a final layernorm.

usage: block_ref.py OUT_DIR SEED
Writes x.npy, dy.npy, p<i>.npy (parameters in the order below), out.npy and grad_x.npy,
grad_p<i>.npy (gradients of sum(out*dy)), all float32; the reference runs in float64.
"""
import os
import sys

import numpy as np
import torch

torch.set_num_threads(1)
out_dir, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
B, T, C, H, F, LAYERS = 2, 13, 48, 4, 96, 2

names = ["ln1_w", "ln1_b", "q_w", "q_b", "k_w", "k_b", "v_w", "v_b", "o_w", "o_b", "ln2_w", "ln2_b",
         "fc1_w", "fc1_b", "fc2_w", "fc2_b"]
shapes = {"ln1_w": (C,), "ln1_b": (C,), "q_w": (C, C), "q_b": (C,), "k_w": (C, C), "k_b": (C,), "v_w": (C, C),
          "v_b": (C,), "o_w": (C, C), "o_b": (C,), "ln2_w": (C,), "ln2_b": (C,), "fc1_w": (F, C), "fc1_b": (F,),
          "fc2_w": (C, F), "fc2_b": (C,)}
params = []
for layer in range(LAYERS):
    for name in names:
        scale = 1.0 if name.startswith("ln") and name.endswith("_w") else 0.2
        base = 1.0 if name.startswith("ln") and name.endswith("_w") else 0.0
        params.append((base + rng.standard_normal(shapes[name]) * scale).astype(np.float32))
params.append((1.0 + rng.standard_normal(C) * 0.2).astype(np.float32))  # final ln weight
params.append((rng.standard_normal(C) * 0.2).astype(np.float32))        # final ln bias
x = rng.standard_normal((B, T, C)).astype(np.float32)
dy = rng.standard_normal((B, T, C)).astype(np.float32)

tp = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)


def attention(q, k, v):
    d = C // H
    qh = q.reshape(B, T, H, d).transpose(1, 2) * d ** -0.5
    kh = k.reshape(B, T, H, d).transpose(1, 2)
    vh = v.reshape(B, T, H, d).transpose(1, 2)
    s = qh @ kh.transpose(-1, -2)
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    return (torch.softmax(s, -1) @ vh).transpose(1, 2).reshape(B, T, C)


h = tx
for layer in range(LAYERS):
    p = dict(zip(names, tp[layer * len(names):(layer + 1) * len(names)]))
    a = torch.nn.functional.layer_norm(h, (C,), p["ln1_w"], p["ln1_b"], 1e-5)
    q = a @ p["q_w"].T + p["q_b"]
    k = a @ p["k_w"].T + p["k_b"]
    v = a @ p["v_w"].T + p["v_b"]
    h = h + attention(q, k, v) @ p["o_w"].T + p["o_b"]
    m = torch.nn.functional.layer_norm(h, (C,), p["ln2_w"], p["ln2_b"], 1e-5)
    m = m @ p["fc1_w"].T + p["fc1_b"]
    m = m * torch.sigmoid(1.702 * m)
    h = h + m @ p["fc2_w"].T + p["fc2_b"]
out = torch.nn.functional.layer_norm(h, (C,), tp[-2], tp[-1], 1e-5)
(out * torch.tensor(dy, dtype=torch.float64)).sum().backward()

np.save(os.path.join(out_dir, "x.npy"), x)
np.save(os.path.join(out_dir, "dy.npy"), dy)
np.save(os.path.join(out_dir, "out.npy"), out.detach().numpy().astype(np.float32))
np.save(os.path.join(out_dir, "grad_x.npy"), tx.grad.numpy().astype(np.float32))
for i, (p, t) in enumerate(zip(params, tp)):
    np.save(os.path.join(out_dir, f"p{i}.npy"), p)
    np.save(os.path.join(out_dir, f"grad_p{i}.npy"), t.grad.numpy().astype(np.float32))

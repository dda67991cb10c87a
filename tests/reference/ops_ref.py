"""ops_ref.py — PyTorch reference for the engine's ops (forward and backward).

usage: ops_ref.py OUT_DIR SEED

For every case below it draws fresh random inputs, runs the op in float64 PyTorch (so the
reference itself carries no float32 rounding), and writes to OUT_DIR:
  <case>.in<i>.npy    inputs (float32, or int64 for ids/labels)
  <case>.out.npy      forward result (float32)
  <case>.dy.npy       the upstream gradient used for backward (float32)
  <case>.grad<i>.npy  d(sum(out*dy))/d(input i) for float inputs
The C test (tests/test_ops.c) builds the same op on the same inputs and compares.
"""
import math
import os
import sys

import numpy as np
import torch

torch.set_num_threads(1)
out_dir, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)


def rand(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def save(name, inputs, fn, grad_inputs=None):
    """inputs: list of numpy arrays; float ones get gradients."""
    tensors = []
    for i, a in enumerate(inputs):
        np.save(os.path.join(out_dir, f"{name}.in{i}.npy"), a)
        if a.dtype == np.float32:
            tensors.append(torch.tensor(a, dtype=torch.float64, requires_grad=True))
        else:
            tensors.append(torch.tensor(a))
    out = fn(*tensors)
    dy = rand(*out.shape)
    np.save(os.path.join(out_dir, f"{name}.out.npy"), out.detach().numpy().astype(np.float32))
    np.save(os.path.join(out_dir, f"{name}.dy.npy"), dy)
    (out * torch.tensor(dy, dtype=torch.float64)).sum().backward()
    for i, t in enumerate(tensors):
        if t.is_floating_point():
            g = t.grad if t.grad is not None else torch.zeros_like(t)
            np.save(os.path.join(out_dir, f"{name}.grad{i}.npy"), g.numpy().astype(np.float32))


def attention(q, k, v, heads, causal):
    B, T, C = q.shape
    d = C // heads
    scale = d ** -0.5
    qh = q.reshape(B, T, heads, d).transpose(1, 2)
    kh = k.reshape(B, T, heads, d).transpose(1, 2)
    vh = v.reshape(B, T, heads, d).transpose(1, 2)
    s = (qh * scale) @ kh.transpose(-1, -2)
    if causal:
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        s = s.masked_fill(mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    return (p @ vh).transpose(1, 2).reshape(B, T, C)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


B, T, C = 3, 37, 65
save("matmul_nn", [rand(B, T, C), rand(C, 29)], lambda a, b: a @ b)
save("matmul_nt", [rand(B, T, C), rand(29, C)], lambda a, b: a @ b.T)
save("matmul_tn", [rand(C, T), rand(C, 29)], lambda a, b: a.T @ b)
save("matmul_tt", [rand(C, T), rand(29, C)], lambda a, b: a.T @ b.T)
save("matmul_batched", [rand(B, T, C), rand(B, C, 29)], lambda a, b: a @ b)
save("matmul_batched_nt", [rand(B, T, C), rand(B, 29, C)], lambda a, b: a @ b.transpose(-1, -2))
save("linear", [rand(B, T, C), rand(29, C), rand(29)], lambda x, w, b: x @ w.T + b)
save("add_same", [rand(B, T, C), rand(B, T, C)], lambda a, b: a + b)
save("add_rows", [rand(B, T, C), rand(T, C)], lambda a, b: a + b)
save("add_bias", [rand(B, T, C), rand(C)], lambda a, b: a + b)
save("sub", [rand(B, T, C), rand(C)], lambda a, b: a - b)
save("mul", [rand(B, T, C), rand(B, T, C)], lambda a, b: a * b)
save("scale", [rand(B, T, C)], lambda a: a * -0.37)
save("mul_scalar", [rand(B, T, C), rand(1)], lambda a, s: a * s)
save("exp", [rand(B, T, C)], lambda a: torch.exp(a))
save("layernorm", [rand(B, T, C, scale=2.0) + 0.5, rand(C), rand(C)],
     lambda x, g, b: torch.nn.functional.layer_norm(x, (C,), g, b, eps=1e-5))
save("softmax", [rand(B, T, C)], lambda x: torch.softmax(x * 0.7, dim=-1))
save("softmax_causal", [rand(B, 5, T, T)],
     lambda x: torch.softmax((x * 1.3).masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")), dim=-1))
save("attention", [rand(B, T, 48), rand(B, T, 48), rand(B, T, 48)], lambda q, k, v: attention(q, k, v, 4, False))
save("attention_causal", [rand(B, T, 48), rand(B, T, 48), rand(B, T, 48)], lambda q, k, v: attention(q, k, v, 4, True))
# q, k, v as column slices of one fused projection [B, T, 3C] (strided rows)
save("attention_fused", [rand(B, T, 144)], lambda x: attention(x[..., :48], x[..., 48:96], x[..., 96:], 6, True))
save("gelu_tanh", [rand(B, T, C, scale=2.0)], gelu_tanh)
save("gelu_erf", [rand(B, T, C, scale=2.0)], lambda x: torch.nn.functional.gelu(x))
save("quick_gelu", [rand(B, T, C, scale=2.0)], lambda x: x * torch.sigmoid(1.702 * x))
save("get_rows", [rand(50, C), rng.integers(0, 50, size=T * 2).astype(np.int64)], lambda t, ids: t[ids])
save("patchify_conv", [rand(2, 3, 32, 48), rand(C, 3, 8, 8)],
     lambda img, w: torch.nn.functional.conv2d(img, w, stride=8).flatten(2).transpose(1, 2))
save("prepend_row", [rand(B, T, C), rand(C)], lambda x, r: torch.cat([r.expand(B, 1, C), x], dim=1))
save("l2norm", [rand(T, C)], lambda x: x / x.norm(dim=-1, keepdim=True))
save("cross_entropy", [rand(T, 29, scale=3.0), rng.integers(0, 29, size=T).astype(np.int64)],
     lambda x, y: torch.nn.functional.cross_entropy(x, y).reshape(1))
save("sum", [rand(B, T, C)], lambda x: x.sum().reshape(1))
save("sum_to", [rand(B, T, C)], lambda x: x.sum(dim=0))
save("repeat", [rand(C)], lambda x: x.expand(B, T, C) * 1.0)
save("dot", [rand(B, T, C), rand(B, T, C)], lambda a, b: (a * b).sum().reshape(1))
save("transpose_cont", [rand(B, T, C)], lambda x: x.transpose(0, 2).contiguous())
save("permute_matmul", [rand(B, T, C), rand(B, T, 29)], lambda a, b: a.transpose(1, 2) @ b)
save("slice", [rand(B, T, C)], lambda x: x[:, 3:20, :] * 1.0)
save("concat", [rand(5, T, C), rand(B, T, C)], lambda a, b: torch.cat([a, b], 0))

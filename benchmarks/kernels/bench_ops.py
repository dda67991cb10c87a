"""bench_ops.py — PyTorch's timings of the ops bench_ops.c times, on the same shapes.

usage: /usr/bin/python3 benchmarks/kernels/bench_ops.py --threads N [--rounds R] [--filter SUBSTRING]

Prints one JSON object per line, {"kind": "op", "name", "shape", "seconds"}, with the same names
and shape strings as bench_ops.c so that report.py can pair them. Each op is what PyTorch (1.13,
CPU) runs for it in a CLIP model: ATen's layer_norm / softmax / gelu kernels and their backward
kernels called directly with preallocated outputs (out=, like clipc's kernels, so no allocation
or autograd bookkeeping is timed), QuickGELU as open_clip writes it (x * sigmoid(1.702 x), three
passes; backward through autograd), attention as Hugging Face CLIP computes it (bmm, softmax, bmm
on [B*H, T, d], causal mask added to the scores; backward through autograd), l2 normalise and
cross-entropy through autograd. Times are the best of R rounds of ~10 ms each.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

ROUND_SECONDS = 0.01
MAX_CALLS = 100000


def time_calls(fn, rounds):
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    calls = max(1, min(MAX_CALLS, int(ROUND_SECONDS / once) if once > 0 else MAX_CALLS))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def rand(*shape):
    return (torch.rand(*shape) * 2 - 1) * math.sqrt(3.0)


class Bench:
    def __init__(self, rounds, name_filter):
        self.rounds = rounds
        self.filter = name_filter

    def wanted(self, name):
        return self.filter is None or self.filter in name

    def report(self, name, shape, fn):
        if not self.wanted(name):
            return
        seconds = time_calls(fn, self.rounds)
        print(json.dumps({"kind": "op", "name": name, "shape": shape, "seconds": seconds}), flush=True)

    def rowwise(self, rows, width):
        shape = f"[{rows}, {width}]"
        x, y, dy, out = rand(rows, width), rand(rows, width), rand(rows, width), torch.empty(rows, width)
        gamma, beta = rand(width), rand(width)
        with torch.no_grad():
            self.report("add", shape, lambda: torch.add(x, y, out=out))
            self.report("add_bias", shape, lambda: torch.add(x, beta, out=out))
            mean, rstd = torch.empty(rows, 1), torch.empty(rows, 1)
            self.report("layernorm", shape, lambda: torch.ops.aten.native_layer_norm.out(
                x, [width], gamma, beta, 1e-5, out0=out, out1=mean, out2=rstd))
            dx, dgamma, dbeta = torch.empty(rows, width), torch.empty(width), torch.empty(width)
            self.report("layernorm_backward", shape, lambda: torch.ops.aten.native_layer_norm_backward.out(
                dy, x, [width], mean, rstd, gamma, beta, [True, True, True], out0=dx, out1=dgamma, out2=dbeta))

    def activations(self, rows, width):
        shape = f"[{rows}, {width}]"
        x, dy, out, tmp = rand(rows, width), rand(rows, width), torch.empty(rows, width), torch.empty(rows, width)
        aten = torch.ops.aten

        def quick_gelu():  # open_clip's x * sigmoid(1.702 x), into preallocated outputs
            torch.mul(x, 1.702, out=tmp)
            torch.sigmoid(tmp, out=tmp)
            torch.mul(x, tmp, out=out)

        with torch.no_grad():
            self.report("gelu_tanh", shape, lambda: aten.gelu.out(x, approximate="tanh", out=out))
            self.report("gelu_tanh_backward", shape,
                        lambda: aten.gelu_backward.grad_input(dy, x, approximate="tanh", grad_input=out))
            self.report("gelu_erf", shape, lambda: aten.gelu.out(x, out=out))
            self.report("gelu_erf_backward", shape, lambda: aten.gelu_backward.grad_input(dy, x, grad_input=out))
            self.report("quick_gelu", shape, quick_gelu)
        if self.wanted("quick_gelu_backward"):
            xg = x.clone().requires_grad_(True)
            yg = xg * torch.sigmoid(1.702 * xg)
            self.report("quick_gelu_backward", shape, lambda: torch.autograd.grad(yg, xg, dy, retain_graph=True))

    def softmax(self, rows, width, causal):
        shape = f"[{rows}, {width}]" + (" causal" if causal else "")
        x, dy, out = rand(rows, width), rand(rows, width), torch.empty(rows, width)
        aten = torch.ops.aten
        with torch.no_grad():
            if causal:
                mask = torch.full((width, width), float("-inf")).triu(1)
                x3 = x.view(-1, width, width)
                self.report("softmax_causal", shape, lambda: torch.softmax(x3 + mask, -1))
            else:
                self.report("softmax", shape, lambda: aten._softmax.out(x, -1, False, out=out))
                y = torch.softmax(x, -1)
                self.report("softmax_backward", shape,
                            lambda: aten._softmax_backward_data.out(dy, y, -1, torch.float32, grad_input=out))

    def attention(self, batch, seq, width, heads, causal):
        shape = f"[{batch}, {seq}, {width}] {heads} heads" + (" causal" if causal else "")
        d = width // heads
        scale = d ** -0.5
        mask = torch.full((seq, seq), float("-inf")).triu(1) if causal else None

        def forward(q, k, v):  # Hugging Face CLIPAttention, torch 1.13
            def heads_first(t):
                return t.view(batch, seq, heads, d).transpose(1, 2).reshape(batch * heads, seq, d)
            s = torch.bmm(heads_first(q * scale), heads_first(k).transpose(1, 2))
            if mask is not None:
                s = (s.view(batch, heads, seq, seq) + mask).view(batch * heads, seq, seq)
            o = torch.bmm(torch.softmax(s, -1), heads_first(v))
            return o.view(batch, heads, seq, d).transpose(1, 2).reshape(batch, seq, width)

        q, k, v, dout = rand(batch, seq, width), rand(batch, seq, width), rand(batch, seq, width), rand(batch, seq, width)
        name = "attention_causal" if causal else "attention"
        with torch.no_grad():
            self.report(name, shape, lambda: forward(q, k, v))
        if self.wanted(name + "_backward"):
            qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
            out = forward(qg, kg, vg)
            self.report(name + "_backward", shape,
                        lambda: torch.autograd.grad(out, (qg, kg, vg), dout, retain_graph=True))

    def small_ops(self):
        x, dy = rand(1024, 512), rand(1024, 512)
        with torch.no_grad():
            self.report("l2norm", "[1024, 512]", lambda: F.normalize(x, dim=-1))
        if self.wanted("l2norm_backward"):
            xg = x.clone().requires_grad_(True)
            y = F.normalize(xg, dim=-1)
            self.report("l2norm_backward", "[1024, 512]", lambda: torch.autograd.grad(y, xg, dy, retain_graph=True))
        logits, labels = rand(256, 256) * 10, torch.arange(256)
        with torch.no_grad():
            self.report("cross_entropy", "[256, 256]", lambda: F.cross_entropy(logits, labels))
        if self.wanted("cross_entropy_backward"):
            lg = logits.clone().requires_grad_(True)
            loss = F.cross_entropy(lg, labels)
            self.report("cross_entropy_backward", "[256, 256]", lambda: torch.autograd.grad(loss, lg, retain_graph=True))
        images = rand(32, 3, 224, 224)
        with torch.no_grad():
            self.report("patchify", "[32, 3, 224, 224] / 32", lambda: images.view(32, 3, 7, 32, 7, 32)
                        .permute(0, 2, 4, 1, 3, 5).reshape(32, 49, 3072))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--filter", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps({"kind": "info", "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
    b = Bench(args.rounds, args.filter)
    # same order and shapes as bench_ops.c
    b.rowwise(1600, 768)
    b.activations(1600, 3072)
    b.softmax(32 * 12 * 50, 50, False)
    b.softmax(32 * 8 * 77, 77, False)
    b.softmax(32 * 8 * 77, 77, True)
    b.attention(32, 50, 768, 12, False)
    b.attention(1, 50, 768, 12, False)
    b.attention(32, 77, 512, 8, True)
    b.small_ops()
    b.rowwise(16384, 768)
    b.activations(4096, 3072)
    b.softmax(262144, 50, False)


if __name__ == "__main__":
    main()

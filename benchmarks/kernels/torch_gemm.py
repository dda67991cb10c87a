"""torch_gemm.py — the PyTorch peer of bench_gemm: GFLOP/s of torch.mm / torch.bmm on the same
shapes (read from `bench_gemm --list` on stdin), same timing rule (best of three rounds).

usage: bench_gemm --list | /usr/bin/python3 torch_gemm.py THREADS SECONDS
Prints the same tab-separated lines as bench_gemm, with impl "torch".
"""
import sys
import time

import torch


def time_one(fn, flops, seconds):
    fn()  # warm-up
    best = 0.0
    for _ in range(3):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= seconds / 3:
                break
        best = max(best, flops * calls / dt * 1e-9)
    return best


def main():
    threads, seconds = int(sys.argv[1]), float(sys.argv[2])
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(42)
    for line in sys.stdin:
        name, m, n, k, ta, tb, batch = line.rstrip("\n").split("\t")
        m, n, k, ta, tb, batch = int(m), int(n), int(k), int(ta), int(tb), int(batch)
        a_shape = (k, m) if ta else (m, k)
        b_shape = (n, k) if tb else (k, n)
        a = torch.rand((batch,) + a_shape, generator=gen) - 0.5
        b = torch.rand((batch,) + b_shape, generator=gen) - 0.5
        a_op = a.transpose(1, 2) if ta else a  # views: BLAS gets the transpose flag
        b_op = b.transpose(1, 2) if tb else b
        out = torch.empty(batch, m, n)
        if batch == 1:
            a2, b2, out2 = a_op[0], b_op[0], out[0]
            fn = lambda: torch.mm(a2, b2, out=out2)
        else:
            fn = lambda: torch.bmm(a_op, b_op, out=out)
        gflops = time_one(fn, 2.0 * m * n * k * batch, seconds)
        print(f"{name}\t{m}\t{n}\t{k}\t{ta}\t{tb}\t{batch}\ttorch\t{gflops:.1f}\t-1", flush=True)


if __name__ == "__main__":
    main()

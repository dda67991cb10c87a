"""report.py — turns bench_ops (clipc) and bench_ops.py (PyTorch) JSON lines into the markdown
section benchmarks/out/kernels.md.

usage: /usr/bin/python3 benchmarks/kernels/report.py RESULTS_DIR HEADER_FILE > kernels.md

RESULTS_DIR holds clipc-T-R.jsonl and torch-T-R.jsonl (T threads, R repetition) and optional
profile-*.md files (benchmarks/kernels/profile_clip --markdown); HEADER_FILE is the markdown run.sh
wrote first (date, machine, command). For every (op, shape, threads) the best time over the
repetitions is kept. Bandwidth counts each input read once and each output written once; "% peak"
compares it with memcpy of a buffer the size of the op's operands (same thread count, same run).
"""
import glob
import json
import math
import os
import sys

# ops whose target is >= 60% of copy bandwidth (memory-bound by design)
MEMORY_BOUND = {"add", "add_bias", "layernorm", "layernorm_backward", "softmax", "softmax_backward",
                "softmax_causal", "gelu_tanh", "gelu_tanh_backward", "gelu_erf", "gelu_erf_backward",
                "quick_gelu", "quick_gelu_backward"}
TARGET = 0.60
L2_BYTES = 2 << 20


def load(pattern):
    """(name, shape, threads) -> best record; plus info and the best copy / sgemm per threads"""
    ops, copies, sgemms, info = {}, {}, {}, {}
    for path in sorted(glob.glob(pattern)):
        threads = int(os.path.basename(path).split("-")[1])
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                d = json.loads(line)
                kind = d.get("kind")
                if kind == "info":
                    info = d
                    continue
                if kind == "op":
                    table, key = ops, (d["name"], d["shape"], threads)
                elif kind == "copy":
                    table, key = copies, (d["name"], threads)
                elif kind == "sgemm":
                    table, key = sgemms, (d["name"], threads)
                else:
                    continue
                if key not in table or d["seconds"] < table[key]["seconds"]:
                    table[key] = d
    return ops, copies, sgemms, info


def copy_reference(copies, threads, operand_bytes):
    """the copy measurement (GB/s, name) whose buffer size is closest to the op's operands, in log scale
    (same cache level: an op over 50 MB operands is compared with a 50 MB memcpy)"""
    best = None
    for (name, t), d in copies.items():
        if t != threads:
            continue
        distance = abs(math.log(operand_bytes / (d["bytes"] / 2)))
        if best is None or distance < best[0]:
            best = (distance, d["bytes"] / d["seconds"] / 1e9, name)
    return (best[1], best[2]) if best else (None, None)


def main():
    results, header = sys.argv[1], sys.argv[2]
    ops, copies, sgemms, info = load(os.path.join(results, "clipc-*.jsonl"))
    torch_ops, _, _, torch_info = load(os.path.join(results, "torch-*.jsonl"))
    with open(header) as f:
        print(f.read().rstrip())
    print()
    print(f"clipc kernels: SIMD level `{info.get('simd', '?')}`, GEMM `{info.get('gemm', '?')}` "
          f"(cc_gemm_impl_name()); PyTorch {torch_info.get('torch', '?')} with torch.set_num_threads(same).")
    print()
    thread_counts = sorted({t for (_, t) in copies})
    copy_names = sorted({n for (n, _) in copies}, key=lambda n: float(n.split()[1]))
    sgemm_names = sorted({n for (n, _) in sgemms})
    print("### Measured peaks (same run)")
    print()
    print("| threads | " + " | ".join(f"{n} (GB/s, read+write)" for n in copy_names) + " | " +
          " | ".join(f"{n} (GFLOP/s)" for n in sgemm_names) + " |")
    print("|---:|" + "---:|" * (len(copy_names) + len(sgemm_names)))
    for t in thread_counts:
        cells = [f"{copies[(n, t)]['bytes'] / copies[(n, t)]['seconds'] / 1e9:.1f}" if (n, t) in copies else "-"
                 for n in copy_names]
        cells += [f"{sgemms[(n, t)]['flops'] / sgemms[(n, t)]['seconds'] / 1e9:.1f}" if (n, t) in sgemms else "-"
                  for n in sgemm_names]
        print(f"| {t} | " + " | ".join(cells) + " |")
    print()
    print("### Ops: clipc vs PyTorch")
    print()
    print("Rate: GB/s moved (inputs read once + outputs written once), or GFLOP/s for attention (4·B·T²·C "
          "forward, 2.5× backward; with a causal mask T² counts as T(T+1)/2). % peak: of the memcpy bandwidth "
          "for buffers the size of the op's operands (memory-bound ops are marked against the ≥ 60% target when each operand "
          "is above the 2 MiB L2), or of the best SGEMM rate above (attention). "
          "Speedup = PyTorch time / clipc time (> 1: clipc faster).")
    print()
    print("| op | shape | threads | clipc ms | rate | % peak | PyTorch ms | speedup |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    misses = []
    for (name, shape, t), d in ops.items():
        s = d["seconds"]
        torch_d = torch_ops.get((name, shape, t))
        torch_ms = f"{torch_d['seconds'] * 1e3:.3f}" if torch_d else "-"
        speedup = f"{torch_d['seconds'] / s:.2f}×" if torch_d else "-"
        if d["flops"] > 0:
            rate = f"{d['flops'] / s / 1e9:.1f} GFLOP/s"
            rates = [g["flops"] / g["seconds"] for (_, gt), g in sgemms.items() if gt == t]
            peak = f"{100 * (d['flops'] / s) / max(rates):.0f}% sgemm" if rates else "-"
        else:
            gbs = d["bytes"] / s / 1e9
            rate = f"{gbs:.1f} GB/s"
            per_operand = d["bytes"] / (3 if "backward" in name or name == "add" else 2)
            ref, ref_name = copy_reference(copies, t, per_operand)
            peak = "-"
            if ref:
                fraction = gbs / ref
                peak = f"{100 * fraction:.0f}%"
                if name in MEMORY_BOUND and per_operand > L2_BYTES:
                    ok = fraction >= TARGET
                    peak += " ✓" if ok else " ✗"
                    if not ok:
                        misses.append(f"{name} {shape} at {t} thread(s): {100 * fraction:.0f}% of {ref_name}")
        print(f"| {name} | {shape} | {t} | {s * 1e3:.3f} | {rate} | {peak} | {torch_ms} | {speedup} |")
    print()
    if misses:
        print("Misses of the ≥ 60% copy-bandwidth target: " + "; ".join(misses) + ".")
    else:
        print("Every memory-bound op above L2 reaches ≥ 60% of the copy bandwidth at its footprint.")
    profiles = sorted(glob.glob(os.path.join(results, "profile-*.md")))
    if profiles:
        print()
        print("### ViT-B/32 per-op profile (random weights, `CLIPC_PROFILE`-style graph profile, "
              "`build/bench/kernels/profile_clip`)")
        for path in profiles:
            print()
            with open(path) as f:
                print(f.read().rstrip())


if __name__ == "__main__":
    main()

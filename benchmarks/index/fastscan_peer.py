#!/usr/bin/python3
"""fastscan_peer.py — clipc's 4-bit fast-scan PQ (PQ<M>x4fs, IVF<n>,PQ<M>x4fs) against faiss's
IndexPQFastScan / IndexIVFPQFastScan on the same data, one thread each: recall@10 and queries/s
(one batch of all queries, best of 3). The data is written with numpy (clustered like embeddings,
or plain Gaussian), the exact neighbours come from faiss's IndexFlat, clipc's side runs
build/bench/index/fastscan_bench on the same .npy files.

faiss is Debian's python3-faiss 1.7.3 (/usr/bin/python3): a generic build (not -march=native; its
fast-scan kernels are AVX2 at best), while clipc picks AVX-512BW at run time where the CPU has it.
faiss 1.7.3's factory makes IVF fast-scan indexes with by_residual = False; the "equal settings"
rows set by_residual = True before training, as clipc encodes residuals; the factory default is
shown too. faiss's ",RFlat" gets k_factor = 4, clipc's default re-rank factor.

usage: benchmarks/index/fastscan_peer.py [--n 50000] [--dim 128] [--queries 1000] [--M 32]
           [--nlist 256] [--data clustered|gauss] [--out benchmarks/out/fastscan.md]
"""
import argparse, datetime, os, platform, subprocess, sys, tempfile, time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import faiss

K = 10
REPEATS = 3


def make_data(kind, n, nq, d, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return rng.standard_normal((n, d), dtype=np.float32), rng.standard_normal((nq, d), dtype=np.float32)
    # clustered: 200 centres, points = centre + noise (the same distribution for base and queries)
    centres = rng.standard_normal((200, d)).astype(np.float32) * 2
    def pts(m):
        return (centres[rng.integers(0, 200, m)] + rng.standard_normal((m, d))).astype(np.float32)
    return pts(n), pts(nq)


def recall(found, truth):
    return float(np.mean([len(set(found[i]) & set(truth[i, :K])) / K for i in range(len(found))]))


def faiss_rows(x, q, gt, desc, nprobes, by_residual, label):
    d = x.shape[1]
    idx = faiss.index_factory(d, desc)
    ivf, base = None, idx
    if "RFlat" in desc:
        faiss.downcast_index(idx).k_factor = 4
        base = faiss.downcast_index(idx).base_index
    if "IVF" in desc:
        ivf = faiss.downcast_index(base)
        if by_residual is not None:
            ivf.by_residual = by_residual
    t0 = time.time()
    idx.train(x)
    idx.add(x)
    build = time.time() - t0
    rows = []
    for nprobe in (nprobes if ivf else [None]):
        if ivf:
            ivf.nprobe = nprobe
        best = float("inf")
        for _ in range(REPEATS):
            t0 = time.time()
            _, found = idx.search(q, K)
            best = min(best, time.time() - t0)
        rows.append("| %s | %s | %s | %.3f | %.0f | %.1f |" % (label, desc, nprobe if ivf else "-", recall(found, gt),
                                                               len(q) / best, build))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--M", type=int, default=32)
    ap.add_argument("--nlist", type=int, default=256)
    ap.add_argument("--nprobe", default="1,4,16")
    ap.add_argument("--data", default="clustered", choices=["clustered", "gauss"])
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bench = os.path.join(src, "build/bench/index/fastscan_bench")
    faiss.omp_set_num_threads(1)
    x, q = make_data(a.data, a.n, a.queries, a.dim)
    flat = faiss.IndexFlatL2(a.dim)
    flat.add(x)
    _, gt = flat.search(q, K)
    nprobes = [int(v) for v in a.nprobe.split(",")]
    pq, ivf = "PQ%dx4fs" % a.M, "IVF%d,PQ%dx4fs" % (a.nlist, a.M)
    descs = [pq, pq + ",RFlat", ivf, ivf + ",RFlat"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: os.path.join(tmp, k + ".npy") for k in ("x", "q", "gt")}
        np.save(paths["x"], x)
        np.save(paths["q"], q)
        np.save(paths["gt"], gt.astype(np.int64))
        out = subprocess.run([bench, "--base", paths["x"], "--queries", paths["q"], "--gt", paths["gt"],
                              "--metric", "l2", "--nprobe", a.nprobe] + descs,
                             check=True, capture_output=True, text=True).stdout
        clipc_rows = [r for r in out.splitlines() if r.startswith("|")]
    for desc in descs:
        rows += [r for r in clipc_rows if r.split("|")[2].strip() == desc]
        rows += faiss_rows(x, q, gt, desc, nprobes, True if "IVF" in desc else None, "faiss")
        if "IVF" in desc:
            rows += faiss_rows(x, q, gt, desc, nprobes, None, "faiss (factory default, by_residual=False)")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    cmd = "benchmarks/index/fastscan_peer.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# Fast-scan PQ (4-bit codes): clipc against faiss",
        "",
        "Measured %s UTC on the shared loaded 2-core machine (%s, %d CPUs visible; other builds and tests ran "
        "at the same time, so q/s figures move by tens of percent between runs; recall does not)." % (
            datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), cpu, os.cpu_count()),
        "",
        "Command: `%s` (after `make -j2 build/bench/index/fastscan_bench`; `OPENBLAS_CORETYPE=%s`)." % (
            cmd.strip(), os.environ.get("OPENBLAS_CORETYPE", "unset")),
        "",
        "Peer: faiss %s from Debian's python3-faiss package (/usr/bin/python3), a generic build, not "
        "-march=native (its fast-scan kernels use AVX2 at most); clipc's kernels choose AVX-512BW at run time. "
        "faiss 1.7.3's factory builds IVF fast-scan with by_residual = False; the plain `faiss` IVF rows set "
        "by_residual = True before training (clipc's setting), the factory default is shown as well. "
        "`,RFlat`: faiss k_factor = 4, clipc rerank = 4." % faiss.__version__,
        "",
        "Data: %d x %d %s float32, %d queries, L2, k = 10, recall@10 = |found ∩ true top 10| / 10 "
        "(exact neighbours from faiss IndexFlatL2). One thread each (clipc cc_set_threads(1), faiss "
        "omp_set_num_threads(1)); queries/s = one batch of all queries, best of %d; build = train + add "
        "seconds." % (a.n, a.dim, a.data, a.queries, REPEATS),
        "",
        "| library | type | nprobe | recall@10 | queries/s | build s |",
        "|---|---|---|---|---|---|",
    ] + rows) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()

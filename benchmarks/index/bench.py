#!/usr/bin/python3
"""bench.py — clipc's indexes against faiss and hnswlib on embedding-like data, side by side.

For each size: makes the data (benchmarks/index/data.py) and exact ground truth, then
  * HNSW: clipc HNSW<M> vs hnswlib, same M and efConstruction; build time at 1 and 2 threads;
    recall@10 / queries/s over efSearch at 1 and 2 threads;
  * IVF-PQ: clipc IVF<nlist>,PQ<M> vs faiss, same nlist, M, nbits, nprobe sweep;
  * re-ranking: clipc IVF,PQ,RFlat vs faiss IndexRefineFlat over its IVF-PQ, (nprobe, k_factor) grid;
  * Flat: batch and one-query search vs faiss IndexFlatIP, plus the bandwidth / GEMM-peak program;
and writes the markdown section benchmarks/out/index.md and the plot benchmarks/out/index_recall_qps.png.

Each library runs in its own process (this script with --worker for the Python libraries, the
clipc CLI for clipc) so that peak RSS is per build / per search process. queries/s are the best of
--repeat runs over the same queries. Usage: see run.sh, or bench.py --help.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import data  # noqa: E402

K = 10

# ----------------------------------------------------------------------------- helpers


def run_measured(cmd, env=None):
    """Runs cmd; returns (stdout, peak RSS in MB, wall seconds). Raises on failure."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd), out, err))
    return out, usage.ru_maxrss / 1024.0, wall


def worker(args_list, threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    out, rss, wall = run_measured([sys.executable, os.path.abspath(__file__), "--worker"] + args_list, env)
    res = json.loads(out.strip().splitlines()[-1])
    res["rss_mb"] = rss
    return res


def recall_at(ids, gt, k=K):
    hits = 0
    for row, truth in zip(ids, gt[:, :k]):
        hits += len(set(row[:k].tolist()) & set(truth.tolist()))
    return hits / (len(gt) * k)


def timed_best(fn, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return res, best


def clipc(args, threads, clipc_bin):
    cmd = [clipc_bin] + args + ["--threads", str(threads), "--quiet"]
    return run_measured(cmd)


def parse_clipc_search(out):
    # "searched N queries (k=10) in T s: Q queries/s, recall@10 R [...]"
    qps = float(out.split(" queries/s")[0].split()[-1])
    recall = float(out.split("recall@")[1].split()[1])
    return qps, recall


def interp_qps(points, target):
    """queries/s at a recall, interpolated (log qps, linear recall) on the Pareto front."""
    pts = sorted(points, key=lambda p: p[0])  # by recall
    front = []
    for r, q in pts:
        while front and front[-1][1] <= q:
            front.pop()
        front.append((r, q))
    for (r0, q0), (r1, q1) in zip(front, front[1:]):
        if r0 <= target <= r1 and r1 > r0:
            t = (target - r0) / (r1 - r0)
            return float(np.exp(np.log(q0) + t * (np.log(q1) - np.log(q0))))
    if front and front[0][0] >= target:
        return front[0][1]
    return None


# ----------------------------------------------------------------------------- workers (peers)


def w_hnswlib_build(a):
    import hnswlib
    xb = np.load(a.xb)
    p = hnswlib.Index(space="ip", dim=xb.shape[1])
    p.init_index(max_elements=len(xb), ef_construction=a.efc, M=a.m, random_seed=100)
    t0 = time.perf_counter()
    p.add_items(xb, np.arange(len(xb)), num_threads=a.threads)
    build = time.perf_counter() - t0
    p.save_index(a.out)
    return {"build_s": build, "file_bytes": os.path.getsize(a.out)}


def w_hnswlib_search(a):
    import hnswlib
    xq, gt = np.load(a.xq), np.load(a.gt)
    p = hnswlib.Index(space="ip", dim=xq.shape[1])
    p.load_index(a.index)
    rows = []
    for ef in a.values:
        p.set_ef(max(ef, K))
        (ids, _), t = timed_best(lambda: p.knn_query(xq, k=K, num_threads=a.threads), a.repeat)
        rows.append({"ef": ef, "recall": recall_at(ids, gt), "qps": len(xq) / t})
    return {"rows": rows}


def w_faiss_build(a):
    import faiss
    faiss.omp_set_num_threads(a.threads)
    xb = np.load(a.xb)
    idx = faiss.index_factory(xb.shape[1], a.desc, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    idx.train(xb[: a.train] if a.train else xb)
    t1 = time.perf_counter()
    idx.add(xb)
    t2 = time.perf_counter()
    faiss.write_index(idx, a.out)
    return {"train_s": t1 - t0, "add_s": t2 - t1, "build_s": t2 - t0, "file_bytes": os.path.getsize(a.out)}


def w_faiss_search(a):
    import faiss
    faiss.omp_set_num_threads(a.threads)
    xq, gt = np.load(a.xq), np.load(a.gt)
    idx = faiss.read_index(a.index)
    rows = []
    if a.refine:
        xb = np.load(a.xb)
        base = idx
        ref = faiss.IndexRefineFlat(base, faiss.swig_ptr(xb))
        ivf = faiss.extract_index_ivf(base)
        for nprobe in a.values:
            for r in a.factors:
                ivf.nprobe = nprobe
                ref.k_factor = r
                (_, ids), t = timed_best(lambda: ref.search(xq, K), a.repeat)
                rows.append({"nprobe": nprobe, "rerank": r, "recall": recall_at(ids, gt), "qps": len(xq) / t})
        return {"rows": rows}
    if a.values:
        ivf = faiss.extract_index_ivf(idx)
        for nprobe in a.values:
            ivf.nprobe = nprobe
            (_, ids), t = timed_best(lambda: idx.search(xq, K), a.repeat)
            rows.append({"nprobe": nprobe, "recall": recall_at(ids, gt), "qps": len(xq) / t})
    else:  # Flat: the batch, and one query at a time
        (_, ids), t = timed_best(lambda: idx.search(xq, K), a.repeat)
        rows.append({"mode": "batch", "recall": recall_at(ids, gt), "qps": len(xq) / t})
        few = xq[: a.single]

        def one_by_one():
            return [idx.search(few[i:i + 1], K)[1][0] for i in range(len(few))]

        ids1, t = timed_best(one_by_one, a.repeat)
        rows.append({"mode": "single", "recall": recall_at(np.array(ids1), gt[: a.single]), "qps": len(few) / t})
    return {"rows": rows}


def w_make_data(a):
    xb, xq = data.make(a.m, a.efc)
    gt = data.ground_truth(xb, xq, 100)
    for k, v in (("xb", xb), ("xq", xq), ("gt", gt)):
        np.save(os.path.join(a.out, k + ".npy"), v)
    return {}


WORKERS = {"make_data": w_make_data, "hnswlib_build": w_hnswlib_build, "hnswlib_search": w_hnswlib_search, "faiss_build": w_faiss_build,
           "faiss_search": w_faiss_search}

# ----------------------------------------------------------------------------- the comparison


class Bench:
    def __init__(self, a):
        self.a = a
        self.clipc_bin = a.clipc
        self.results = {}
        self.log_lines = []

    def log(self, msg):
        line = "[%s] %s" % (time.strftime("%H:%M:%S"), msg)
        print(line, flush=True)
        self.log_lines.append(line)

    def data(self, n):
        d = os.path.join(self.a.work, "data_%d" % n)
        os.makedirs(d, exist_ok=True)
        paths = {k: os.path.join(d, k + ".npy") for k in ("xb", "xq", "gt")}
        if not all(os.path.exists(p) for p in paths.values()):
            # in a worker: this process must stay small, since children inherit its peak RSS
            self.log("making %d vectors and %d queries, exact ground truth" % (n, self.a.queries))
            worker(["make_data", "--m", str(n), "--efc", str(self.a.queries), "--out", d], 2)
        return paths

    # --- HNSW
    def hnsw(self, n, p):
        a = self.a
        desc = "HNSW%d" % a.hnsw_m
        res = {"desc": desc, "efc": a.efc, "build": {}, "curves": {}, "bytes": {}, "rss": {}}
        hnsw_threads = a.hnsw_threads or a.threads
        for threads in hnsw_threads:
            out_c = os.path.join(a.work, "clipc_hnsw_%d_t%d.idx" % (n, threads))
            out_h = os.path.join(a.work, "hnswlib_%d_t%d.bin" % (n, threads))
            # interleave the two builds so that background load hits both alike
            o, rss, wall = clipc(["index", "build", "--type", desc, "--ef-construction", str(a.efc), "--vectors",
                                  p["xb"], "--out", out_c, "--seed", "100"], threads, self.clipc_bin)
            bc = float(o.split(" in ")[1].split()[0])
            hb = worker(["hnswlib_build", "--xb", p["xb"], "--m", str(a.hnsw_m), "--efc", str(a.efc), "--threads",
                         str(threads), "--out", out_h], threads)
            res["build"][threads] = {"clipc": bc, "hnswlib": hb["build_s"]}
            res["rss"]["build_t%d" % threads] = {"clipc": rss, "hnswlib": hb["rss_mb"]}
            res["bytes"] = {"clipc": os.path.getsize(out_c) / n, "hnswlib": hb["file_bytes"] / n}
            self.log("%s build, %d thread(s): clipc %.1f s, hnswlib %.1f s" % (desc, threads, bc, hb["build_s"]))
        # search curves on the 1-thread graphs (deterministic build)
        idx_c = os.path.join(a.work, "clipc_hnsw_%d_t%d.idx" % (n, hnsw_threads[0]))
        idx_h = os.path.join(a.work, "hnswlib_%d_t%d.bin" % (n, hnsw_threads[0]))
        res["search_graph_threads"] = hnsw_threads[0]
        for threads in hnsw_threads:
            rows_c = []
            max_rss = 0
            for ef in a.ef:
                o, rss, _ = clipc(["index", "search", "--index", idx_c, "--queries", p["xq"], "--k", str(K), "--out",
                                   os.path.join(a.work, "I.npy"), "--gt", p["gt"], "--ef", str(ef), "--repeat",
                                   str(a.repeat)], threads, self.clipc_bin)
                qps, rec = parse_clipc_search(o)
                rows_c.append({"ef": ef, "recall": rec, "qps": qps})
                max_rss = max(max_rss, rss)
            hs = worker(["hnswlib_search", "--index", idx_h, "--xq", p["xq"], "--gt", p["gt"], "--threads",
                         str(threads), "--repeat", str(a.repeat), "--values"] + [str(e) for e in a.ef], threads)
            res["curves"][threads] = {"clipc": rows_c, "hnswlib": hs["rows"]}
            res["rss"]["search_t%d" % threads] = {"clipc": max_rss, "hnswlib": hs["rss_mb"]}
            self.log("%s search sweep at %d thread(s) done" % (desc, threads))
        return res

    # --- IVF-PQ (and re-ranking)
    def ivfpq(self, n, p, desc):
        a = self.a
        res = {"desc": desc, "curves": {}, "refine": {}, "build": {}, "bytes": {}, "rss": {}}
        threads = a.threads[0]
        out_c = os.path.join(a.work, "clipc_%s_%d.idx" % (desc.replace(",", "_"), n))
        out_r = os.path.join(a.work, "clipc_%s_RFlat_%d.idx" % (desc.replace(",", "_"), n))
        out_f = os.path.join(a.work, "faiss_%s_%d.index" % (desc.replace(",", "_"), n))
        if a.reuse_clipc and os.path.exists(out_c + ".json") and os.path.exists(out_r):
            cb = json.load(open(out_c + ".json"))
        else:
            o, rss, _ = clipc(["index", "build", "--type", desc, "--vectors", p["xb"], "--out", out_c, "--seed", "100"],
                              threads, self.clipc_bin)
            cb = {"build_s": float(o.split(" in ")[1].split()[0]), "rss": rss}
            clipc(["index", "build", "--type", desc + ",RFlat", "--vectors", p["xb"], "--out", out_r, "--seed", "100"],
                  threads, self.clipc_bin)
            json.dump(cb, open(out_c + ".json", "w"))
        bc, rss = cb["build_s"], cb["rss"]
        if os.path.exists(out_f) and not a.rebuild_faiss:
            fb = json.load(open(out_f + ".json"))
        else:
            # "np": no polysemous training, a codebook re-ordering that only serves Hamming-filtered
            # search (polysemous_ht = 0 here); it takes minutes and leaves search results identical
            fb = worker(["faiss_build", "--desc", desc + "np", "--xb", p["xb"], "--threads", str(threads), "--out",
                         out_f], threads)
            json.dump(fb, open(out_f + ".json", "w"))
        res["build"] = {"clipc": bc, "faiss": fb["build_s"]}
        res["bytes"] = {"clipc": os.path.getsize(out_c) / n, "faiss": fb["file_bytes"] / n,
                        "clipc_rflat": os.path.getsize(out_r) / n, "faiss_refine": fb["file_bytes"] / n + 4 * 512}
        res["rss"]["build"] = {"clipc": rss, "faiss": fb["rss_mb"]}
        self.log("%s build: clipc %.1f s, faiss %.1f s" % (desc, bc, fb["build_s"]))
        for threads in a.threads:
            rows_c = []
            max_rss = 0
            for nprobe in a.nprobe:
                o, rss, _ = clipc(["index", "search", "--index", out_c, "--queries", p["xq"], "--k", str(K), "--out",
                                   os.path.join(a.work, "I.npy"), "--gt", p["gt"], "--nprobe", str(nprobe),
                                   "--repeat", str(a.repeat)], threads, self.clipc_bin)
                qps, rec = parse_clipc_search(o)
                rows_c.append({"nprobe": nprobe, "recall": rec, "qps": qps})
                max_rss = max(max_rss, rss)
            fs = worker(["faiss_search", "--index", out_f, "--xq", p["xq"], "--gt", p["gt"], "--threads", str(threads),
                         "--repeat", str(a.repeat), "--values"] + [str(v) for v in a.nprobe], threads)
            res["curves"][threads] = {"clipc": rows_c, "faiss": fs["rows"]}
            res["rss"]["search_t%d" % threads] = {"clipc": max_rss, "faiss": fs["rss_mb"]}
            # re-ranking grid
            rows_c = []
            for nprobe in a.refine_nprobe:
                for r in a.refine_factors:
                    o, _, _ = clipc(["index", "search", "--index", out_r, "--queries", p["xq"], "--k", str(K), "--out",
                                     os.path.join(a.work, "I.npy"), "--gt", p["gt"], "--nprobe", str(nprobe),
                                     "--rerank", str(r), "--repeat", str(a.repeat)], threads, self.clipc_bin)
                    qps, rec = parse_clipc_search(o)
                    rows_c.append({"nprobe": nprobe, "rerank": r, "recall": rec, "qps": qps})
            fr = worker(["faiss_search", "--index", out_f, "--xb", p["xb"], "--xq", p["xq"], "--gt", p["gt"], "--refine",
                         "--threads", str(threads), "--repeat", str(a.repeat), "--values"] +
                        [str(v) for v in a.refine_nprobe] + ["--factors"] + [str(f) for f in a.refine_factors], threads)
            res["refine"][threads] = {"clipc": rows_c, "faiss": fr["rows"]}
            self.log("%s search sweeps at %d thread(s) done" % (desc, threads))
        return res

    # --- Flat
    def flat(self, n, p):
        a = self.a
        res = {"rows": {}}
        out_c = os.path.join(a.work, "clipc_flat_%d.idx" % n)
        out_f = os.path.join(a.work, "faiss_flat_%d.index" % n)
        clipc(["index", "build", "--type", "Flat", "--vectors", p["xb"], "--out", out_c], 1, self.clipc_bin)
        worker(["faiss_build", "--desc", "Flat", "--xb", p["xb"], "--threads", "1", "--out", out_f], 1)
        single_q = os.path.join(a.work, "xq_single.npy")
        np.save(single_q, np.load(p["xq"])[: a.single])
        for threads in a.threads:
            o, _, _ = clipc(["index", "search", "--index", out_c, "--queries", p["xq"], "--k", str(K), "--out",
                             os.path.join(a.work, "I.npy"), "--gt", p["gt"], "--repeat", str(a.repeat)], threads,
                            self.clipc_bin)
            qb, rb = parse_clipc_search(o)
            # one query at a time: a process per query would measure start-up; the batch of a.single queries
            # below nq < 16 takes the one-query path (SIMD scan), so time it per query
            o, _, _ = clipc(["index", "search", "--index", out_c, "--queries", single_q, "--k", str(K), "--out",
                             os.path.join(a.work, "I.npy"), "--repeat", str(a.repeat)], threads, self.clipc_bin)
            qs = float(o.split(" queries/s")[0].split()[-1])
            fs = worker(["faiss_search", "--index", out_f, "--xq", p["xq"], "--gt", p["gt"], "--threads", str(threads),
                         "--repeat", str(a.repeat), "--single", str(a.single)], threads)
            res["rows"][threads] = {"clipc": {"batch": qb, "single": qs, "recall": rb},
                                    "faiss": {r["mode"]: r["qps"] for r in fs["rows"]}}
            self.log("Flat at %d thread(s): batch clipc %.0f / faiss %.0f q/s" % (threads, qb, res["rows"][threads]["faiss"]["batch"]))
        flat_bin = os.path.join(ROOT, "build", "bench", "index", "flat_bench")
        if os.path.exists(flat_bin):
            out, _, _ = run_measured([flat_bin])
            res["flat_bench"] = out
        return res

    def run(self):
        a = self.a
        for n in a.sizes:
            self.log("=== %d vectors" % n)
            started, t0 = time.strftime("%Y-%m-%d %H:%M %Z"), time.time()
            load_start = open("/proc/loadavg").read().split()[0]
            p = self.data(n)
            r = self.results.get(str(n), {})  # parts not re-run here keep their earlier results
            if "hnsw" in a.parts:
                r["hnsw"] = self.hnsw(n, p)
            if "ivfpq" in a.parts:
                r["ivfpq"] = self.ivfpq(n, p, a.ivfpq)
            if "flat" in a.parts:
                r["flat"] = self.flat(n, p)
            runs = [x for x in r.get("runs", []) if not set(x["parts"]) <= set(a.parts)]
            runs.append({"date": started, "minutes": (time.time() - t0) / 60, "load_start": load_start,
                         "load_end": open("/proc/loadavg").read().split()[0], "parts": list(a.parts),
                         "command": "benchmarks/index/run.sh " + " ".join(sys.argv[1:]), "queries": a.queries,
                         "repeat": a.repeat})
            r["runs"] = runs
            self.results[str(n)] = r
            json.dump(self.results, open(os.path.join(a.out_dir, "index_results.json"), "w"), indent=1)
            self.log("%d vectors done" % n)


# ----------------------------------------------------------------------------- report


def fmt_ratio(x):
    return "—" if x is None else "%.2f×" % x


def ok(flag):
    return "**met**" if flag else "**missed**"


def report(results):
    L = []
    cpu = subprocess.run("lscpu | grep 'Model name' | head -1 | cut -d: -f2", shell=True, capture_output=True,
                         text=True).stdout.strip()
    import faiss
    import hnswlib  # noqa: F401
    L.append("## Index: clipc vs faiss and hnswlib")
    L.append("")
    L.append("- machine: %s, %d cores (`nproc`), %s; report written %s" % (cpu, os.cpu_count(), platform.platform(),
                                                                        time.strftime("%Y-%m-%d %H:%M %Z")))
    L.append("- peers: faiss %s (Debian python3-faiss, built `%s`), hnswlib (Debian python3-hnswlib), numpy %s" %
             (faiss.__version__, faiss.get_compile_options().strip(), np.__version__))
    L.append("- data: `benchmarks/index/data.py` — unit vectors, 512-d, 48-d latent, 4000 clusters of Zipf sizes, "
             "shared mean direction (random pairs: cosine ≈ 0.64, nearest neighbour ≈ 0.91), queries from the "
             "same distribution, exact inner-product top-100 ground truth; recall@10 = |found ∩ true top-10| / 10; "
             "queries/s = best of the repeated runs of the whole query batch, each library in its own process")
    L.append("- the machine was shared with other jobs (load average below): ratios within one run are the "
             "comparison; absolute queries/s vary between runs")
    L.append("- faiss IVF-PQ is built with the factory suffix `np` (no polysemous training: a codebook re-ordering "
             "for Hamming-filtered search, unused here, that takes minutes; search results are identical)")
    L.append("- plot: `benchmarks/out/index_recall_qps.png`")
    for n, r in sorted(results.items(), key=lambda kv: int(kv[0])):
        n = int(n)
        L.append("")
        L.append("### %s vectors" % ("{:,}".format(n)))
        for m in r.get("runs", []):
            L.append("")
            L.append("Run (%s): %s, `%s`, %.0f min, %d queries, best of %d; load average %s before, %s after." % (
                ", ".join(m["parts"]), m["date"], m["command"], m["minutes"], m["queries"], m["repeat"],
                m["load_start"], m["load_end"]))
        if "hnsw" in r:
            h = r["hnsw"]
            L.append("")
            L.append("**HNSW** (%s, efConstruction %d; hnswlib with the same M and efConstruction; searched on the "
                     "graphs built with %s thread(s))" % (h["desc"], h["efc"], h.get("search_graph_threads", 1)))
            L.append("")
            L.append("| threads | build clipc (s) | build hnswlib (s) | build ratio | q/s @0.95 clipc | hnswlib | ratio | q/s @0.99 clipc | hnswlib | ratio | targets |")
            L.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for t, b in h["build"].items():
                c = h["curves"][t] if t in h["curves"] else h["curves"][str(t)]
                pc = [(x["recall"], x["qps"]) for x in c["clipc"]]
                ph = [(x["recall"], x["qps"]) for x in c["hnswlib"]]
                q95 = (interp_qps(pc, 0.95), interp_qps(ph, 0.95))
                q99 = (interp_qps(pc, 0.99), interp_qps(ph, 0.99))
                r95 = q95[0] / q95[1] if q95[0] and q95[1] else None
                r99 = q99[0] / q99[1] if q99[0] and q99[1] else None
                met = b["clipc"] <= b["hnswlib"] and (r95 or 0) >= 1.2 and (r99 or 0) >= 1.2
                L.append("| %s | %.1f | %.1f | %.2f | %s | %s | %s | %s | %s | %s | %s |" % (
                    t, b["clipc"], b["hnswlib"], b["clipc"] / b["hnswlib"],
                    "%.0f" % q95[0] if q95[0] else "—", "%.0f" % q95[1] if q95[1] else "—", fmt_ratio(r95),
                    "%.0f" % q99[0] if q99[0] else "—", "%.0f" % q99[1] if q99[1] else "—", fmt_ratio(r99), ok(met)))
            L.append("")
            L.append("Sweep (efSearch: recall@10 / queries/s):")
            L.append("")
            L.append("| threads | library | " + " | ".join("ef %d" % x["ef"] for x in next(iter(h["curves"].values()))["clipc"]) + " |")
            L.append("|---|---|" + "---|" * len(next(iter(h["curves"].values()))["clipc"]))
            for t, c in h["curves"].items():
                for lib in ("clipc", "hnswlib"):
                    L.append("| %s | %s | " % (t, lib) + " | ".join("%.4f / %.0f" % (x["recall"], x["qps"]) for x in c[lib]) + " |")
            L.append("")
            L.append("Bytes per vector (file): clipc %.0f, hnswlib %.0f. Peak RSS (MB): %s" % (
                h["bytes"]["clipc"], h["bytes"]["hnswlib"],
                "; ".join("%s clipc %.0f / hnswlib %.0f" % (k, v["clipc"], v["hnswlib"]) for k, v in h["rss"].items())))
        if "ivfpq" in r:
            v = r["ivfpq"]
            L.append("")
            L.append("**IVF-PQ** (%s, 8-bit codes; faiss with the same nlist, M, nbits, nprobe). Build: clipc %.1f s, "
                     "faiss %.1f s (1 thread)." % (v["desc"], v["build"]["clipc"], v["build"]["faiss"]))
            L.append("")
            L.append("| threads | nprobe | recall clipc | recall faiss | q/s clipc | q/s faiss | ratio | targets (≥1.2×, recall ≥ faiss−0.005) |")
            L.append("|---|---|---|---|---|---|---|---|")
            for t, c in v["curves"].items():
                for xc, xf in zip(c["clipc"], c["faiss"]):
                    ratio = xc["qps"] / xf["qps"]
                    L.append("| %s | %d | %.4f | %.4f | %.0f | %.0f | %.2f× | %s |" % (
                        t, xc["nprobe"], xc["recall"], xf["recall"], xc["qps"], xf["qps"], ratio,
                        ok(ratio >= 1.2 and xc["recall"] >= xf["recall"] - 0.005)))
            L.append("")
            L.append("**Re-ranking** (%s,RFlat vs faiss IndexRefineFlat over the same %s; grid of nprobe × k_factor): "
                     "fastest setting with recall@10 ≥ 0.95" % (v["desc"], v["desc"]))
            L.append("")
            L.append("| threads | clipc q/s (nprobe, rerank, recall) | faiss q/s (nprobe, k_factor, recall) | ratio | target (≥1.2×) |")
            L.append("|---|---|---|---|---|")
            for t, c in v["refine"].items():
                def best(rows):
                    good = [x for x in rows if x["recall"] >= 0.95]
                    return max(good, key=lambda x: x["qps"]) if good else None
                bc, bf = best(c["clipc"]), best(c["faiss"])
                if bc and bf:
                    L.append("| %s | %.0f (%d, %d, %.4f) | %.0f (%d, %d, %.4f) | %.2f× | %s |" % (
                        t, bc["qps"], bc["nprobe"], bc["rerank"], bc["recall"], bf["qps"], bf["nprobe"], bf["rerank"],
                        bf["recall"], bc["qps"] / bf["qps"], ok(bc["qps"] >= 1.2 * bf["qps"])))
                else:
                    L.append("| %s | %s | %s | — | no setting reached 0.95 |" % (t, bc and "%.0f" % bc["qps"], bf and "%.0f" % bf["qps"]))
            L.append("")
            L.append("Bytes per vector (file): clipc %.0f, faiss %.0f; with re-ranking vectors clipc %.0f, faiss %.0f. "
                     "Peak RSS (MB): %s" % (v["bytes"]["clipc"], v["bytes"]["faiss"], v["bytes"]["clipc_rflat"],
                                            v["bytes"]["faiss_refine"],
                                            "; ".join("%s clipc %.0f / faiss %.0f" % (k, x["clipc"], x["faiss"]) for k, x in v["rss"].items())))
        if "flat" in r:
            f = r["flat"]
            L.append("")
            L.append("**Flat** (exact; recall@10 of clipc's batch: %s)" % ", ".join(
                "%.4f" % x["clipc"]["recall"] for x in f["rows"].values()))
            L.append("")
            L.append("| threads | batch q/s clipc | batch q/s faiss | ratio | one query q/s clipc | faiss | ratio |")
            L.append("|---|---|---|---|---|---|---|")
            for t, x in f["rows"].items():
                L.append("| %s | %.0f | %.0f | %.2f× | %.0f | %.0f | %.2f× |" % (
                    t, x["clipc"]["batch"], x["faiss"]["batch"], x["clipc"]["batch"] / x["faiss"]["batch"],
                    x["clipc"]["single"], x["faiss"]["single"], x["clipc"]["single"] / x["faiss"]["single"]))
            if "flat_bench" in f:
                L.append("")
                L.append(f["flat_bench"].strip())
                L.append("")
                L.append("The bandwidth column is the best of two pure streaming reads (sequential, and the scan's own "
                         "four-row pattern) measured in the same rounds as the one-query search; the scan itself is a "
                         "streaming read plus FMAs, so values above 100% mean the probe under-reads the machine's peak "
                         "by that much and the scan runs at the memory bound. GEMM peak is cc_sgemm on the block shape "
                         "the batch search uses (OpenBLAS in this tree; clipc's own kernel replaces it at merge).")
    return "\n".join(L) + "\n"


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = []
    for n, r in results.items():
        if "hnsw" in r:
            for t, c in r["hnsw"]["curves"].items():
                panels.append(("%s vectors, HNSW, %s thread(s)" % ("{:,}".format(int(n)), t),
                               {"clipc " + r["hnsw"]["desc"]: c["clipc"], "hnswlib": c["hnswlib"]}))
        if "ivfpq" in r:
            for t, c in r["ivfpq"]["curves"].items():
                series = {"clipc " + r["ivfpq"]["desc"]: c["clipc"], "faiss " + r["ivfpq"]["desc"]: c["faiss"]}
                rc = r["ivfpq"]["refine"][t]
                series["clipc +RFlat"] = pareto(rc["clipc"])
                series["faiss IndexRefineFlat"] = pareto(rc["faiss"])
                panels.append(("%s vectors, IVF-PQ, %s thread(s)" % ("{:,}".format(int(n)), t), series))
    if not panels:
        return False
    cols = 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 4.5 * rows), squeeze=False)
    for ax, (title, series) in zip(axes.flat, panels):
        for name, pts in series.items():
            pts = sorted(pts, key=lambda x: x["recall"])
            ax.plot([x["recall"] for x in pts], [x["qps"] for x in pts], marker="o", ms=3,
                    ls="-" if name.startswith("clipc") else "--", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries/s (log)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def pareto(rows):
    pts = sorted(rows, key=lambda x: -x["qps"])
    out, best = [], -1
    for x in pts:
        if x["recall"] > best:
            out.append(x)
            best = x["recall"]
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        ap = argparse.ArgumentParser()
        ap.add_argument("--worker", action="store_true")
        ap.add_argument("name")
        for opt in ("xb", "xq", "gt", "out", "index", "desc"):
            ap.add_argument("--" + opt)
        for opt in ("m", "efc", "threads", "repeat", "train", "single"):
            ap.add_argument("--" + opt, type=int, default=0)
        ap.add_argument("--values", type=int, nargs="*", default=[])
        ap.add_argument("--factors", type=int, nargs="*", default=[])
        ap.add_argument("--refine", action="store_true")
        a = ap.parse_args()
        print(json.dumps(WORKERS[a.name](a)))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100000])
    ap.add_argument("--parts", nargs="+", default=["hnsw", "ivfpq", "flat"])
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hnsw-threads", type=int, nargs="+", default=None,
                    help="thread counts for the HNSW builds and searches (default: --threads)")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--ef", type=int, nargs="+", default=[10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384])
    ap.add_argument("--ivfpq", default="IVF1024,PQ64")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    ap.add_argument("--refine-nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--refine-factors", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--single", type=int, default=10, help="queries timed one at a time (Flat)")
    ap.add_argument("--rebuild-faiss", action="store_true", help="retrain faiss even if a cached index exists")
    ap.add_argument("--reuse-clipc", action="store_true",
                    help="reuse clipc IVF-PQ indexes built by an earlier run (for re-running sweeps only)")
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite index.md and the plot from benchmarks/out/index_results.json")
    ap.add_argument("--append", action="store_true",
                    help="keep the other sizes' results of an earlier run (benchmarks/out/index_results.json)")
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "clipc-index-bench"),
                    help="data, ground truth and built indexes (large; reused across runs)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "out"))
    ap.add_argument("--clipc", default=os.path.join(ROOT, "build", "clipc"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out_dir, exist_ok=True)
    b = Bench(a)
    results_path = os.path.join(a.out_dir, "index_results.json")
    if (a.append or a.report_only) and os.path.exists(results_path):
        b.results = json.load(open(results_path))
    if not a.report_only:
        b.run()
    md = report(b.results)
    png = os.path.join(a.out_dir, "index_recall_qps.png")
    if not plot(b.results, png):
        md += "\n(plot not drawn: python3-matplotlib missing)\n"
    with open(os.path.join(a.out_dir, "index.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()

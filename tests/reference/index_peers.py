"""index_peers.py — recall of faiss and hnswlib on the test's data, the reference for clipc's
IVF-PQ and HNSW parity test (tests/test_index_ivf.c, index_recall_matches_faiss_and_hnswlib).

usage: index_peers.py DIR   (reads DIR/x.npy, DIR/q.npy, DIR/gt.npy; writes DIR/peers.txt with
"name recall" lines for the configurations below)
"""
import os
import sys

import faiss
import hnswlib
import numpy as np

d = sys.argv[1]
x, q, gt = (np.load(os.path.join(d, n + ".npy")) for n in ("x", "q", "gt"))
k = 10
faiss.omp_set_num_threads(1)


def recall(ids):
    return np.mean([len(set(ids[i, :k]) & set(gt[i, :k])) / k for i in range(len(q))])


lines = []
# "np": no polysemous training (a code re-ordering that does not change these search results)
ivf = faiss.index_factory(x.shape[1], "IVF32,PQ16np", faiss.METRIC_INNER_PRODUCT)
ivf.train(x)
ivf.add(x)
for nprobe in (2, 8):
    ivf.nprobe = nprobe
    lines.append("faiss_ivfpq_nprobe%d %.6f" % (nprobe, recall(ivf.search(q, k)[1])))
h = hnswlib.Index(space="ip", dim=x.shape[1])
h.init_index(max_elements=len(x), ef_construction=100, M=12, random_seed=100)
h.add_items(x, np.arange(len(x)), num_threads=1)
for ef in (10, 20):
    h.set_ef(ef)
    lines.append("hnswlib_ef%d %.6f" % (ef, recall(h.knn_query(q, k=k, num_threads=1)[0])))
with open(os.path.join(d, "peers.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")

"""data.py — embedding-like test data for the index benchmark: unit vectors in 512-d with a low
intrinsic dimension, a shared mean direction (CLIP embeddings are anisotropic: random pairs have a
clearly positive cosine), clusters of very different sizes, and a little full-rank noise. Queries
come from the same distribution but are drawn independently. Everything is seeded."""
import numpy as np

def make(n, nq, d=512, latent=48, n_clusters=4000, seed=1234, noise=0.15, spread=0.8, offset=0.9):
    rng = np.random.default_rng(seed)
    # mixing matrix with a decaying spectrum over the latent directions
    W = rng.standard_normal((latent, d)).astype(np.float32) / np.sqrt(d)
    W *= (1.0 / np.sqrt(np.arange(1, latent + 1)))[:, None].astype(np.float32)
    scale = float(np.sqrt((W ** 2).sum(axis=0).mean() * d))  # typical norm of z @ W per unit z
    mu = rng.standard_normal(d).astype(np.float32)
    mu *= offset * scale * np.sqrt(latent) / np.linalg.norm(mu) * 0.5
    centres = 2.0 * rng.standard_normal((n_clusters, latent)).astype(np.float32)
    weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.7
    weights /= weights.sum()

    def draw(m, r):
        out = np.empty((m, d), np.float32)
        for s in range(0, m, 50000):
            c = r.choice(n_clusters, size=min(50000, m - s), p=weights)
            z = centres[c] + spread * r.standard_normal((len(c), latent)).astype(np.float32)
            x = z @ W + mu
            x += noise * scale / np.sqrt(d) * np.sqrt(latent) * r.standard_normal(x.shape).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[s:s + len(c)] = x
        return out

    return draw(n, rng), draw(nq, np.random.default_rng(seed + 1))

def ground_truth(xb, xq, k=100, block=None):
    """Exact inner-product top-k (ids sorted best first), computed in blocks of queries with numpy
    (a block's scores take at most 256 MB, its argpartition twice that)."""
    nq = len(xq)
    if block is None:
        block = max(1, (1 << 26) // len(xb))
    ids = np.empty((nq, k), np.int64)
    for s in range(0, nq, block):
        sims = xq[s:s + block] @ xb.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        ids[s:s + block] = np.take_along_axis(part, order, axis=1)
    return ids

"""simd_math_fit.py — how the polynomial coefficients in kernels/simd_math.h were obtained.

usage: /usr/bin/python3 kernels/simd_math_fit.py

Not used by the build: a record of the fits, re-runnable. Each polynomial is a near-minimax fit
(Lawson's iteratively reweighted least squares, which converges to the minimax solution) on
Chebyshev nodes, with the target function evaluated in 40-digit mpmath. Printed: the maximum
weighted error of the fit and the coefficients, lowest degree first.
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40
NODES = 800
ITERATIONS = 200


def cheb_nodes(a, b, n):
    return [mp.mpf(a) + (mp.mpf(b) - a) * (1 - mp.cos(mp.pi * (k + 0.5) / n)) / 2 for k in range(n)]


def lawson(target, basis, xs, weight):
    """coefficients c minimising max_x |weight(x)·(Σ c_i basis_i(x) − target(x))|"""
    a = np.array([[float(b(x)) for b in basis] for x in xs])
    y = np.array([float(target(x)) for x in xs])
    w = np.array([float(weight(x)) for x in xs])
    lw = np.ones(len(xs)) / len(xs)
    for _ in range(ITERATIONS):
        sw = np.sqrt(lw)
        c, *_ = np.linalg.lstsq(a * (sw * w)[:, None], y * sw * w, rcond=None)
        err = np.abs((a @ c - y) * w)
        lw = lw * err
        lw /= lw.sum()
    return c, err.max()


def powers(degree, shift=0.0):
    return [lambda x, i=i: (x - shift) ** i for i in range(degree + 1)]


def show(name, fit):
    c, e = fit
    print(f"{name}: max error {e:.3g}")
    print("   " + ", ".join(f"{v:.10g}" for v in c))


def main():
    half_ln2 = mp.log(2) / 2
    # exp: e^r − 1 − r ≈ r²·P4(r) on |r| ≤ ln2/2, error relative to e^r
    xs = [x for x in cheb_nodes(-half_ln2, half_ln2, NODES) if abs(x) > 1e-6]
    show("exp E2..E6", lawson(lambda r: (mp.exp(r) - 1 - r) / r ** 2, powers(4), xs, lambda r: r ** 2 / mp.exp(r)))
    # tanh: tanh(x) − x ≈ x³·P4(x²) on |x| < 0.625, error relative to tanh(x); variable u = x²
    us = cheb_nodes(1e-8, 0.625 ** 2, NODES)
    show("tanh T1..T5", lawson(lambda u: (mp.tanh(mp.sqrt(u)) - mp.sqrt(u)) / u ** 1.5, powers(4), us,
                                lambda u: u ** 1.5 / mp.tanh(mp.sqrt(u))))
    # erf small: erf(x) ≈ x·P6(x²) on |x| < 1, error relative to erf(x)
    us = cheb_nodes(1e-8, 1.0, NODES)
    show("erf A0..A6", lawson(lambda u: mp.erf(mp.sqrt(u)) / mp.sqrt(u), powers(6), us,
                               lambda u: mp.sqrt(u) / mp.erf(mp.sqrt(u))))
    # erf large: erfc(x) ≈ e^{−x²}·R8(x − 2.5) on 1 ≤ x ≤ 4, absolute error in erfc
    xs = cheb_nodes(1.0, 4.0, NODES)
    basis = [lambda x, i=i: mp.exp(-x * x) * (x - 2.5) ** i for i in range(9)]
    show("erf B0..B8", lawson(lambda x: mp.erfc(x), basis, xs, lambda x: 1))


if __name__ == "__main__":
    main()

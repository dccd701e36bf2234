"""Euclidean error bounds of a graph's affine operators: row norms and operator norms.

The coordinate bounds of :mod:`.opmaps` propagate an error vector e through a node as ``|W| e``; for a dense or
convolutional layer with random signs that is about sqrt(fan-in) times what ``W e`` can be, so through a deep
network (a CIFAR ResNet-18: 16 convolutions in a row) they grow by 10^18 and decide no sign. Euclidean norms
grow only by the operator's norm: with ``L`` a bound of ``||e||_2`` (per column of the maps),

    |(W e)_i| <= ||W_i||_2 L          (Cauchy-Schwarz, row i of the operator)
    ||W e||_2 <= ||W||_2 L            (the operator norm)

The engine keeps both bounds and takes, per unit, the smaller (:func:`piecewise.regions.graph_engine._affine`).
Here: ``norms(graph, k)``, per input of node k, upper bounds of the row norms (per output unit, or None where
the coordinate bound is already exact) and of the operator norm.

How the operator norms are bounded (each enlarged by ``SAFETY`` and the margins below):

- dense: the largest singular value of W (LAPACK), plus ``64 n u`` of the Frobenius norm (an SVD's backward
  error is a small multiple of ``n u ||W||``);
- convolution: a zero-padded convolution (any padding, dilation) is a submatrix of the circular convolution
  on a grid big enough that no window wraps round, and a stride keeps a subset of its rows: its norm is at
  most the circular one's, ``max over frequencies w of ||K^(w)||_2`` (the kernel's 2-D DFT, a (O/g, C/g)
  matrix per frequency and group), with margins for the FFT's rounding (``64 log2(N) u`` times the kernel's
  absolute sums) and the SVD's;
- average pooling, gathers: ``sqrt(||A||_1 ||A||_inf)`` from the exact row and column sums;
- scale/shift, add: the largest |coefficient|; reshape, concat: 1.
"""
from __future__ import annotations

import math

import numpy as np

from ..numerics import SAFETY, U


def _svd_max(A) -> float:
    """An upper bound of the largest singular value of A (..., m, n) (max over leading axes)."""
    if A.size == 0:
        return 0.0
    s = np.linalg.svd(A, compute_uv=False)
    m, n = A.shape[-2:]
    fro = np.sqrt((np.abs(A) ** 2).sum((-2, -1)))
    return float((s.max(-1) + 64 * max(m, n) * U * fro).max()) * SAFETY


def conv_opnorm(W, in_hw, a) -> float:
    """Upper bound of the operator norm of a conv node (weights W (O, C/g, kh, kw), attrs a) on (C, H, W)."""
    O, Cg, kh, kw = W.shape
    g = int(a.get("groups", 1))
    dh, dw = a.get("dilation", (1, 1))
    H, Wd = in_hw
    keh, kew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    pt, pl, pb, pr = a.get("pads", (0, 0, 0, 0))
    # a circle longer than the input, its padding and the window together: no window wraps round
    N1 = int(2 ** math.ceil(math.log2(H + pt + pb + keh + 1)))
    N2 = int(2 ** math.ceil(math.log2(Wd + pl + pr + kew + 1)))
    K = np.zeros((O, Cg, N1, N2))
    K[:, :, : keh:dh, : kew:dw] = W
    F = np.fft.rfft2(K)  # (O, Cg, N1, N2 // 2 + 1): a real kernel's other frequencies are their conjugates
    Og = O // g
    best = 0.0
    fft_err = 64 * math.log2(N1 * N2) * U * np.abs(W).sum((2, 3))  # per (o, c): entrywise FFT error bound
    for q in range(g):
        Fq = F[q * Og:(q + 1) * Og].transpose(2, 3, 0, 1).reshape(-1, Og, Cg)
        e = float(np.sqrt((fft_err[q * Og:(q + 1) * Og] ** 2).sum()))  # ||dK^||_F, every frequency
        best = max(best, _svd_max(Fq) + e)
    return best * SAFETY


def _sparse_norms(idx, n_in: int, weight: float = 1.0):
    """Row norms (per output) and an operator-norm bound of the 0/1 matrix of index table idx (size, K) into
    an input of n_in (index n_in: padding, no entry), scaled by ``weight``."""
    idx = np.asarray(idx).reshape(len(idx), -1) if np.ndim(idx) > 1 else np.asarray(idx).reshape(-1, 1)
    valid = idx < n_in
    rows = valid.sum(1).astype(float)
    cols = np.bincount(idx[valid].ravel(), minlength=n_in).astype(float)
    rn = np.sqrt(rows) * weight * SAFETY
    op = math.sqrt(float(rows.max(initial=0.0)) * float(cols.max(initial=0.0))) * weight * SAFETY
    return rn, op


def norms(graph, k: int):
    """Per input of affine node k: (row norms (node.size,) or None, operator norm) -- upper bounds."""
    nd = graph.nodes[k]
    op, a = nd.op, nd.attrs
    ins = [graph.nodes[i] for i in nd.inputs]
    if op == "dense":
        W = a["W"]
        rn = np.sqrt((W**2).sum(0)) * SAFETY  # x @ W: output o reads column o
        return [(rn, _svd_max(W))]
    if op == "conv":
        W = a["W"]
        rn = np.sqrt((W**2).sum((1, 2, 3))) * SAFETY  # every row of output channel o: a subset of W[o]
        rn = np.broadcast_to(rn[:, None, None], nd.shape).reshape(-1)
        return [(rn, conv_opnorm(W, ins[0].shape[1:], a))]
    if op == "avgpool":
        idx = a["idx"].reshape(nd.size, -1)
        div = np.broadcast_to(a["div"], nd.shape).reshape(-1)
        if np.all(div == div[0]):
            return [_sparse_norms(idx, ins[0].size, 1.0 / float(div[0]))]
        rn, _ = _sparse_norms(idx, ins[0].size, 1.0)
        w = 1.0 / div
        valid = idx < ins[0].size
        cols = np.bincount(idx[valid].ravel(), weights=np.broadcast_to(w[:, None], idx.shape)[valid],
                           minlength=ins[0].size)
        opn = math.sqrt(float((valid.sum(1) * w).max()) * float(cols.max(initial=0.0))) * SAFETY
        return [(rn * w, opn)]
    if op == "global_avgpool":
        n = int(np.prod(ins[0].shape[1:]))
        s = SAFETY / math.sqrt(n)
        return [(np.full(nd.size, s), s)]
    if op == "scale_shift":
        sc = np.abs(np.broadcast_to(a["scale"], nd.shape)).reshape(-1)
        return [(sc * SAFETY, float(sc.max(initial=0.0)) * SAFETY)]
    if op == "gather":
        rn, opn = _sparse_norms(np.asarray(a["idx"]).reshape(-1, 1), ins[0].size)
        return [(None, opn)]
    if op == "add":
        return [(None, abs(float(c)) * SAFETY) for c in a["coefs"]]
    if op in ("reshape", "concat"):
        return [(None, 1.0) for _ in ins]
    return [(None, math.inf) for _ in ins]

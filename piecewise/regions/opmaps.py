"""Affine operators applied to batched per-cell affine maps: a graph's convolutions, pooling, batch-norm, dense
layers, residual adds, concatenations and reshapes acting on the cells' maps, never composed into matrices.

Within a cell every value of a piecewise-linear network is an affine function of the domain's centred
coordinates c, ``v(c) = v_0 + sum_i c_i v_i``: d + 1 tensors of the value's shape. A batch of cells' maps of
one graph node is an array ``(N, d + 1, *shape)`` (rows 0..d-1 the gradient, row d the offset). An affine node
acts on it as it acts on a batch of N (d + 1) inputs, its constant added to the offset row only
(:func:`apply`). Composing a 16-channel 32x32 convolution into a dense matrix takes (16 * 1024)^2 numbers
(2 GB); applied to maps it takes the convolution's own cost per column.

Rounding: every node's output is a float64 sum of ``n_terms(node)`` products (:func:`n_terms`), so with the
magnitudes H and error bounds E of its inputs (per unit, over the cells of a batch) its error bound is
``|op|(E) + gamma_{n + 3} |op|(H)`` (+ the constant's rounding), computed by :func:`abs_apply` (the
operator with absolute values, applied to the bound vectors). :mod:`piecewise.numerics` states the model.

Convolutions run as one BLAS matrix product per block of maps (channels-last im2col: the k*k shifted windows
side by side), on the engine's threads (NumPy releases the GIL in the copies and in BLAS). Where JAX sees an
accelerator, :mod:`piecewise.regions.jaxmaps` computes the same sums jit-compiled (:func:`apply_maps`'s
``linear``).
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError

CONV_BLOCK = 16  # maps per im2col block (its columns stay in cache)


def n_terms(node) -> int:
    """Terms summed (products rounded) per output value of an affine node (0: exact, e.g. a reshape)."""
    op, a = node.op, node.attrs
    if op == "dense":
        return a["W"].shape[0] + 1
    if op == "conv":
        W = a["W"]
        return W.shape[1] * W.shape[2] * W.shape[3] + 1
    if op == "avgpool":
        return a["idx"].shape[-1] + 1
    if op == "scale_shift":
        return 2
    if op == "add":
        return 2 * len(node.inputs)
    return 0


def terms(node, in_shapes) -> int:
    """:func:`n_terms` with the input shapes known (global average pooling sums over the input's extent)."""
    if node.op == "global_avgpool":
        return int(np.prod(in_shapes[0][1:])) + 1
    return n_terms(node)


def bias(node):
    """The constant part of an affine node (an array broadcastable to its shape), or None."""
    op, a = node.op, node.attrs
    if op == "dense":
        return a.get("b")
    if op == "conv":
        b = a.get("b")
        return None if b is None else b[:, None, None]
    if op == "scale_shift":
        return a["shift"]
    if op == "const":
        return a["value"]
    return None


def apply(node, ins, threads: int = 1, absolute: bool = False):
    """The linear part of an affine node on batched values: ins (N, *input shape) each -> (N, *node.shape).
    ``absolute``: the operator with absolute values of its weights (for error bounds)."""
    op, a = node.op, node.attrs
    x = ins[0] if ins else None
    N = x.shape[0] if x is not None else 1
    ab = np.abs if absolute else (lambda t: t)
    if op == "const":
        return np.zeros((N, *node.shape))
    if op == "dense":
        return x @ ab(a["W"])
    if op == "conv":
        return _conv(x, ab(a["W"]), a, threads)
    if op == "avgpool":
        xf = x.reshape(N, -1)
        xf = np.concatenate([xf, np.zeros((N, 1))], 1)
        idx = a["idx"]
        return xf[:, idx].sum(-1) * (1.0 / a["div"])
    if op == "global_avgpool":
        return x.reshape(N, x.shape[1], -1).mean(-1).reshape(N, *node.shape)
    if op == "scale_shift":
        return x * ab(a["scale"])
    if op == "reshape":
        return x.reshape(N, *node.shape)
    if op == "gather":
        return x.reshape(N, -1)[:, a["idx"]].reshape(N, *node.shape)
    if op == "add":
        y = None
        for c, v in zip(a["coefs"], ins):
            c = abs(c) if absolute else c
            t = v * c if c != 1.0 else v
            y = t if y is None else y + t
        return y
    if op == "concat":
        return np.concatenate(ins, axis=a["axis"] + 1)
    raise PiecewiseError(f"internal error: {op} is not an affine node")


def conv_size(x_shape, W_shape, a) -> tuple[int, int]:
    """Output size (Ho, Wo) of a conv node on inputs (N, C, H, W)."""
    if "stride" not in a:
        raise PiecewiseError("internal error: a convolution node without its stride/padding attributes")
    _, _, H, Wd = x_shape
    _, _, kh, kw = W_shape
    sh, sw = a["stride"]
    pt, pl, pb, pr = a["pads"]
    dh, dw = a["dilation"]
    return (H + pt + pb - dh * (kh - 1) - 1) // sh + 1, (Wd + pl + pr - dw * (kw - 1) - 1) // sw + 1


def conv_plan(x_shape, W, a):
    """Output size (Ho, Wo) of a conv node on inputs (N, C, H, W), and its per-group weight matrices
    (kh * kw * Cg, O / g), rows ordered (i, j, c) as :func:`im2col`'s columns."""
    Ho, Wo = conv_size(x_shape, W.shape, a)
    O, Cg, kh, kw = W.shape
    g = a["groups"]
    Og = O // g
    Wm = [np.ascontiguousarray(W[q * Og:(q + 1) * Og].transpose(2, 3, 1, 0).reshape(kh * kw * Cg, Og))
          for q in range(g)]
    return Ho, Wo, Wm


def im2col(x, W_shape, a, Ho: int, Wo: int) -> list:
    """The im2col columns of x (n, C, H, W) for a conv node: per group, (n * Ho * Wo, kh * kw * Cg)."""
    n, C, H, Wd = x.shape
    _, Cg, kh, kw = W_shape
    sh, sw = a["stride"]
    pt, pl, pb, pr = a["pads"]
    dh, dw = a["dilation"]
    xp = np.zeros((n, H + pt + pb, Wd + pl + pr, C))
    xp[:, pt:pt + H, pl:pl + Wd] = x.transpose(0, 2, 3, 1)  # NHWC
    out = []
    for q in range(a["groups"]):
        cols = np.empty((n, Ho, Wo, kh * kw * Cg))
        k = 0
        for i in range(kh):
            for j in range(kw):
                cols[..., k:k + Cg] = xp[:, i * dh:i * dh + (Ho - 1) * sh + 1:sh,
                                         j * dw:j * dw + (Wo - 1) * sw + 1:sw, q * Cg:(q + 1) * Cg]
                k += Cg
        out.append(cols.reshape(-1, kh * kw * Cg))
    return out


def _conv(x, W, a, threads: int):
    """2-D convolution of x (N, C, H, W) with W (O, C/g, kh, kw): stride, padding (t, l, b, r), dilation,
    groups; NHWC im2col blocks and one BLAS product each."""
    N = x.shape[0]
    O = W.shape[0]
    Ho, Wo, Wm = conv_plan(x.shape, W, a)
    out = np.empty((N, O, Ho, Wo))

    def block(b0):
        b1 = min(b0 + CONV_BLOCK, N)
        parts = [c @ w for c, w in zip(im2col(x[b0:b1], W.shape, a, Ho, Wo), Wm)]
        res = parts[0] if len(parts) == 1 else np.concatenate(parts, 1)
        out[b0:b1] = res.reshape(b1 - b0, Ho, Wo, O).transpose(0, 3, 1, 2)

    from .parallel import pmap as _pmap

    _pmap(block, range(0, N, CONV_BLOCK), threads)
    return out


def apply_maps(node, ins, threads: int = 1, linear=None):
    """An affine node on batched cell maps: ins (C, d + 1, *input shape) each -> (C, d + 1, *node.shape); the
    constant goes to the offset row (d). ``linear(node, flat)``: another computation of the same sums
    (:func:`piecewise.regions.jaxmaps.linear`, jit-compiled); default :func:`apply` on the engine's threads."""
    C, d1 = ins[0].shape[:2]
    flat = [v.reshape(C * d1, *v.shape[2:]) for v in ins]
    y = apply(node, flat, threads) if linear is None else np.array(linear(node, flat))
    y = y.reshape(C, d1, *node.shape)
    b = bias(node)
    if b is not None:
        y[:, d1 - 1] += b
    return y

"""The operators of :mod:`piecewise.regions.opmaps` on batched cell maps, jit-compiled in JAX (float64): the
path the operator engine takes where JAX sees an accelerator (a GPU), the same code on every device.

Which path a count takes (:func:`backend`): ``PIECEWISE_MAPS=numpy`` (NumPy and BLAS on the engine's
threads), ``PIECEWISE_MAPS=jax`` (this module, on JAX's default device), or unset / ``auto``: JAX when a JAX
accelerator plugin is installed and ``jax.default_backend()`` is not the CPU, else NumPy (on a CPU, NumPy's
BLAS runs the convolutions 2-4x faster than XLA's float64 ones here). The result's ``engine["maps"]`` says
which ran.

The error model of :mod:`piecewise.regions.opmaps` holds for every path because each output is the same
float64 sum of ``n_terms`` products, only summed in another order (the bound gamma_n holds for any order and
with fused multiply-adds): a convolution is the sum over its kernel's k*k offsets of one matrix product of
the shifted input with that offset's weights (never an FFT or Winograd convolution, whose errors are not
bounded per output), dense layers one matrix product, pooling and means plain sums. XLA does not reassociate
float64 arithmetic unless asked to (fast-math is off by default).

Batches are padded to a few sizes (powers of two and 1.5 times them) so that a search's many chunk sizes
compile a handful of programs per node shape, not one per chunk.
"""
from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

from ..errors import PiecewiseError
from .opmaps import conv_size

ACCELERATOR_PLUGINS = ("jax_cuda13_plugin", "jax_cuda12_plugin", "jax_rocm7_plugin", "jax_rocm6_plugin",
                       "libtpu")


def backend() -> str:
    """``"numpy"`` or ``"jax"``: the path of the operator engine's float64 maps (module docstring)."""
    raw = os.environ.get("PIECEWISE_MAPS", "").strip().lower()
    if raw in ("numpy", "jax"):
        if raw == "jax" and importlib.util.find_spec("jax") is None:
            raise PiecewiseError("PIECEWISE_MAPS=jax but JAX is not installed")
        return raw
    if raw not in ("", "auto"):
        raise PiecewiseError(f"PIECEWISE_MAPS must be 'numpy', 'jax' or 'auto', got {raw!r}")
    return "jax" if _accelerator() else "numpy"


@functools.lru_cache(maxsize=1)
def _accelerator() -> bool:
    # no JAX import on a machine without an accelerator plugin (a CPU count never pays for it)
    if not any(importlib.util.find_spec(p) is not None for p in ACCELERATOR_PLUGINS):
        return False
    try:
        import jax

        return jax.default_backend() != "cpu"
    except Exception:  # a plugin that cannot start its device: the NumPy path
        return False


def device() -> str:
    """The device this module's programs run on, e.g. ``"gpu (NVIDIA H200)"`` or ``"cpu"``."""
    import jax

    d = jax.devices()[0]
    return d.platform if d.platform == "cpu" else f"{d.platform} ({d.device_kind})"


def describe(path: str) -> str:
    """What ran the float64 maps, as the result's ``engine["maps"]`` says it: ``"numpy"`` or ``"jax (<device>)"``."""
    return "numpy" if path == "numpy" else f"jax ({device()})"


def bucket(n: int) -> int:
    """The padded batch size for n rows: the smallest 2^k or 3 * 2^(k-1) >= n (at least 8)."""
    b = 8
    while b < n:
        b2 = b * 3 // 2
        if b2 >= n:
            return b2
        b *= 2
    return b


def linear(node, ins) -> np.ndarray:
    """The linear part of affine ``node`` on batched values ``ins`` ((N, *input shape) each, float64), as
    :func:`piecewise.regions.opmaps.apply` computes it, run in JAX: (N, *node.shape) as a NumPy array."""
    import jax

    op, a = node.op, node.attrs
    N = ins[0].shape[0] if ins else 1
    if op == "const":
        return np.zeros((N, *node.shape))
    if op == "reshape":
        return ins[0].reshape(N, *node.shape)
    B = bucket(N)
    with jax.enable_x64(True):
        xs = [_pad(np.asarray(v, np.float64), B) for v in ins]
        P = _programs()
        if op == "dense":
            y = P["dense"](xs[0], np.asarray(a["W"], np.float64))
        elif op == "conv":
            y = P["conv"](xs[0], np.asarray(a["W"], np.float64), tuple(a["stride"]), tuple(a["pads"]),
                          tuple(a["dilation"]), int(a["groups"]), conv_size(xs[0].shape, a["W"].shape, a))
        elif op == "avgpool":
            y = P["avgpool"](xs[0], np.asarray(a["idx"]), 1.0 / np.asarray(a["div"], np.float64))
        elif op == "global_avgpool":
            y = P["global_avgpool"](xs[0])
        elif op == "scale_shift":
            y = P["scale"](xs[0], np.asarray(a["scale"], np.float64))
        elif op == "gather":
            y = P["gather"](xs[0], np.asarray(a["idx"]))
        elif op == "add":
            y = P["add"](tuple(xs), tuple(float(c) for c in a["coefs"]))
        elif op == "concat":
            y = P["concat"](tuple(xs), int(a["axis"]) + 1)
        else:
            raise PiecewiseError(f"internal error: {op} is not an affine node")
        out = np.asarray(y)
    return out[:N].reshape(N, *node.shape)


def _pad(x: np.ndarray, B: int) -> np.ndarray:
    if x.shape[0] == B:
        return x
    out = np.zeros((B, *x.shape[1:]))
    out[:x.shape[0]] = x
    return out


@functools.lru_cache(maxsize=None)
def _programs():
    """The jitted programs (built on first use: importing this module imports no JAX)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    hi = lax.Precision.HIGHEST

    @jax.jit
    def dense(x, W):
        return jnp.matmul(x, W, precision=hi)

    @functools.partial(jax.jit, static_argnames=("stride", "pads", "dilation", "groups", "size"))
    def conv(x, W, stride, pads, dilation, groups, size):
        n = x.shape[0]
        O, Cg, kh, kw = W.shape
        sh, sw = stride
        pt, pl, pb, pr = pads
        dh, dw = dilation
        Ho, Wo = size
        Og = O // groups
        xp = jnp.pad(jnp.transpose(x, (0, 2, 3, 1)), ((0, 0), (pt, pb), (pl, pr), (0, 0)))  # NHWC
        outs = []
        for q in range(groups):
            y = None
            for i in range(kh):
                for j in range(kw):
                    win = lax.slice(xp, (0, i * dh, j * dw, q * Cg),
                                    (n, i * dh + (Ho - 1) * sh + 1, j * dw + (Wo - 1) * sw + 1, (q + 1) * Cg),
                                    (1, sh, sw, 1))  # (n, Ho, Wo, Cg)
                    t = jnp.matmul(win, W[q * Og:(q + 1) * Og, :, i, j].T, precision=hi)  # (n, Ho, Wo, Og)
                    y = t if y is None else y + t
            outs.append(y)
        y = outs[0] if groups == 1 else jnp.concatenate(outs, -1)
        return jnp.transpose(y, (0, 3, 1, 2))

    @jax.jit
    def avgpool(x, idx, inv_div):  # inv_div: 1 / the divisor(s), rounded as the NumPy path rounds it
        xf = jnp.concatenate([x.reshape(x.shape[0], -1), jnp.zeros((x.shape[0], 1), x.dtype)], 1)
        return xf[:, idx].sum(-1) * inv_div

    @jax.jit
    def global_avgpool(x):
        # XLA's mean multiplies the sum by a rounded 1 / n (NumPy's divides): one rounding more, inside gamma(t + 3)
        return x.reshape(x.shape[0], x.shape[1], -1).mean(-1)

    @jax.jit
    def scale(x, s):
        return x * s

    @jax.jit
    def gather(x, idx):
        return x.reshape(x.shape[0], -1)[:, idx]

    @functools.partial(jax.jit, static_argnames=("coefs",))
    def add(xs, coefs):
        y = None
        for c, v in zip(coefs, xs):
            t = v * c if c != 1.0 else v
            y = t if y is None else y + t
        return y

    @functools.partial(jax.jit, static_argnames=("axis",))
    def concat(xs, axis):
        return jnp.concatenate(xs, axis=axis)

    return dict(dense=dense, conv=conv, avgpool=avgpool, global_avgpool=global_avgpool, scale=scale,
                gather=gather, add=add, concat=concat)


"""Flax models (Linen or NNX) as :class:`~piecewise.graph.Graph` (optional extra: ``flax``).

The model is traced with JAX (:mod:`piecewise.io._jaxpr`): Dense, Conv (any padding, strides, dilation,
feature groups), relu / leaky-free PL activations written with ``max``/``min``/``abs``/``clip``, max_pool,
avg_pool, reshape and residual adds are read as written. Flax works in NHWC: ``input_shape`` is one input
*without* the batch axis, e.g. (8, 8, 1), and points are that input flattened in C order. Flax's Dense
kernel is already (in, out): no transpose.
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..graph import Graph
from ._jaxpr import from_jax


def from_flax(module, params=None, input_shape=None) -> Graph:
    """A Flax Linen module with its ``params`` (the dict from ``module.init``), or an NNX module (``params``
    None), as a Graph. The module is called on a batch of one input of ``input_shape`` (no batch axis)."""
    try:
        import flax  # noqa: F401
    except ImportError:
        raise PiecewiseError("from_flax needs Flax: pip install 'piecewise[flax]'") from None
    if input_shape is None:
        raise PiecewiseError("from_flax: give input_shape (one input without the batch axis)")
    shape = (int(input_shape),) if np.ndim(input_shape) == 0 else tuple(int(s) for s in input_shape)
    if params is not None:
        def fn(x):
            return module.apply(params, x.reshape(1, *shape)).reshape(-1)
    else:
        def fn(x):
            return module(x.reshape(1, *shape)).reshape(-1)
    return from_jax(fn, shape, source=f"flax {type(module).__name__}")

"""Equinox models as :class:`~piecewise.graph.Graph` (optional extra: ``equinox``).

The module is traced with JAX (:mod:`piecewise.io._jaxpr`): ``eqx.nn.MLP`` (relu), ``eqx.nn.Linear``,
``Conv1d/2d``, ``MaxPool2d``, ``AvgPool2d``, ``Sequential`` with ``Lambda`` (relu, ravel, ...), and custom
modules with residual adds are read as written. Equinox modules take one unbatched input: ``input_shape``
is that input's shape, e.g. (1, 8, 8) for a Conv2d with one channel; points are it flattened in C order.
Equinox's Linear computes ``weight @ x`` with ``weight`` (out, in); the importer handles the transpose.
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..graph import Graph
from ._jaxpr import from_jax


def from_equinox(module, input_shape=None) -> Graph:
    """An Equinox module (a callable PyTree) as a Graph; ``input_shape`` optional for a first Linear / MLP."""
    try:
        import equinox as eqx
    except ImportError:
        raise PiecewiseError("from_equinox needs Equinox: pip install 'piecewise[equinox]'") from None
    if input_shape is None:
        first = module
        while isinstance(first, eqx.nn.Sequential):
            first = first.layers[0]
        if isinstance(first, eqx.nn.MLP):
            input_shape = (first.in_size,)
        elif isinstance(first, eqx.nn.Linear):
            input_shape = (first.in_features,)
        else:
            raise PiecewiseError("from_equinox: give input_shape (one unbatched input)")
    shape = (int(input_shape),) if np.ndim(input_shape) == 0 else tuple(int(s) for s in input_shape)

    def fn(x):
        return module(x.reshape(shape)).reshape(-1)

    return from_jax(fn, shape, source=f"equinox {type(module).__name__}")

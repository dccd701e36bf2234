"""Weights in and out.

* :mod:`.npz` -- the .npz contract of MLPs (:func:`load_npz`, :func:`save_npz`, :func:`params_from_arrays`);
* :mod:`.onnx` -- :func:`load_onnx`: an ONNX model (``onnx`` package, no runtime) as a :class:`~piecewise.graph.Graph`;
* :mod:`.torch` -- :func:`from_torch`: a PyTorch module (Sequential, simple residual blocks) as a Graph;
* :mod:`.flax`, :mod:`.equinox` -- :func:`from_flax`, :func:`from_equinox`: their MLP / CNN modules as a Graph.

The framework importers are optional extras: the framework is imported only when its reader is called.
:func:`load_network` picks the reader from a file's extension.
"""
from __future__ import annotations

import os

from ..errors import PiecewiseError
from .npz import load_npz as load_npz, params_from_arrays as params_from_arrays, save_npz as save_npz


def load_onnx(path, **kwargs):
    """See :func:`piecewise.io.onnx.load_onnx`."""
    from .onnx import load_onnx as f

    return f(path, **kwargs)


def from_torch(module, input_shape=None):
    """See :func:`piecewise.io.torch.from_torch`."""
    from .torch import from_torch as f

    return f(module, input_shape)


def from_flax(module, params=None, input_shape=None):
    """See :func:`piecewise.io.flax.from_flax`."""
    from .flax import from_flax as f

    return f(module, params, input_shape)


def from_equinox(module, input_shape=None):
    """See :func:`piecewise.io.equinox.from_equinox`."""
    from .equinox import from_equinox as f

    return f(module, input_shape)


def load_network(path: "str | os.PathLike", activation=None):
    """Read a network file, the extension choosing the reader.

    * ``.npz`` -> ``(MLP, params)``: the .npz contract, exactly :func:`load_npz` (``activation`` as there);
    * ``.onnx`` -> ``(Graph, None)``: :func:`load_onnx`; the activations are the model's own, so passing
      ``activation`` is an error (one line).

    Returns ``(net, params)`` so that callers can treat both alike: for a graph ``params`` is None and the
    graph is passed as the network wherever an (MLP, params) pair is accepted.
    """
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext == ".onnx":
        if activation is not None:
            raise PiecewiseError(f"{os.path.basename(p)}: an ONNX model carries its own activations; drop --activation")
        return load_onnx(p), None
    if ext == ".npz":
        return load_npz(p, activation)
    raise PiecewiseError(f"unknown weights file type {ext or '(none)'!r} of {p}: expected .npz or .onnx")

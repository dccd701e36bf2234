"""piecewise: numerical analysis of piecewise-linear neural networks, in JAX.

The names below are imported on first use (PEP 562): ``import piecewise`` loads neither JAX nor any
submodule, and ``piecewise.mlp``, ``piecewise.regions``, ... work as plain attributes."""
from ._lazy import module_getattr as _module_getattr

__version__ = "0.3.0"

_EXPORTS = {
    "Activation": ".activations", "get_activation": ".activations",
    "PiecewiseError": ".errors",
    "Graph": ".graph", "GraphBuilder": ".graph",
    "load_network": ".io", "load_npz": ".io", "load_onnx": ".io", "params_from_arrays": ".io", "save_npz": ".io",
    "MLP": ".nets", "mlp": ".nets",
    "classify": ".patterns", "pattern_words": ".patterns", "unpack_states": ".patterns",
    "box": ".regions", "count_grid": ".regions", "enumerate_cells": ".regions", "plane": ".regions",
    "segment": ".regions", "space": ".regions", "count_space": ".regions",
}
_SUBMODULES = ("activations", "bounds", "constructions", "regions", "datasets", "graph", "invertibility", "staged",
               "sweep", "decision", "train", "explore")  # explore: a callable package, explore(net, params, domain)

__all__ = sorted([*_EXPORTS, *_SUBMODULES])
__getattr__ = _module_getattr(__name__, _EXPORTS)


def __dir__():
    return sorted(set(globals()) | set(__all__))

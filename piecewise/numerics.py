"""The one place where "zero" is defined.

A pre-activation ``z`` is *on a boundary* when ``|z - breakpoint| <= rtol(dtype) * scale``, where
``scale`` bounds the magnitude of the terms that were summed to get ``z`` (``|b| + sum_k |W_kj| max|h|``).
A relative test is used because the absolute size of pre-activations varies with the weights.

- float32 (fast grid passes): ``rtol = 2**-19`` (about 1.9e-6, ten times the largest float32 error seen on
  He-init nets up to 8 x 64 and 3 x 128, measured against this scale; tests re-measure it). A point
  that comes this close to a boundary in float32 is not trusted and is re-evaluated in float64.
- float64 (re-checks and exact enumeration): ``rtol = 1e-10``; float64 rounding of an MLP of moderate
  depth stays several orders of magnitude below it.
"""
from __future__ import annotations

import numpy as np

_RTOL = {np.dtype(np.float32): 2.0**-19, np.dtype(np.float64): 1e-10}


def rtol(dtype) -> float:
    """Relative tolerance used to decide that a pre-activation sits on a breakpoint."""
    dt = np.dtype(dtype)
    if dt not in _RTOL:
        raise ValueError(f"unsupported dtype {dt}: use float32 or float64")
    return _RTOL[dt]

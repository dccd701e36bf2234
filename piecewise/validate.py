"""Validation of user inputs, shared by the library's entry points and the command line.

One rule for every entry point that takes a network's parameters and a domain (:func:`check_inputs`, used by
:func:`~piecewise.regions.count_grid`, :func:`~piecewise.patterns.pattern_words` and
:func:`~piecewise.patterns.classify`), so the CLI gets the same checks by calling the library:

1. **The network.** An MLP spec with params of the shapes of :meth:`~piecewise.nets.MLP.param_shapes`, real
   numbers, finite; a :class:`~piecewise.graph.Graph` or :class:`~piecewise.staged.StagedNet` carries its own
   (already checked) weights and takes ``params=None``.
2. **The domain.** It lives in the network's input space and its origin and axes are finite.
3. **The dtype can hold the arithmetic.** Every value the grid path computes over the domain is bounded by
   interval arithmetic from the domain's magnitudes and the weights' absolute column sums, stage by stage
   (:func:`magnitude_bounds`): the coordinates ``|x| <= max_i (|origin_i| + sum_k |axes_ki|)``, and for every
   stage the magnitudes summed into its pre-activations, ``|c| + sum_j colsum|A_j| * max|h_j|`` (the same
   quantity the grid's boundary test scales its tolerance by, so it bounds both the pre-activations and the
   tolerance), then its outputs (``|h| <= max(1, |slope|) |z|``, ``<= 1`` for hardtanh, the group's bound for
   max units), and last the network's outputs. Each bound must stay below :func:`max_magnitude` of the
   dtype: for float32 an eighth of the largest float32 (about 4.3e37; the eighth covers the rounding of the
   sums and the difference of two pieces in a maxout tie test), for float64 ``MAX_MAGNITUDE`` = 1e50 (room
   for the exact engine's products: areas, error bounds). A float32 grid beyond its bound is refused with a
   one-line :class:`~piecewise.errors.PiecewiseError` that says to use float64; beyond float64's, with one
   that says to scale the inputs down.

The bounds are sound (never smaller than a value computed) but can be loose for deep networks: a network that
fails them may still be fine in fact; float64 is then the answer for a grid.
"""
from __future__ import annotations

import numpy as np

from .errors import PiecewiseError
from .nets import MLP, check_params
from .staged import StagedNet, as_staged

MAX_MAGNITUDE = 1e50  # inputs and pre-activations beyond this leave float64 no room (areas, tolerances)

_FLOAT32_LIMIT = float(np.finfo(np.float32).max) / 8


def max_magnitude(dtype) -> float:
    """The largest magnitude a value may reach in ``dtype`` (float32 or float64): see the module docstring.
    Raises :class:`PiecewiseError` for any other dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise PiecewiseError(f"unsupported dtype {dtype!r}: use float32 or float64") from None
    if dt == np.float32:
        return _FLOAT32_LIMIT
    if dt == np.float64:
        return MAX_MAGNITUDE
    raise PiecewiseError(f"unsupported dtype {dt}: use float32 or float64")


def _is_tracer(a) -> bool:
    import sys

    jax = sys.modules.get("jax")  # before JAX is imported nothing is a tracer (and importing it costs seconds)
    return jax is not None and isinstance(a, jax.core.Tracer)


def check_network(net, params) -> None:
    """Check a network and its parameters: an :class:`~piecewise.nets.MLP` with params of the right shapes
    whose entries are finite real numbers (NumPy or JAX arrays, any float or integer dtype), or a
    :class:`~piecewise.graph.Graph` / :class:`~piecewise.staged.StagedNet` with ``params=None``. Raises a
    one-line :class:`PiecewiseError` naming the first problem. Traced params (inside ``jit``) are checked
    for shapes only."""
    if isinstance(net, StagedNet) or hasattr(net, "to_staged"):
        if params is not None:
            raise PiecewiseError("a graph or staged network carries its own weights: pass params=None")
        return
    if not isinstance(net, MLP):
        raise PiecewiseError(f"expected an MLP spec, a Graph or a StagedNet, got {type(net).__name__}")
    if params is None:
        raise PiecewiseError("an MLP spec needs its params (a tuple of (W, b) pairs)")
    check_params(net, params)
    for i, (W, b) in enumerate(params):
        for kind, a in (("W", W), ("b", b)):
            if _is_tracer(a):
                continue
            a = np.asarray(a)
            if a.dtype.kind not in "fiu":
                raise PiecewiseError(f"{kind}{i} has dtype {a.dtype}, expected real numbers (float or integer)")
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                raise PiecewiseError(f"{kind}{i} contains NaN or inf")


def check_domain(domain, n_in: int) -> None:
    """The domain lives in R^n_in and its origin and axes are finite (a Domain made by hand may not be)."""
    from .regions.domain import Domain, check_domain as _check_dim

    if not isinstance(domain, Domain):
        raise PiecewiseError(f"expected a domain (box, plane or segment), got {type(domain).__name__}")
    _check_dim(domain, n_in)
    if not (np.all(np.isfinite(domain.origin)) and np.all(np.isfinite(domain.axes))):
        raise PiecewiseError(f"the {domain.kind} has NaN or infinite coordinates")


def domain_magnitude(domain) -> float:
    """A bound on ``|x|_inf`` over the domain and on the terms summed into it, ``x = origin + u @ axes``:
    ``max_i (|origin_i| + sum_k |axes_ki|)`` (float64)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.max(np.abs(domain.origin) + np.abs(domain.axes).sum(0)))


def magnitude_bounds(net, params, xmax: float):
    """Bounds on the magnitudes computed by a forward pass over inputs with ``|x|_inf <= xmax``: a list of
    ``(what, bound)``, one per stage (the magnitudes summed into its pre-activations, see the module docstring)
    and last the outputs'. ``net``: an MLP spec with params, a Graph or a StagedNet (params None); params must
    be finite (:func:`check_network`). Bounds may be inf where float64 itself overflows."""
    sn = as_staged(net, params)
    hmax = [float(xmax)]  # max |h_j| of every source j (0: the input)
    out = []
    with np.errstate(over="ignore", invalid="ignore"):
        def summed(weights, bias):
            s = np.abs(bias).astype(np.float64)
            for j, A in weights.items():
                s = s + np.abs(A).sum(0) * hmax[j]
            return s

        for k, st in enumerate(sn.stages, 1):
            z = summed(st.weights, st.bias)
            out.append((f"stage {k}'s pre-activations", float(np.max(z, initial=0.0))))
            if st.groups is not None:
                h = z[st.groups].max(-1) if z.size else z
            else:
                slopes = np.abs(st.slopes) if st.slopes is not None else max(abs(v) for v in st.activation.slopes)
                h = z * np.maximum(slopes, 1.0)
                if st.activation.name == "hardtanh":
                    h = np.minimum(h, 1.0)
            hmax.append(float(np.max(h, initial=0.0)))
        out.append(("the outputs", float(np.max(summed(sn.out_weights, sn.out_bias), initial=0.0))))
    return out


def _fix(dtype) -> str:
    if np.dtype(dtype) == np.float32:
        return "float32 arithmetic would overflow; use float64 (dtype=np.float64, --dtype float64)"
    return "float64 arithmetic would overflow; scale the inputs (and the first layer's weights) down"


def check_range(net, params, xmax: float, dtype=np.float64, where: str = "these inputs") -> None:
    """Refuse inputs with ``|x|_inf <= xmax`` on which ``dtype`` cannot hold the forward pass: a one-line
    :class:`PiecewiseError` when the coordinates or a bound of :func:`magnitude_bounds` exceed
    :func:`max_magnitude` (or are not finite). ``where`` names the inputs in the message."""
    limit = max_magnitude(dtype)
    name = np.dtype(dtype).name
    if not (np.isfinite(xmax) and xmax <= limit):
        raise PiecewiseError(f"the coordinates of {where} may reach {xmax:.3g}, beyond {limit:.3g} ({name}): "
                             f"{_fix(dtype)}")
    for what, bound in magnitude_bounds(net, params, xmax):
        if not (np.isfinite(bound) and bound <= limit):
            raise PiecewiseError(f"{what} may reach {bound:.3g} on {where}, beyond {limit:.3g} ({name}): "
                                 f"{_fix(dtype)}")


def check_inputs(net, params, domain, dtype=np.float64) -> None:
    """Everything an entry point needs before it computes over ``domain`` in ``dtype``: :func:`check_network`,
    :func:`check_domain` and :func:`check_range` (from the domain's magnitudes)."""
    check_network(net, params)
    check_domain(domain, net.n_in)
    check_range(net, params, domain_magnitude(domain), dtype, where=f"this {domain.kind}")


def check_points(x, n_in: int, what: str = "points") -> np.ndarray:
    """Points as a float64 array (m, n_in), finite; a one-line :class:`PiecewiseError` otherwise."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError):
        raise PiecewiseError(f"{what}: expected an (m, {n_in}) array of numbers") from None
    if a.dtype.kind not in "fiu":
        raise PiecewiseError(f"{what}: expected real numbers, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[1] != n_in:
        raise PiecewiseError(f"{what}: expected shape (m, {n_in}), got {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        raise PiecewiseError(f"{what} contain NaN or inf")
    return a


def check_magnitudes(net, params, domain, dtype=np.float64) -> None:
    """Refuse a domain on which ``dtype`` arithmetic (float64 by default) would overflow: raise
    :class:`PiecewiseError` when a coordinate of the domain, or a bound on the magnitudes summed into any
    pre-activation over it (interval arithmetic, stage by stage), exceeds the dtype's limit (``MAX_MAGNITUDE``
    for float64). ``net``: an MLP spec with params, a graph or a StagedNet (params None).

    The rule and the bounds are :func:`check_range`'s."""
    check_range(net, params, domain_magnitude(domain), dtype, where=f"this {domain.kind}")

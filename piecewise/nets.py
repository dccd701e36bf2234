"""Functional MLPs: a static spec (:class:`MLP`) plus a params pytree.

``params`` is a tuple of ``(W, b)`` pairs, one per layer, exactly the arrays of the .npz contract:
``W`` is (fan_in, fan_out) and ``b`` (fan_out,); for maxout hidden layers ``W`` is (fan_in, fan_out, k)
and ``b`` (fan_out, k). Every pair but the last is a hidden layer ``h = act(h @ W + b)``; the last pair is
the linear output layer.

Jit policy: the hot routines (:meth:`MLP.apply`, :meth:`MLP.preactivations`) are jit-compiled where they
are defined, with the spec static. They take any number of leading batch axes, ``x`` of shape
(..., n_in), so they also work unchanged under ``jax.vmap``. Ensembles: ``jax.vmap(lambda k:
net.init(key=k))(keys)`` gives stacked params, and ``jax.vmap(net.apply)(stacked, x)`` evaluates them.

Example::

    >>> import jax, piecewise as pw
    >>> net = pw.mlp(2, (16, 16), 1, "relu")
    >>> params = net.init(key=jax.random.key(0), bias_std=0.1)
    >>> net.apply(params, jax.numpy.zeros((5, 2))).shape
    (5, 1)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .activations import Activation, get_activation
from .errors import PiecewiseError

Params = tuple  # tuple[tuple[Array, Array], ...]

_SCHEMES = ("he", "glorot", "lecun")
_DISTRIBUTIONS = ("normal", "uniform")


@dataclass(frozen=True)
class MLP:
    """Static description of an MLP: ``n_in -> widths[0] -> ... -> widths[-1] -> n_out``.

    Hashable, so it is a static argument of the jitted routines. Build it with :func:`mlp`.
    """

    n_in: int
    widths: tuple[int, ...]
    n_out: int
    activation: Activation

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.widths)

    @property
    def n_neurons(self) -> int:
        """Total number of hidden units N."""
        return int(sum(self.widths))

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.n_in, *self.widths, self.n_out)

    def param_shapes(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """Expected (W shape, b shape) of every layer."""
        sizes = self.layer_sizes
        k = self.activation.rank
        out = []
        for i in range(len(sizes) - 1):
            hidden = i < len(self.widths)
            if hidden and self.activation.is_maxout:
                out.append(((sizes[i], sizes[i + 1], k), (sizes[i + 1], k)))
            else:
                out.append(((sizes[i], sizes[i + 1]), (sizes[i + 1],)))
        return out

    # -- parameters ---------------------------------------------------------------------------------
    def init(self, *, key, scheme: str = "he", distribution: str = "normal", bias_std: float = 0.0,
             dtype=jnp.float32) -> Params:
        """Random parameters.

        Args:
          key: a ``jax.random`` key (split once per layer).
          scheme: weight variance ``he`` (2/fan_in), ``lecun`` (1/fan_in) or ``glorot`` (2/(fan_in+fan_out)).
          distribution: ``normal`` or ``uniform`` (same variance).
          bias_std: biases ~ N(0, bias_std²); 0 gives zero biases.
          dtype: float32 or float64 (float64 needs ``jax.enable_x64``).
        Returns:
          tuple of (W, b) pairs with the shapes of :meth:`param_shapes`.
        """
        if scheme not in _SCHEMES:
            raise PiecewiseError(f"unknown init scheme {scheme!r}; known: {', '.join(_SCHEMES)}")
        if distribution not in _DISTRIBUTIONS:
            raise PiecewiseError(f"unknown distribution {distribution!r}; known: normal, uniform")
        if not bias_std >= 0:
            raise PiecewiseError(f"bias_std must be >= 0, got {bias_std}")
        shapes = self.param_shapes()
        keys = jax.random.split(key, 2 * len(shapes))
        params = []
        for i, (ws, bs) in enumerate(shapes):
            fan_in, fan_out = ws[0], ws[1]
            var = {"he": 2.0 / fan_in, "lecun": 1.0 / fan_in, "glorot": 2.0 / (fan_in + fan_out)}[scheme]
            std = var ** 0.5
            if distribution == "normal":
                W = std * jax.random.normal(keys[2 * i], ws, dtype)
            else:
                lim = std * 3.0 ** 0.5
                W = jax.random.uniform(keys[2 * i], ws, dtype, -lim, lim)
            b = bias_std * jax.random.normal(keys[2 * i + 1], bs, dtype)
            params.append((W, b))
        return tuple(params)

    # -- evaluation (jit-compiled, spec static) --------------------------------------------------------
    def apply(self, params: Params, x):
        """Network output. x: (..., n_in) float -> (..., n_out)."""
        return _apply(self, params, x)

    def preactivations(self, params: Params, x):
        """All hidden pre-activations: a tuple with one array per hidden layer, (..., width) or
        (..., width, k) for maxout."""
        return _preactivations(self, params, x)

    def hidden(self, params: Params, x):
        """All hidden post-activations (the layer-by-layer representations): tuple of (..., width)."""
        return tuple(self.activation(z) for z in self.preactivations(params, x))

    def __call__(self, params: Params, x):
        return self.apply(params, x)


def _layer(W, b, h):
    if W.ndim == 3:
        return jnp.einsum("...i,ijk->...jk", h, W) + b
    return h @ W + b


def _forward(net: MLP, params: Params, x):
    zs = []
    h = x
    for W, b in params[:-1]:
        z = _layer(W, b, h)
        zs.append(z)
        h = net.activation(z)
    W, b = params[-1]
    return tuple(zs), _layer(W, b, h)


@functools.partial(jax.jit, static_argnums=0)
def _apply(net, params, x):
    return _forward(net, params, x)[1]


@functools.partial(jax.jit, static_argnums=0)
def _preactivations(net, params, x):
    return _forward(net, params, x)[0]


def mlp(n_in: int, widths: Sequence[int], n_out: int = 1, activation: "str | Activation" = "relu") -> MLP:
    """Build an :class:`MLP` spec. ``activation`` accepts the CLI syntax (``"leaky_relu:0.1"``, ``"maxout:3"``)."""
    act = get_activation(activation)
    widths = tuple(int(w) for w in widths)
    if int(n_in) < 1 or int(n_out) < 1:
        raise PiecewiseError(f"n_in and n_out must be >= 1, got {n_in}, {n_out}")
    if any(w < 1 for w in widths):
        raise PiecewiseError(f"hidden widths must be >= 1, got {widths}")
    return MLP(int(n_in), widths, int(n_out), act)


def check_params(net: MLP, params: Params) -> None:
    """Raise :class:`PiecewiseError` naming the first layer whose arrays do not fit ``net``."""
    shapes = net.param_shapes()
    if len(params) != len(shapes):
        raise PiecewiseError(f"expected {len(shapes)} (W, b) pairs for {net.layer_sizes}, got {len(params)}")
    for i, ((W, b), (ws, bs)) in enumerate(zip(params, shapes)):
        if tuple(W.shape) != ws:
            raise PiecewiseError(f"W{i} has shape {tuple(W.shape)}, expected {ws}")
        if tuple(b.shape) != bs:
            raise PiecewiseError(f"b{i} has shape {tuple(b.shape)}, expected {bs}")


MAX_MAGNITUDE = 1e50  # inputs and pre-activations beyond this leave float64 no room (areas, tolerances)


def check_magnitudes(net, params, domain) -> None:
    """Refuse a domain on which float64 arithmetic would overflow: raise :class:`PiecewiseError` when a
    coordinate of the domain, or a bound on any pre-activation over it (interval arithmetic, stage by stage),
    exceeds ``MAX_MAGNITUDE``. ``net``: an MLP spec with params, a graph or a StagedNet (params None)."""
    from .staged import as_staged

    corners = np.abs(domain.origin) + np.abs(domain.axes).sum(0)
    bound = float(corners.max())
    if not np.isfinite(bound) or bound > MAX_MAGNITUDE:
        raise PiecewiseError(f"the domain reaches |x| = {bound:.3g}, beyond {MAX_MAGNITUDE:g}: float64 arithmetic "
                             f"would overflow; scale the inputs (and the first layer's weights) down")
    sn = as_staged(net, params)
    hs = [np.full(sn.n_in, bound)]

    def bounded(weights, bias, what):
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.abs(bias) + sum(hs[j] @ np.abs(A) for j, A in weights.items())
        zmax = float(np.max(z))
        if not np.isfinite(zmax) or zmax > MAX_MAGNITUDE:
            raise PiecewiseError(f"on this domain {what} may reach {zmax:.3g}, beyond {MAX_MAGNITUDE:g}: float64 "
                                 f"arithmetic would overflow; use a smaller box")
        return z

    for s, st in enumerate(sn.stages, 1):
        z = bounded(st.weights, st.bias, f"stage {s}'s pre-activations")
        if st.groups is not None:
            hs.append(z[st.groups].max(-1))
        else:
            slopes = np.abs(st.slopes) if st.slopes is not None else max(abs(v) for v in st.activation.slopes)
            h = z * np.maximum(slopes, 1.0)
            hs.append(np.minimum(h, 1.0) if st.activation.name == "hardtanh" else h)
    bounded(sn.out_weights, sn.out_bias, "the outputs")

"""Functional MLPs: a static spec (:class:`MLP`) plus a params pytree.

``params`` is a tuple of ``(W, b)`` pairs, one per layer, exactly the arrays of the .npz contract:
``W`` is (fan_in, fan_out) and ``b`` (fan_out,); for maxout hidden layers ``W`` is (fan_in, fan_out, k)
and ``b`` (fan_out, k). Every pair but the last is a hidden layer ``h = act(h @ W + b)``; the last pair is
the linear output layer.

Jit policy: the hot routines (:meth:`MLP.apply`, :meth:`MLP.preactivations`) are jit-compiled where they
are defined, with the spec static. They take any number of leading batch axes, ``x`` of shape
(..., n_in), so they also work unchanged under ``jax.vmap``. Ensembles: ``jax.vmap(lambda k:
net.init(key=k))(keys)`` gives stacked params, and ``jax.vmap(net.apply)(stacked, x)`` evaluates them.
The params' shapes (and x's last axis) are checked when a routine is traced (a one-line
:class:`~piecewise.errors.PiecewiseError`; no cost per call); their values are checked by the analysis entry
points (:mod:`piecewise.validate`), not here, where they may be tracers.

Precision: the products run at JAX's default precision unless ``precision`` is given: on GPUs that is TF32
for float32 (about 3 decimal digits; bf16 on TPUs), right for training and plotting. Code that reads the
sign of a pre-activation (patterns, grid counts: :mod:`piecewise.patterns`) asks for
``jax.lax.Precision.HIGHEST``, which the float32 tolerance of :mod:`piecewise.numerics` assumes.

Example::

    >>> import jax, piecewise as pw
    >>> net = pw.mlp(2, (16, 16), 1, "relu")
    >>> params = net.init(key=jax.random.key(0), bias_std=0.1)
    >>> net.apply(params, jax.numpy.zeros((5, 2))).shape
    (5, 1)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._lazy import lazy_jit
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
             dtype=np.float32) -> Params:
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
        import jax

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
    def apply(self, params: Params, x, *, precision=None):
        """Network output. x: (..., n_in) float -> (..., n_out). ``precision``: of the matrix products
        (a ``jax.lax.Precision``; None: JAX's default, TF32 for float32 on GPUs, see the module docstring)."""
        return _apply(self, params, x, precision)

    def preactivations(self, params: Params, x, *, precision=None):
        """All hidden pre-activations: a tuple with one array per hidden layer, (..., width) or
        (..., width, k) for maxout. ``precision``: as in :meth:`apply`."""
        return _preactivations(self, params, x, precision)

    def hidden(self, params: Params, x, *, precision=None):
        """All hidden post-activations (the layer-by-layer representations): tuple of (..., width)."""
        return tuple(self.activation(z) for z in self.preactivations(params, x, precision=precision))

    def __call__(self, params: Params, x):
        return self.apply(params, x)


def _layer(W, b, h, precision=None):
    """One affine layer ``h @ W + b``: h (..., fan_in), W (fan_in, fan_out) or (fan_in, fan_out, k) ->
    (..., fan_out) or (..., fan_out, k). ``precision``: of the product (None: JAX's default)."""
    import jax.numpy as jnp

    if W.ndim == 3:
        return jnp.einsum("...i,ijk->...jk", h, W, precision=precision) + b
    return jnp.matmul(h, W, precision=precision) + b


def _forward(net: MLP, params: Params, x, precision=None, dx=None, visit=None):
    """The MLP's one forward pass (traceable; every routine that evaluates an MLP goes through it).

    x (..., n_in) -> (pre-activations: a tuple (..., width) or (..., width, k) per hidden layer, output (..., n_out)).
    ``dx`` (..., n_in, d): derivatives of x along d directions, carried through the layers (None: not carried).
    ``visit(act, z, dz, scale, dscale)``, if given, is called at every hidden layer with its pre-activations z,
    their derivatives dz (None without ``dx``), and per-unit bounds (..., width) on the magnitude of the summed
    terms of z (|b| + sum_k |W_kj| max|h|) and of dz (sum_k |W_kj| max|dh|; None without ``dx``); for maxout
    z is (..., width, k) and the bounds the largest of a unit's pieces. Past a maxout unit the derivative is
    its argmax piece's; past an elementwise one, the slope of its pattern state (``Activation.derivative``)."""
    import jax.numpy as jnp

    check_params(net, params)  # shapes are static: checked once, when the jitted routine is traced
    if jnp.shape(x)[-1:] != (net.n_in,):
        raise PiecewiseError(f"x has shape {tuple(jnp.shape(x))}, expected (..., {net.n_in}) for this network")
    act = net.activation
    zs = []
    h, dh = x, dx
    for W, b in params[:-1]:
        z = _layer(W, b, h, precision)
        zs.append(z)
        dz = None
        if dh is not None:
            dz = jnp.einsum("...nd,njk->...jkd" if W.ndim == 3 else "...nd,nj->...jd", dh, W, precision=precision)
        if visit is not None:
            col = jnp.sum(jnp.abs(W), axis=0)  # (w,) or (w, k)
            tail = (None,) * col.ndim
            scale = jnp.abs(b) + col * jnp.max(jnp.abs(h), axis=-1)[(..., *tail)]
            dscale = None if dh is None else col * jnp.max(jnp.abs(dh), axis=(-2, -1))[(..., *tail)]
            if W.ndim == 3:
                scale = jnp.max(scale, axis=-1)
                dscale = None if dscale is None else jnp.max(dscale, axis=-1)
            visit(act, z, dz, scale, dscale)
        if dz is not None:
            if act.is_maxout:
                top = jnp.argmax(z, axis=-1)
                dh = jnp.take_along_axis(dz, top[..., None, None], -2)[..., 0, :]
            else:
                dh = act.derivative(z)[..., None] * dz
        h = act(z)
    W, b = params[-1]
    return tuple(zs), _layer(W, b, h, precision)


@lazy_jit(static_argnums=(0, 3))  # jax.jit, imported on the first call
def _apply(net, params, x, precision=None):
    return _forward(net, params, x, precision)[1]


@lazy_jit(static_argnums=(0, 3))
def _preactivations(net, params, x, precision=None):
    return _forward(net, params, x, precision)[0]


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
    """Raise :class:`PiecewiseError` naming the first layer whose arrays do not fit ``net`` (shapes only;
    :func:`piecewise.validate.check_network` also checks the values)."""
    shapes = net.param_shapes()
    if not isinstance(params, (tuple, list)):
        raise PiecewiseError(f"params must be a tuple of (W, b) pairs, got {type(params).__name__}")
    if len(params) != len(shapes):
        raise PiecewiseError(f"expected {len(shapes)} (W, b) pairs for {net.layer_sizes}, got {len(params)}")
    for i, (layer, (ws, bs)) in enumerate(zip(params, shapes)):
        if not isinstance(layer, (tuple, list)) or len(layer) != 2:
            raise PiecewiseError(f"params[{i}] must be a (W, b) pair, got {type(layer).__name__}")
        W, b = layer
        if tuple(np.shape(W)) != ws:
            raise PiecewiseError(f"W{i} has shape {tuple(np.shape(W))}, expected {ws}")
        if tuple(np.shape(b)) != bs:
            raise PiecewiseError(f"b{i} has shape {tuple(np.shape(b))}, expected {bs}")

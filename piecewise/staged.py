"""Any piecewise-linear network as a sequence of nonlinear *stages*: the exact engine's view of a network.

Convolution, pooling, batch-norm, flatten, residual adds and concatenation are affine, so once every affine
node is composed away a PL network is a list of nonlinear stages. Stage ``s`` (1-based) has the
pre-activation

    z_s = c_s + sum_j h_j @ A_{s,j}        (m_s,)

where the sources ``j`` are ``0`` (the network input x, (n_in,)) or an earlier stage ``1 <= j < s`` (its
output h_j). Its output is

* ``elementwise``: ``h_s = act(z_s)`` (width m_s) for relu, leaky_relu (optionally with one negative slope
  per unit, ``slopes``: PReLU), abs or hardtanh;
* ``max``: ``h_s[i] = max_r z_s[groups[i, r]]`` with ``groups`` (width, k) int indices into z_s (maxout
  units, max-pool windows; a window with fewer entries repeats one of them). The activation is
  ``maxout(k)`` and a unit's pattern state is the lowest ``r`` attaining the maximum.

The output is ``y = c_out + sum_j h_j @ A_{out,j}``. An MLP is the chain where stage s reads only s - 1
(:func:`from_mlp`). Within one activation region every z_s is affine in x, which is all exact enumeration
needs. All arrays are float64 NumPy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _pytree
from .activations import Activation, get_activation
from .errors import PiecewiseError


@dataclass(frozen=True, eq=False)
class Stage:
    """One nonlinear stage (see the module docstring). ``weights``: source -> (fan_source, m) float64,
    ``bias`` (m,), ``groups`` (width, k) int64 for max stages, ``slopes`` (m,) per-unit negative slopes for
    leaky_relu (None: the activation's own slope)."""

    activation: Activation
    weights: dict = field(repr=False)
    bias: np.ndarray = field(repr=False)
    groups: np.ndarray | None = field(default=None, repr=False)
    slopes: np.ndarray | None = field(default=None, repr=False)

    @property
    def m(self) -> int:
        """Number of pre-activations."""
        return int(self.bias.shape[0])

    @property
    def width(self) -> int:
        """Number of outputs (units)."""
        return self.m if self.groups is None else int(self.groups.shape[0])

    def apply(self, z: np.ndarray) -> np.ndarray:
        """Output of the stage for pre-activations z (..., m) -> (..., width)."""
        return _stage_out(self.activation, self.groups, self.slopes, np.asarray(z), np)

    def states(self, z: np.ndarray) -> np.ndarray:
        """Pattern state of every unit, int32 (..., width)."""
        if self.groups is not None:
            return np.argmax(z[..., self.groups], -1).astype(np.int32)
        return self.activation.states(z, np)


@dataclass(frozen=True, eq=False)
class StagedNet:
    """A PL network as nonlinear stages (module docstring). ``out_weights``: source -> (fan_source, n_out)."""

    n_in: int
    stages: tuple
    out_weights: dict = field(repr=False)
    out_bias: np.ndarray = field(repr=False)

    def __post_init__(self):
        widths = [self.n_in]
        for s, st in enumerate(self.stages, 1):
            _check_stage(st, s, widths)
            widths.append(st.width)
        if self.out_bias.ndim != 1:
            raise PiecewiseError(f"output bias must be 1-D, got shape {self.out_bias.shape}")
        _check_sources(self.out_weights, len(self.stages) + 1, widths, self.out_bias.shape[0], "output")

    @property
    def n_out(self) -> int:
        return int(self.out_bias.shape[0])

    @property
    def widths(self) -> tuple[int, ...]:
        """Output width of every stage."""
        return tuple(st.width for st in self.stages)

    @property
    def n_units(self) -> int:
        return sum(self.widths)

    def forward(self, x: np.ndarray):
        """Float64 forward pass of points x (..., n_in): (y (..., n_out), [z_s], [h_s])."""
        return walk(self.stages, params(self), np.asarray(x, np.float64), np)

    def __call__(self, x):
        return self.forward(x)[0]

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Jacobian (n_out, n_in) at one point x (n_in,), float64: the affine map of the region whose states
        x has (at a breakpoint: the state :meth:`Stage.states` assigns there, as for the patterns)."""
        x = np.asarray(x, np.float64)
        _, zs, _ = self.forward(x)
        ds = [np.eye(self.n_in)]  # d h_j / dx, (n_in, width_j)
        for st, z in zip(self.stages, zs):
            dz = sum(ds[j] @ A for j, A in st.weights.items())
            s = st.states(z)
            if st.groups is not None:
                ds.append(dz[:, st.groups[np.arange(st.width), s]])
                continue
            act = st.activation
            if act.name == "leaky_relu" and st.slopes is not None:
                slope = np.where(s == 1, 1.0, st.slopes)
            else:
                slope = np.asarray(act.slopes)[s]
            ds.append(dz * slope)
        return sum(ds[j] @ A for j, A in self.out_weights.items()).T

    def states(self, x: np.ndarray) -> list[np.ndarray]:
        """Per-stage pattern states (int32 (..., width_s)) of points x (..., n_in)."""
        _, zs, _ = self.forward(x)
        return [st.states(z) for st, z in zip(self.stages, zs)]


# -- a pytree: the arrays are the leaves, the rest is static (piecewise._pytree) ---------------------------
def _flatten(net: StagedNet):
    leaves, stages = [], []
    for st in net.stages:
        keys = tuple(sorted(st.weights))
        leaves += [st.weights[k] for k in keys] + [st.bias] + ([st.slopes] if st.slopes is not None else [])
        stages.append((st.activation, keys, _pytree.Frozen(st.groups), st.slopes is not None))
    out = tuple(sorted(net.out_weights))
    leaves += [net.out_weights[k] for k in out] + [net.out_bias]
    return leaves, (net.n_in, tuple(stages), out)


def _unflatten(aux, leaves, cls=None):
    """A StagedNet from its structure and leaves (any objects: tracers, placeholders), without the checks of
    its constructor (the leaves may not be arrays)."""
    n_in, stages_aux, out = aux
    it = iter(leaves)
    stages = []
    for act, keys, groups, has_slopes in stages_aux:
        weights = {k: next(it) for k in keys}
        bias = next(it)
        stages.append(Stage(act, weights, bias, groups.value, next(it) if has_slopes else None))
    ow = {k: next(it) for k in out}
    net = object.__new__(cls or StagedNet)
    for name, v in (("n_in", n_in), ("stages", tuple(stages)), ("out_weights", ow), ("out_bias", next(it))):
        object.__setattr__(net, name, v)
    return net


@dataclass(frozen=True, eq=False)
class _Skeleton(_pytree.Keyed, StagedNet):
    """A StagedNet's structure (:func:`piecewise._pytree.skeleton`): placeholders for its arrays, hashable."""

    __hash__ = _pytree.Keyed.__hash__
    __eq__ = _pytree.Keyed.__eq__


def skeleton(net: StagedNet) -> StagedNet:
    """The static stand-in of ``net`` for a jit-compiled function (equal for nets of one structure)."""
    return _pytree.skeleton(net, _flatten, _unflatten, _Skeleton)


_pytree.add(StagedNet, lambda net: _pytree.flat(net, _flatten), _unflatten)


def params(net: StagedNet):
    """The arrays of a StagedNet as a params pytree: (per stage (weights dict, bias, slopes or None), (output
    weights dict, output bias)). The static structure (activations, groups) stays in the net."""
    stages = tuple((dict(st.weights), st.bias, st.slopes) for st in net.stages)
    return stages, (dict(net.out_weights), net.out_bias)


def walk(stages, params, x, xp=None, precision=None, dx=None, visit=None, exact_zeros=False):
    """A StagedNet's one forward pass (every routine that evaluates a StagedNet goes through it): NumPy
    (``xp`` None or numpy) or traceable in JAX (``xp=jax.numpy``, products at ``precision``).

    ``stages``: the net's stages (their activations and groups; the arrays may be placeholders, as in a
    :func:`skeleton`), ``params``: :func:`params` of the net. x (..., n_in) -> (y (..., n_out), [z_s], [h_s]).
    ``dx`` (..., n_in, d): derivatives of x along d directions, carried through the stages (JAX only; None:
    not carried). ``visit(act, z, dz, scale, dscale)``, if given, is called at every stage with its
    pre-activations z, their derivatives dz (None without ``dx``) and per-unit bounds (..., width) on the
    magnitude of the summed terms of z (|c| + sum_j colsum|A_j| max|h_j|) and of dz (None without ``dx``); for
    a max stage z is (..., width, k), gathered by its groups, and the bounds the largest of a unit's pieces.
    Past a max unit the derivative is its argmax piece's; past an elementwise one, the slope of its state.
    ``exact_zeros`` (with ``visit``): a max stage's visit also gets ``exact`` (..., width, k): the pieces that
    are exactly 0, every term of their sum a product with an exact zero (an input that is 0, or a relu
    output that is 0: where its own boundary test does not flag it, it is exactly 0) and no constant."""
    xp = np if xp is None else xp
    if xp is np:
        def mm(a, b):
            return a @ b
    else:
        def mm(a, b):
            return xp.matmul(a, b, precision=precision)
    stages_p, (out_w, out_b) = params
    hs, dhs, hmax, dmax = [x], [dx], [], []
    if visit is not None:
        hmax.append(xp.max(xp.abs(x), axis=-1))
        dmax.append(None if dx is None else xp.max(xp.abs(dx), axis=(-2, -1)))
    zs = []
    hz = [x == 0] if exact_zeros and visit is not None else None  # per source: which values are exactly 0
    for st, (W, c, sl) in zip(stages, stages_p):
        z = _affine(W, c, hs, mm)
        zs.append(z)
        dz = None
        if dx is not None:
            dz = sum(xp.einsum("...nd,nj->...jd", dhs[j], A, precision=precision) for j, A in W.items())
        act = st.activation
        g = None if st.groups is None else np.asarray(st.groups, np.int32)
        if visit is not None:
            scale = xp.abs(c)
            for j, A in W.items():
                scale = scale + xp.sum(xp.abs(A), axis=0) * hmax[j][..., None]
            dscale = None
            if dx is not None:
                dscale = sum(xp.sum(xp.abs(A), axis=0) * dmax[j][..., None] for j, A in W.items())
            if g is None:
                visit(act, z, dz, scale, dscale)
            else:
                kw = {}
                if hz is not None:  # terms with a nonzero coefficient and an input not exactly 0 (0/1 sums: exact)
                    live = sum(mm((~hz[j]).astype(z.dtype), (A != 0).astype(z.dtype)) for j, A in W.items())
                    kw["exact"] = ((live == 0) & (c == 0))[..., g]
                visit(act, z[..., g], None if dz is None else dz[..., g, :], xp.max(scale[..., g], axis=-1),
                      None if dscale is None else xp.max(dscale[..., g], axis=-1), **kw)
        h = _stage_out(act, g, sl, z, xp)
        if hz is not None:  # relu outputs (slope 0) that are 0; a leaky or abs unit is 0 only on its boundary
            if g is None and sl is not None:
                hz.append((h == 0) & (sl == 0))
            else:
                hz.append(h == 0 if g is None and act.name == "relu" else xp.zeros(h.shape, bool))
        dh = None
        if dz is not None:
            if g is not None:
                dh = xp.take_along_axis(dz[..., g, :], xp.argmax(z[..., g], axis=-1)[..., None, None], -2)[..., 0, :]
            elif sl is not None:
                dh = xp.where(z > 0, 1.0, sl)[..., None] * dz
            else:
                dh = act.derivative(z)[..., None] * dz
        hs.append(h)
        dhs.append(dh)
        if visit is not None:
            hmax.append(xp.max(xp.abs(h), axis=-1))
            dmax.append(None if dh is None else xp.max(xp.abs(dh), axis=(-2, -1)))
    return _affine(out_w, out_b, hs, mm), zs, hs[1:]


def _stage_out(act, groups, slopes, z, xp):
    """A stage's output for pre-activations z (..., m) -> (..., width): the max over each group, the per-unit
    leaky slopes, or the activation."""
    if groups is not None:
        return xp.max(z[..., groups], axis=-1)
    if slopes is not None:
        return xp.where(z > 0, z, slopes * z)
    return act(z, np if xp is np else None)


def _affine(weights: dict, bias, hs: list, mm):
    out = bias
    for j, A in weights.items():
        out = out + mm(hs[j], A)
    return out


def _check_sources(weights, s, widths, m, what):
    if not isinstance(weights, dict) or not weights:
        raise PiecewiseError(f"{what}: weights must be a non-empty dict source -> matrix")
    for j, A in weights.items():
        if not (isinstance(j, (int, np.integer)) and 0 <= j < s):
            raise PiecewiseError(f"{what}: source {j!r} is not the input (0) or an earlier stage (1..{s - 1})")
        if A.ndim != 2 or A.shape != (widths[j], m):
            raise PiecewiseError(f"{what}: weights from source {j} have shape {A.shape}, expected {(widths[j], m)}")
        if not np.all(np.isfinite(A)):
            raise PiecewiseError(f"{what}: weights from source {j} contain NaN or inf")


def _check_stage(st: Stage, s: int, widths: list) -> None:
    what = f"stage {s}"
    act = st.activation
    if not act.piecewise_linear:
        raise PiecewiseError(f"{what}: activation {act} is not piecewise linear")
    if st.bias.ndim != 1 or not np.all(np.isfinite(st.bias)):
        raise PiecewiseError(f"{what}: bias must be a finite 1-D array, got shape {st.bias.shape}")
    _check_sources(st.weights, s, widths, st.m, what)
    if act.is_maxout:
        g = st.groups
        if g is None or g.ndim != 2 or g.shape[1] != act.rank or g.dtype.kind not in "iu":
            raise PiecewiseError(f"{what}: maxout:{act.rank} needs integer groups of shape (width, {act.rank})")
        if g.size and (g.min() < 0 or g.max() >= st.m):
            raise PiecewiseError(f"{what}: group indices must lie in [0, {st.m})")
    elif st.groups is not None:
        raise PiecewiseError(f"{what}: groups are for maxout stages, the activation is {act}")
    if st.slopes is not None:
        if act.name != "leaky_relu":
            raise PiecewiseError(f"{what}: per-unit slopes are for leaky_relu, the activation is {act}")
        if st.slopes.shape != (st.m,) or not np.all(np.isfinite(st.slopes)):
            raise PiecewiseError(f"{what}: slopes must be finite with shape ({st.m},), got {st.slopes.shape}")


def as_staged(net, params=None) -> StagedNet:
    """A StagedNet from an MLP spec and its params, a graph (anything with ``to_staged()``), or a StagedNet."""
    if isinstance(net, StagedNet):
        return net
    if hasattr(net, "to_staged"):
        return net.to_staged()
    return from_mlp(net, params)


def from_mlp(net, params) -> StagedNet:
    """The chain of stages of an :class:`~piecewise.nets.MLP` (weights as float64 NumPy)."""
    act = get_activation(net.activation)
    stages = []
    for s, (W, b) in enumerate(params[:-1]):
        W, b = np.asarray(W, np.float64), np.asarray(b, np.float64)
        groups = None
        if act.is_maxout:
            fan_in, width, k = W.shape
            W, b = W.reshape(fan_in, width * k), b.reshape(width * k)
            groups = np.arange(width * k).reshape(width, k)
        stages.append(Stage(act, {s: W}, b, groups))
    W, b = params[-1]
    return StagedNet(int(net.n_in), tuple(stages), {len(stages): np.asarray(W, np.float64)}, np.asarray(b, np.float64))

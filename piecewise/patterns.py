"""Activation patterns: per-unit states, packed into uint32 words, and boundary detection.

The pattern of a point is the state of every hidden unit, layer after layer (see
:mod:`piecewise.activations` for the states). :func:`pattern_words` packs it into ``n_words(net)``
uint32 words (layout in :func:`pack_states`; :func:`unpack_states` inverts it). Distinct patterns are counted by comparing the
words themselves, never by a hash alone (a hash only speeds up grouping; every group is verified).

Boundaries. A point is on the boundary of a unit when its pre-activation sits on a breakpoint within the
tolerance of :mod:`piecewise.numerics` (maxout: two pieces tie for the maximum). The pattern of such a
point may be the pattern of a set of measure zero, so region counting never takes it as a region.
One exception: a unit whose pre-activation is *identically* on the breakpoint near the point (zero
derivative along the domain, e.g. ``relu(z)`` passed on by a later unit where ``z < 0``) does not cut the
domain; its state is set to the state *at* the breakpoint. :func:`classify` makes that decision in float64.

Precision. Every product here is computed at ``jax.lax.Precision.HIGHEST`` (:data:`PRECISION`): JAX's default
on GPUs multiplies float32 matrices in TF32 (bf16 on TPUs), whose rounding is far above the float32 tolerance
of :mod:`piecewise.numerics` that the boundary test relies on. ``tests/test_patterns.py`` checks the jaxprs.

Inputs. :func:`pattern_words` and :func:`classify` validate the network, its params and the points
(:mod:`piecewise.validate`): shapes, finite values, and magnitudes the dtype can hold.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .errors import PiecewiseError
from .nets import MLP, Params, _forward
from .validate import check_network, check_points, check_range
from . import _pytree
from .staged import StagedNet, params as staged_params, skeleton, walk as _staged_walk
from .numerics import rtol

_pytree.register()  # StagedNet and Graph as pytrees (JAX is imported here anyway)


def as_staged(net):
    """A :class:`~piecewise.graph.Graph` becomes its :class:`~piecewise.staged.StagedNet`; anything else is
    returned as is."""
    from .graph import Graph

    return net.to_staged() if isinstance(net, Graph) else net


def is_staged(net) -> bool:
    return isinstance(net, StagedNet)


def _widths(net) -> tuple:
    return tuple(net.widths)


def _n_units(net) -> int:
    return int(sum(_widths(net)))


def bits_per_unit(net) -> int:
    """Bits of one unit's state: the activation's (an MLP), the largest over the stages (a StagedNet)."""
    if is_staged(net):
        return max([st.activation.bits for st in net.stages] or [1])
    return net.activation.bits


def _per_half(net) -> int:
    b = bits_per_unit(net)
    if b > 16:
        what = "a stage" if is_staged(net) else net.activation
        raise PiecewiseError(f"{what} has too many states to pack (at most 2^16)")
    return 16 // b


def n_words(net) -> int:
    """Number of uint32 words of a packed pattern (at least 1)."""
    return max(1, -(-_n_units(net) // (2 * _per_half(net))))


def _pack_matrix(net, layer: int) -> np.ndarray:
    """(width_l, 2 * n_words) float32 matrix P: ``states_l @ P`` gives the 16-bit halves of the packed words
    (exact: every half is an integer < 2^16, below float32's 2^24)."""
    b, ph = bits_per_unit(net), _per_half(net)
    widths = _widths(net)
    off = int(sum(widths[:layer]))
    P = np.zeros((widths[layer], 2 * n_words(net)), np.float32)
    for j in range(widths[layer]):
        half, pos = divmod(off + j, ph)
        P[j, half] = float(1 << (pos * b))
    return P


PRECISION = jax.lax.Precision.HIGHEST  # of every product whose result is compared (module docstring)


def _matmul(a, b, xp=jnp):
    """``a @ b`` at :data:`PRECISION` (NumPy: its own float arithmetic)."""
    return xp.matmul(a, b) if xp is np else jnp.matmul(a, b, precision=PRECISION)


def pack_states(net, states, xp=jnp):
    """Pack per-layer states (a sequence of int arrays (..., width_l)) into uint32 words (..., n_words).
    ``net``: an MLP, or a StagedNet (one entry per stage; every unit takes the largest stage's bits).

    Layout: each word is two 16-bit halves, each half holds ``16 // bits`` units; unit ``u`` (counted over
    all layers) goes to half ``u // (16 // bits)`` at bit ``(u % (16 // bits)) * bits`` of that half.
    On the device this is one small matmul per layer (fast and exact)."""
    nw = n_words(net)
    if not states:
        return xp.zeros((nw,), xp.uint32)
    lead = states[0].shape[:-1]
    halves = None
    for layer, s in enumerate(states):
        part = _matmul(xp.asarray(s).astype(xp.float32), xp.asarray(_pack_matrix(net, layer)), xp)
        halves = part if halves is None else halves + part
    halves = halves.astype(xp.uint32).reshape(*lead, nw, 2)
    return halves[..., 0] | (halves[..., 1] << xp.uint32(16))


def unpack_states(net, words) -> list[np.ndarray]:
    """Inverse of :func:`pack_states`: a list of int32 arrays (..., width_l), one per hidden layer (stage)."""
    net = as_staged(net)
    words = np.asarray(words, dtype=np.uint32)
    b, ph = bits_per_unit(net), _per_half(net)
    halves = np.stack([words & np.uint32(0xFFFF), words >> np.uint32(16)], axis=-1).reshape(*words.shape[:-1], -1)
    shifts = np.arange(ph, dtype=np.uint32) * b
    s = (halves[..., :, None] >> shifts) & np.uint32((1 << b) - 1)
    s = s.reshape(*words.shape[:-1], -1)[..., : _n_units(net)].astype(np.int32)
    widths = _widths(net)
    return np.split(s, np.cumsum(widths)[:-1], axis=-1) if widths else []


def _walk(net, params, x, dx=None, visit=None, exact_zeros=False):
    """The one forward pass of ``net``'s representation at :data:`PRECISION`: :func:`piecewise.nets._forward`
    for an MLP, :func:`piecewise.staged.walk` for a StagedNet (params: :func:`staged_params`; ``exact_zeros``:
    its max stages' visits get the pieces that are exactly 0). Traceable."""
    if is_staged(net):
        _staged_walk(net.stages, params, x, jnp, PRECISION, dx, visit, exact_zeros)
    else:
        _forward(net, params, x, PRECISION, dx, visit)


def _states_and_near(act, z, scale, tol, exact=None):
    """States (..., w) and whether each unit is within tolerance of a boundary (..., w). Max units: near when a
    piece other than the winner is within tolerance of it, unless both are exactly 0 (``exact`` (..., w, k),
    e.g. a pool window of relus that are off): an exact tie, which the lowest index wins, as argmax and the
    exact engine break it."""
    if act.is_maxout:
        top_i = jnp.argmax(z, axis=-1)[..., None]
        top = jnp.take_along_axis(z, top_i, -1)
        close = ((top - z) <= tol * scale[..., None]) & (jnp.arange(z.shape[-1]) != top_i)
        if exact is not None:
            close = close & ~(exact & jnp.take_along_axis(exact, top_i, -1))
        near = jnp.any(close, axis=-1)
    else:
        near = jnp.zeros(z.shape, bool)
        for bp in act.breakpoints:
            near = near | (jnp.abs(z - bp) <= tol * scale)
    return act.states(z), near


def forward_states(net, params, x, tol: float):
    """States of all units and a per-point flag "some unit is within ``tol`` of a boundary".

    Traceable (call inside jit). x: (m, n_in). Returns (list of int32 (m, w_l), bool (m,)). ``net`` an MLP
    with its params, or a StagedNet with :func:`staged_params`.
    """
    states, near = [], []

    def visit(act, z, dz, scale, dscale, exact=None):
        s, n = _states_and_near(act, z, scale, tol, exact)
        states.append(s)
        near.append(jnp.any(n, axis=-1))

    _walk(net, params, x, visit=visit, exact_zeros=True)
    return states, functools.reduce(jnp.logical_or, near, jnp.zeros(x.shape[:-1], bool))


def pattern_words(net, params, x):
    """Packed patterns of points x (m, n_in): uint32 (m, n_words). Points on boundaries are not flagged:
    use :func:`classify` when that matters. ``net``: an MLP with params, or a Graph / StagedNet with
    ``params=None``."""
    net = as_staged(net)
    x = _checked(net, params, x, None)
    if is_staged(net):
        params, net = staged_params(net), skeleton(net)  # compiled once per structure, not per object
    return _pattern_words(net, params, x)


def _checked(net, params, x, dtype):
    """Validate a public call (:mod:`piecewise.validate`): the network and params, points x (m, n_in) (left as
    they are when traced), and the magnitudes of the forward pass in ``dtype`` (None: the dtype JAX will
    compute in, float32 unless x64 is on and the arrays are float64)."""
    check_network(net, params)
    if isinstance(x, jax.core.Tracer) or any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(params)):
        return x
    pts = check_points(x, net.n_in)
    if dtype is None:
        dtype = jnp.result_type(*jax.tree_util.tree_leaves(params), x) if params is not None else jnp.result_type(x)
        dtype = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    if len(pts):
        check_range(net, params, float(np.abs(pts).max()), dtype, where="these points")
    return x


@functools.partial(jax.jit, static_argnums=0)
def _pattern_words(net, params, x):
    states, _ = forward_states(net, params, x, 0.0)
    return pack_states(net, states)


def hash_words(words):
    """Two independent 32-bit hashes of packed patterns (m, n_words) -> (2, m) uint32 (for grouping only)."""
    out = []
    for seed in (0x811C9DC5, 0x2545F491):
        h = jnp.full(words.shape[:-1], seed, jnp.uint32)
        for j in range(words.shape[-1]):
            h = (h ^ words[..., j]) * jnp.uint32(0x01000193)
            h = h ^ (h >> 15)
        h = (h ^ (h >> 16)) * jnp.uint32(0x85EBCA6B)
        h = (h ^ (h >> 13)) * jnp.uint32(0xC2B2AE35)
        out.append(h ^ (h >> 16))
    return jnp.stack(out)


# -- float64 classification with flat-unit handling ---------------------------------------------------
def _max_unit_states(z, dz, scale, dscale, tol):
    """Max units (z (m, w, k), dz (m, w, k, d)): the winning piece, the lowest index among pieces tied with
    the same derivative (a whole-cell tie), and whether the point sits on a boundary between pieces whose
    derivatives differ. Returns (states, on_boundary (m,))."""
    top_i = jnp.argmax(z, axis=-1)
    top = jnp.take_along_axis(z, top_i[..., None], -1)
    dtop = jnp.take_along_axis(dz, top_i[..., None, None], -2)
    close = (top - z) <= tol * scale[..., None]
    same = jnp.max(jnp.abs(dz - dtop), axis=-1) <= tol * dscale[..., None]
    tie = jnp.sum(close, axis=-1) >= 2
    cut = tie & jnp.any(close & ~same, axis=-1)
    s = jnp.where(tie, jnp.argmax(close, axis=-1), top_i).astype(jnp.int32)
    return s, jnp.any(cut, axis=-1)


def _elementwise_states(act, z, dz, scale, dscale, tol):
    """Elementwise units: the state, with a flat unit (zero derivative along the domain) lying on a breakpoint
    given the state at the breakpoint; and whether the point sits on a breakpoint of a non-flat unit.
    Returns (states, on_boundary (m,))."""
    flat = jnp.max(jnp.abs(dz), axis=-1) <= tol * dscale
    s = act.states(z)
    on_boundary = jnp.zeros(z.shape[:-1], bool)
    for bp in act.breakpoints:
        on = jnp.abs(z - bp) <= tol * scale
        on_boundary = on_boundary | jnp.any(on & ~flat, axis=-1)
        s = jnp.where(on & flat, act.states(jnp.full_like(z, bp)), s)
    return s, on_boundary


@functools.partial(jax.jit, static_argnums=0)
def _classify(net, params, x, dx):
    """Packed patterns and interior flags of points x (m, n) with domain directions dx (m, n, d), in one pass."""
    tol = rtol(x.dtype)
    states, cuts = [], []

    def visit(act, z, dz, scale, dscale):
        if act.is_maxout:
            s, cut = _max_unit_states(z, dz, scale, dscale, tol)
        else:
            s, cut = _elementwise_states(act, z, dz, scale, dscale, tol)
        states.append(s)
        cuts.append(cut)

    _walk(net, params, x, dx, visit)
    return pack_states(net, states), ~functools.reduce(jnp.logical_or, cuts, jnp.zeros(x.shape[:-1], bool))


def classify(net, params, x, directions) -> tuple[np.ndarray, np.ndarray]:
    """Exact-as-float64-allows pattern of each point, and whether the point is interior to a region.

    Args:
      x: (m, n_in) points.
      directions: (d, n_in) directions spanning the domain the regions live in (identity for a box,
        the two plane vectors for a 2D slice). A unit is *flat* at a point if its pre-activation has
        zero derivative along all of them.
    Returns:
      words: uint32 (m, n_words), the pattern (flat units set to their state at the breakpoint).
      valid: bool (m,), False where the point lies on a boundary that cuts the domain.
    Runs in float64 (``jax.enable_x64`` inside). ``net``: an MLP with params, or a Graph / StagedNet with
    ``params=None``.
    """
    net = as_staged(net)
    _checked(net, params, x, np.float64)
    check_points(directions, net.n_in, "directions")
    return _classify_points(net, None if is_staged(net) else params, x, directions)


def _classify_points(net, params, x, directions) -> tuple[np.ndarray, np.ndarray]:
    """:func:`classify` without the validation (for callers that validated the network once, the grid)."""
    if is_staged(net) and params is None:
        params = staged_params(net)
    static = skeleton(net) if is_staged(net) else net  # compiled once per structure, not per object
    x = np.asarray(x, np.float64)
    m = x.shape[0]
    nw = n_words(net)
    if m == 0:
        return np.zeros((0, nw), np.uint32), np.zeros(0, bool)
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)  # None leaves stay
        # stage 1: a plain float64 pass; only points still within tolerance need derivatives
        words, near = (np.array(a)[:m] for a in _words_near(static, p64, jnp.asarray(_pad(x))))
        valid = np.ones(m, bool)
        if near.any():
            idx = np.nonzero(near)[0]
            xs = _pad(x[idx])
            d = np.asarray(directions, np.float64)
            dx = jnp.broadcast_to(jnp.asarray(d.T), (xs.shape[0], *d.T.shape))
            w2, v2 = _classify(static, p64, jnp.asarray(xs), dx)
            words[idx] = np.asarray(w2)[: len(idx)]
            valid[idx] = np.asarray(v2)[: len(idx)]
        return words, valid


def _pad(x: np.ndarray) -> np.ndarray:
    """Pad rows to a power of two (>= 64) by repeating the first: few distinct shapes, few compilations."""
    size = max(64, 1 << (len(x) - 1).bit_length())
    return np.concatenate([x, np.broadcast_to(x[:1], (size - len(x), x.shape[1]))])


@functools.partial(jax.jit, static_argnums=0)
def _words_near(net: MLP, params: Params, x):
    states, near = forward_states(net, params, x, rtol(x.dtype))
    return pack_states(net, states), near

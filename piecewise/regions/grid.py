"""Sampled region counting: distinct activation patterns over a regular grid of a domain.

A grid count is a *lower bound* on the number of activation regions that meet the domain: every pattern
it reports belongs to a region with nonempty interior, and regions smaller than the grid spacing can be
missed. Two things make the first half true:

1. **Exact distinctness.** Patterns are packed into uint32 words (:mod:`piecewise.patterns`). Within a
   chunk they are grouped by a 64-bit hash and every group is verified word by word (a collision falls
   back to sorting the words themselves); across chunks they are merged in a dict keyed by the words.
2. **Boundary points are not regions.** A grid point can lie exactly on a boundary (a grid through the
   origin of a bias-free net, a breakpoint on the box edge); its pattern may belong to a set of measure
   zero (at a point where three lines meet, rounding can even produce a sign pattern no region has). The
   float32 pass flags every point that comes within ``rtol(float32) * scale`` of a breakpoint
   (:mod:`piecewise.numerics`); flagged points are re-evaluated in float64 by
   :func:`piecewise.patterns.classify`, which keeps a point only if no unit that cuts the domain is on its
   breakpoint. Units that are identically on the breakpoint along the domain (flat units) do not cut it
   and are kept. Dropped points get region id -1 and are counted in ``n_boundary``.

Inputs are validated first (:func:`piecewise.validate.check_inputs`): the params' shapes and finite values,
the domain, and that the dtype holds every coordinate and pre-activation over the domain (a float32 grid
that would overflow is refused with a message to use float64). Every product whose result is compared (the
grid's points, the pre-activations, the packing) runs at ``jax.lax.Precision.HIGHEST``: JAX's default on GPUs
(TF32 for float32) rounds far beyond the float32 tolerance.

Memory stays bounded: points are generated on the device chunk by chunk (``chunk_size`` points), only
packed patterns come back, and the optional per-point ids take 4 bytes a point.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

from .._lazy import lazy_jit
from ..errors import PiecewiseError
from ..nets import MLP, Params
from ..numerics import rtol
from ..validate import check_inputs, max_magnitude
from .domain import Domain

_MAX_POINTS = 2**31 - 1


@dataclass
class GridCount:
    """Result of :func:`count_grid`.

    Attributes:
      regions: number of distinct activation patterns found (activation regions meeting the domain).
      patterns: uint32 (regions, n_words), the packed pattern of each region, in id order.
      point_counts: int64 (regions,), grid points that fell in each region (area estimates).
      ids: int32 array of shape ``resolution`` (grid axis i is domain axis i), region id of every grid point,
        -1 on boundaries; None unless ``return_ids``.
      resolution: points per axis.
      n_points: grid points evaluated. n_boundary: points dropped as lying on a boundary.
      n_rechecked: points re-evaluated in float64. seconds: wall time.
    """

    regions: int
    patterns: np.ndarray
    point_counts: np.ndarray
    ids: np.ndarray | None
    resolution: tuple[int, ...]
    n_points: int
    n_boundary: int
    n_rechecked: int
    seconds: float
    domain: Domain = field(repr=False)

    def to_json(self) -> dict:
        return {"regions": self.regions, "method": "grid", "resolution": list(self.resolution),
                "points": self.n_points, "boundary_points": self.n_boundary,
                "rechecked_float64": self.n_rechecked, "seconds": round(self.seconds, 4),
                "domain": self.domain.describe(),
                "note": "grid count: a lower bound on the activation regions meeting the domain"}


def _grid_x(res: tuple[int, ...], chunk: int, origin, axes, start):
    """Input points of grid indices start .. start+chunk-1 (C order, last axis fastest); traceable."""
    import jax.numpy as jnp

    from ..patterns import PRECISION

    rem, coords = start + jnp.arange(chunk, dtype=jnp.int32), []
    for r in reversed(res):
        coords.append(rem % r)
        rem = rem // r
    u = jnp.stack(coords[::-1], axis=-1).astype(origin.dtype) / jnp.asarray([r - 1 for r in res], origin.dtype)
    return origin + jnp.matmul(u, axes, precision=PRECISION)


_BLOCK = 4096  # points per inner block: the block's activations stay in cache (2x faster than one big batch)


def _blocked(fn, chunk: int, start):
    """Run fn(block_start, block_size) over the chunk in cache-sized blocks (lax.map), concatenating."""
    import jax
    import jax.numpy as jnp

    block = min(chunk, _BLOCK)
    out = jax.lax.map(lambda i: fn(start + i * block, block), jnp.arange(chunk // block, dtype=jnp.int32))
    return jax.tree_util.tree_map(lambda a: a.reshape(chunk, *a.shape[2:]), out)


@lazy_jit(static_argnums=(0, 1, 2))  # jax.jit, JAX imported on the first call
def _chunk_kernel(net: MLP, res: tuple[int, ...], chunk: int, params, origin, axes, start):
    """Patterns of one grid chunk: words (chunk, W), near-boundary flag (chunk,), run starts (chunk,) and
    2 hashes (chunk, 2). A run is a stretch of consecutive unflagged points with one pattern: the host
    only looks at the first point of each run."""
    import jax.numpy as jnp

    from ..patterns import forward_states, hash_words, pack_states

    def block(s, size):
        states, flag = forward_states(net, params, _grid_x(res, size, origin, axes, s), rtol(origin.dtype))
        words = pack_states(net, states)
        return words, flag, hash_words(words).T
    words, flag, hashes = _blocked(block, chunk, start)
    prev_flag = jnp.concatenate([jnp.ones(1, bool), flag[:-1]])
    changed = jnp.concatenate([jnp.ones(1, bool), jnp.any(words[1:] != words[:-1], axis=-1)])
    return words, flag, ~flag & (changed | prev_flag), hashes


@lazy_jit(static_argnums=(0, 1, 2))
def _forward_kernel(net: MLP, res: tuple[int, ...], chunk: int, params, origin, axes, start):
    """Benchmark baseline: the bare forward pass over the same grid chunk, with the same blocking."""
    from ..patterns import PRECISION

    return _blocked(lambda s, size: net.apply(params, _grid_x(res, size, origin, axes, s), precision=PRECISION),
                    chunk, start)


def grid_points(domain: Domain, resolution) -> np.ndarray:
    """All grid points (float64), shape (*resolution, n_in); for small grids and tests."""
    res = _resolution(resolution, domain.dim)
    axes = [np.linspace(0.0, 1.0, r) for r in res]
    u = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return domain.points(u)


def _resolution(resolution, d: int) -> tuple[int, ...]:
    res = (resolution,) * d if np.ndim(resolution) == 0 else tuple(resolution)
    try:
        res = tuple(int(r) for r in res)
    except (TypeError, ValueError):
        raise PiecewiseError(f"resolution must be an integer, got {resolution!r}") from None
    if len(res) != d:
        raise PiecewiseError(f"resolution has {len(res)} entries for a {d}-dimensional domain")
    if any(r < 2 for r in res):
        raise PiecewiseError(f"resolution must be >= 2 points per axis, got {res}")
    if np.prod([float(r) for r in res]) > _MAX_POINTS:
        raise PiecewiseError(f"grid of {'x'.join(map(str, res))} points is too large (max 2^31 - 1)")
    return res


def _progress_bar(total: int, progress, desc: str):
    from tqdm.auto import tqdm

    disable = (not progress) if progress is not None else (True if total < 8 else None)
    return tqdm(total=total, desc=desc, unit="chunk", disable=disable, leave=False)


class _PatternTable:
    """Exact set of packed patterns -> region ids (dict keyed by the pattern's bytes)."""

    def __init__(self, nw: int):
        self.index: dict[bytes, int] = {}
        self.rows: list[np.ndarray] = []
        self.counts: list[int] = []
        self.nw = nw

    def ids_of(self, words: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Ids of distinct patterns (u, nw), creating new ones; adds counts."""
        out = np.empty(len(words), np.int64)
        for i, row in enumerate(words):
            key = row.tobytes()
            j = self.index.get(key)
            if j is None:
                j = len(self.rows)
                self.index[key] = j
                self.rows.append(row.copy())
                self.counts.append(0)
            self.counts[j] += int(counts[i])
            out[i] = j
        return out

    def add(self, words: np.ndarray, hashes: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
        """Region ids of every row of ``words`` (m, nw); row i stands for weights[i] grid points."""
        if len(words) == 0:
            return np.empty(0, np.int64)
        if hashes is not None:
            _, first, inv = np.unique(hashes, return_index=True, return_inverse=True)
            if not np.array_equal(words[first][inv], words):  # a hash collision: group by the words
                hashes = None
        if hashes is None:
            _, first, inv = np.unique(np.ascontiguousarray(words).view(np.dtype((np.void, 4 * self.nw))).ravel(),
                                      return_index=True, return_inverse=True)
        inv = inv.ravel()
        return self.ids_of(words[first], np.bincount(inv, weights=weights, minlength=len(first)))[inv]


def count_grid(net: MLP, params: Params, domain: Domain, resolution=1024, *, chunk_size: int = 2**16,
               dtype=np.float32, return_ids: bool = False, progress: bool | None = None) -> GridCount:
    """Count the distinct activation patterns on a regular grid of ``domain``.

    Args:
      net, params: the network (any piecewise-linear activation): an MLP and its params, or any PL network as
        a :class:`~piecewise.graph.Graph` or :class:`~piecewise.staged.StagedNet` with ``params=None`` (the
        graph is lowered to its stages; patterns are packed stage after stage).
      domain: a :func:`~piecewise.regions.box`, :func:`~piecewise.regions.plane` or
        :func:`~piecewise.regions.segment` of the network's input space.
      resolution: points per axis (int, or one int per domain axis); the grid includes the domain's edges,
        so resolutions ``2^j + 1`` are nested and their counts never decrease.
      chunk_size: points per device batch (memory ~ chunk_size * max width * 4 bytes per layer).
      dtype: float32 (default, with float64 re-checks near boundaries) or float64.
      return_ids: also return the region id of every grid point (int32, -1 on boundaries).
      progress: show a progress bar (None: only on long runs in a terminal).
    Returns:
      :class:`GridCount`.
    Raises:
      PiecewiseError: bad params (shapes, NaN or inf), a bad domain or resolution, or a domain on which the
        dtype would overflow (:mod:`piecewise.validate`; for float32 the message says to use float64).
    """
    import jax
    import jax.numpy as jnp

    from ..patterns import _classify_points, as_staged, is_staged, n_words, staged_params
    from ..staged import skeleton

    t0 = time.perf_counter()
    net = as_staged(net)
    max_magnitude(dtype)  # validates the dtype
    dtype = np.dtype(dtype)
    if not is_staged(net) and isinstance(net, MLP) and not net.activation.piecewise_linear:
        raise PiecewiseError(f"activation {net.activation} is not piecewise linear: it has no activation regions")
    check_inputs(net, params, domain, dtype)
    static = net  # the jit-compiled kernel's static argument: a StagedNet's structure (one compilation per shape)
    if is_staged(net):
        params = staged_params(net)
        static = skeleton(net)
    res = _resolution(resolution, domain.dim)
    total = int(np.prod(res))
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise PiecewiseError(f"chunk_size must be a power of two, got {chunk_size}")
    chunk = int(min(chunk_size, 1 << max(8, (total - 1).bit_length())))
    n_chunks = -(-total // chunk)
    nw = n_words(net)

    ctx = jax.enable_x64(True) if dtype == np.float64 else contextlib.nullcontext()
    with ctx:
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), dtype), params)
        origin = jnp.asarray(domain.origin, dtype)
        axes = jnp.asarray(domain.axes, dtype)
        table = _PatternTable(nw)
        ids = np.full(total, -1, np.int32) if return_ids else None
        n_boundary = n_rechecked = 0
        denom = np.asarray([r - 1 for r in res], np.float64)
        bar = _progress_bar(n_chunks, progress, "grid")
        pending = _chunk_kernel(static, res, chunk, p, origin, axes, jnp.int32(0))
        for c in range(n_chunks):
            start = c * chunk
            words, flag, starts, hashes = pending
            if c + 1 < n_chunks:  # dispatch the next chunk before the host works on this one
                pending = _chunk_kernel(static, res, chunk, p, origin, axes, jnp.int32(start + chunk))
            m = min(chunk, total - start)
            flag = np.asarray(flag)[:m]
            first = np.nonzero(np.asarray(starts)[:m])[0]
            h = np.asarray(hashes)[first].T
            h64 = (h[0].astype(np.uint64) << np.uint64(32)) | h[1].astype(np.uint64)
            run = np.cumsum(np.asarray(starts)[:m]) - 1  # run index of every unflagged point
            run_len = np.bincount(run[~flag], minlength=len(first))
            got = table.add(np.asarray(words)[first], h64, run_len)
            if ids is not None:
                ids[start:start + m][~flag] = got[run[~flag]]
            if flag.any():
                sel = np.nonzero(flag)[0]
                u = np.stack(np.unravel_index(start + sel, res), axis=-1) / denom
                w64, valid = _classify_points(net, None if is_staged(net) else params, domain.points(u), domain.axes)
                n_rechecked += len(sel)
                n_boundary += int(np.sum(~valid))
                got = table.add(w64[valid], None, np.ones(int(valid.sum()), np.int64))
                if ids is not None:
                    ids[start + sel[valid]] = got
            bar.update(1)
        bar.close()

    patterns = np.array(table.rows, np.uint32).reshape(-1, nw)
    return GridCount(regions=len(table.rows), patterns=patterns, point_counts=np.asarray(table.counts, np.int64),
                     ids=None if ids is None else ids.reshape(res), resolution=res, n_points=total,
                     n_boundary=n_boundary, n_rechecked=n_rechecked, seconds=time.perf_counter() - t0,
                     domain=domain)

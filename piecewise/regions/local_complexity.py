"""Local complexity around data points: exact on 2-D slices, and the sampled cross-polytope estimate.

For a point x (any input dimension) and a radius r:

* **exact** (:func:`exact_local_complexity`): in a plane through x spanned by two orthonormal directions
  (random, or given), the neighbourhood is a ``"disc"``, ``"square"`` (side 2r) or ``"diamond"`` (the 2-D
  cross-polytope, vertices x +- r v_i) of radius r. The exact engine enumerates the activation regions of
  the square [-r, r]^2 around x in the plane; a region *meets* the neighbourhood when its interior meets the
  neighbourhood's interior. Two numbers: ``regions`` (regions meeting it) and ``units`` (units whose
  boundary crosses it, i.e. whose state differs between two of those regions -- the exact counterpart of
  the estimate).
* **sampled** (:func:`sampled_local_complexity`; Humayun, Balestriero & Baraniuk 2024, "Deep networks always
  grok"): the cross-polytope of radius r in a random ``dim``-dimensional subspace through x (``2 dim``
  vertices x +- r v_i); the vertices go through the network and a unit counts when its state (sign of the
  pre-activation; for max units, the winning piece) is not the same at all vertices. It ignores how earlier
  layers bend the boundaries inside the polytope, so it can miss boundaries (or, through the bending, see
  one that does not cut the polytope's convex hull in the slice); with ``dim=2`` and the same directions it
  is directly comparable with the exact ``units`` on a diamond.

:func:`local_complexity` gives both side by side for many points and planes, :func:`local_complexity_over_training`
the curves over training checkpoints. Networks: an :class:`~piecewise.nets.MLP` with params, or a
:class:`~piecewise.graph.Graph` / :class:`~piecewise.staged.StagedNet` with ``params=None``. Everything
runs in float64.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP
from ..patterns import as_staged, unpack_states
from ..staged import StagedNet, from_mlp
from .domain import Domain

SHAPES = ("disc", "square", "diamond")


def _staged(net, params) -> StagedNet:
    net = as_staged(net)
    if isinstance(net, MLP):
        if params is None:
            raise PiecewiseError("an MLP needs its params")
        return from_mlp(net, params)
    if not isinstance(net, StagedNet):
        raise PiecewiseError(f"expected an MLP, a Graph or a StagedNet, got {type(net).__name__}")
    return net


def _orthonormal(D, n_in) -> np.ndarray:
    D = np.asarray(D, np.float64)
    if D.ndim != 2 or D.shape[1] != n_in or D.shape[0] < 1:
        raise PiecewiseError(f"directions must be (d, {n_in}), got shape {D.shape}")
    if not np.all(np.isfinite(D)):
        raise PiecewiseError("directions contain NaN or inf")
    Q, R = np.linalg.qr(D.T)
    if np.any(np.abs(np.diag(R)) <= 1e-12 * max(1.0, np.abs(D).max())):
        raise PiecewiseError("directions are linearly dependent")
    return Q.T


def random_directions(n_in: int, d: int, *, seed=0) -> np.ndarray:
    """``d`` random orthonormal directions in R^n_in, (d, n_in) float64 (a uniformly random subspace)."""
    if not 1 <= d <= n_in:
        raise PiecewiseError(f"need 1 <= d <= n_in = {n_in}, got d = {d}")
    return _orthonormal(np.random.default_rng(seed).normal(size=(d, n_in)), n_in)


def _check(points, radius, n_in):
    X = np.atleast_2d(np.asarray(points, np.float64))
    if X.ndim != 2 or X.shape[1] != n_in:
        raise PiecewiseError(f"points must be (N, {n_in}), got shape {np.shape(points)}")
    if not np.all(np.isfinite(X)):
        raise PiecewiseError("points contain NaN or inf")
    if not (np.isfinite(radius) and radius > 0):
        raise PiecewiseError(f"radius must be positive, got {radius}")
    return X


def _units_varying(S: StagedNet, X: np.ndarray) -> int:
    """Units whose state is not the same at all rows of X."""
    with jax.enable_x64(True):
        states = S.states(X)
    return int(sum(np.sum(np.any(s != s[:1], axis=0)) for s in states))


def sampled_local_complexity(net, params, points, radius: float, *, dim: int = 2, directions=None,
                             seed=0) -> np.ndarray:
    """The cross-polytope estimate at each point: int64 (N,). ``directions`` (dim, n_in) fixes the subspace
    (orthonormalised; the same for every point); otherwise each point gets its own random one."""
    S = _staged(net, params)
    X = _check(points, radius, S.n_in)
    rng = np.random.default_rng(seed)
    fixed = None if directions is None else _orthonormal(directions, S.n_in)
    out = np.zeros(len(X), np.int64)
    for i, x in enumerate(X):
        V = fixed if fixed is not None else random_directions(S.n_in, dim, seed=rng.integers(2**63))
        verts = np.concatenate([x + radius * V, x - radius * V])
        out[i] = _units_varying(S, verts)
    return out


def _meets(shape: str, V: np.ndarray, r: float, tol: float) -> bool:
    """Does the convex polygon V (k, 2) (local coordinates, centre at 0) meet the open neighbourhood?"""
    if shape == "square":
        return True  # the enumerated domain is the square itself
    k = len(V)
    W = np.roll(V, -1, axis=0)
    E = W - V
    cross = E[:, 0] * (-V[:, 1]) - E[:, 1] * (-V[:, 0])  # orientation of the centre w.r.t. every edge
    inside = np.all(cross >= -tol) or np.all(cross <= tol)
    if shape == "disc":
        if inside:
            return True
        L2 = np.einsum("kd,kd->k", E, E)
        t = np.clip(np.einsum("kd,kd->k", -V, E) / np.where(L2 > 0, L2, 1.0), 0.0, 1.0)
        dist = np.linalg.norm(V + t[:, None] * E, axis=1).min()
        return dist < r - tol
    # diamond |a| + |b| < r: separating axes of two convex polygons
    D = np.array([[r, 0.0], [0.0, r], [-r, 0.0], [0.0, -r]])
    axes = np.concatenate([np.stack([-E[:, 1], E[:, 0]], 1), np.array([[1.0, 1.0], [1.0, -1.0]])])
    for a in axes[np.linalg.norm(axes, axis=1) > 0]:
        p, q = V @ a, D @ a
        if p.max() <= q.min() + tol * np.linalg.norm(a) or q.max() <= p.min() + tol * np.linalg.norm(a):
            return False
    return k > 0


def exact_local_complexity(net, params, point, radius: float, directions, *, shape: str = "disc",
                           max_cells: int = 2_000_000) -> tuple[int, int]:
    """Exact (regions, units) meeting the neighbourhood of ``point`` in the plane of ``directions`` (2, n_in).
    See the module docstring."""
    from .exact import enumerate_cells

    if shape not in SHAPES:
        raise PiecewiseError(f"unknown neighbourhood shape {shape!r}; known: {', '.join(SHAPES)}")
    S = _staged(net, params)
    x = _check(point, radius, S.n_in)[0]
    V2 = _orthonormal(directions, S.n_in)
    if V2.shape[0] != 2:
        raise PiecewiseError(f"an exact slice needs 2 directions, got {V2.shape[0]}")
    dom = Domain("plane", x - radius * V2.sum(0), 2 * radius * V2)
    cx = enumerate_cells(S, None, dom, max_cells=max_cells)
    keep = []
    for c in range(cx.regions):
        Vc = cx.vertices_c[c, : cx.n_vertices[c]] * (2 * radius)  # centred coordinates: the point is at 0
        if _meets(shape, Vc, radius, 1e-12 * radius):
            keep.append(c)
    if not keep:
        return 0, 0
    states = unpack_states(S, cx.patterns[keep])
    units = int(sum(np.sum(np.any(s != s[:1], axis=0)) for s in states))
    return len(keep), units


@dataclass
class LocalComplexity:
    """Result of :func:`local_complexity`. Per point (N) and plane (P): ``exact_regions``, ``exact_units``
    and ``sampled`` (the estimate in the same plane, dim 2) int64 (N, P); ``sampled_nd`` (N,) the estimate
    in a random ``sampled_dim``-dimensional subspace (None if not asked)."""

    radius: float
    shape: str
    exact_regions: np.ndarray
    exact_units: np.ndarray
    sampled: np.ndarray
    sampled_nd: np.ndarray | None
    sampled_dim: int | None
    seconds: float
    points: np.ndarray = field(repr=False)

    def summary(self) -> dict:
        def stats(a):
            return None if a is None else {"mean": float(np.mean(a)), "std": float(np.std(a)),
                                           "min": int(np.min(a)), "max": int(np.max(a))}

        miss = self.exact_units - self.sampled
        return {"radius": self.radius, "shape": self.shape, "points": int(self.exact_regions.shape[0]),
                "planes": int(self.exact_regions.shape[1]), "exact_regions": stats(self.exact_regions),
                "exact_units": stats(self.exact_units), "sampled_same_plane": stats(self.sampled),
                "sampled_nd": stats(self.sampled_nd), "sampled_dim": self.sampled_dim,
                "estimate_minus_exact_units": stats(-miss),
                "fraction_estimate_exact": float(np.mean(miss == 0)), "seconds": round(self.seconds, 3)}

    def to_json(self) -> dict:
        out = self.summary()
        out.update(exact_regions_per_point=self.exact_regions.mean(1).tolist(),
                   exact_units_per_point=self.exact_units.mean(1).tolist(),
                   sampled_per_point=self.sampled.mean(1).tolist(),
                   sampled_nd_per_point=None if self.sampled_nd is None else self.sampled_nd.tolist())
        return out


def local_complexity(net, params, points, radius: float, *, planes: int = 1, directions=None,
                     shape: str = "diamond", sampled_dim: int | None = None, seed=0) -> LocalComplexity:
    """Exact and sampled local complexity at every point, side by side.

    Args:
      net, params: MLP and params, or Graph / StagedNet and None.
      points: (N, n_in) data points (flattened inputs).
      radius: neighbourhood radius r (input units).
      planes: random planes per point (ignored when ``directions`` is given).
      directions: (2, n_in) fixed plane directions for every point, or None (random per point and plane).
      shape: ``"diamond"`` (default: the 2-D cross-polytope, so ``exact_units`` and ``sampled`` measure the
        same thing on the same set), ``"disc"`` or ``"square"``.
      sampled_dim: also the estimate in a random subspace of this dimension (the literature uses d >> 2).
    Returns:
      :class:`LocalComplexity`.
    """
    t0 = time.perf_counter()
    if shape not in SHAPES:
        raise PiecewiseError(f"unknown neighbourhood shape {shape!r}; known: {', '.join(SHAPES)}")
    if _is_graph(net, params):
        return _local_complexity_graph(net, points, radius, planes, directions, shape, sampled_dim, seed, t0)
    S = _staged(net, params)
    X = _check(points, radius, S.n_in)
    rng = np.random.default_rng(seed)
    P = 1 if directions is not None else int(planes)
    if P < 1:
        raise PiecewiseError(f"planes must be >= 1, got {planes}")
    R = np.zeros((len(X), P), np.int64)
    U, E = np.zeros_like(R), np.zeros_like(R)
    for i, x in enumerate(X):
        for p in range(P):
            D = _orthonormal(directions, S.n_in) if directions is not None else \
                random_directions(S.n_in, 2, seed=rng.integers(2**63))
            R[i, p], U[i, p] = exact_local_complexity(S, None, x, radius, D, shape=shape)
            E[i, p] = sampled_local_complexity(S, None, x[None], radius, directions=D)[0]
    nd = None
    if sampled_dim is not None:
        nd = sampled_local_complexity(S, None, X, radius, dim=int(sampled_dim), seed=rng.integers(2**63))
    return LocalComplexity(float(radius), shape, R, U, E, nd, sampled_dim, time.perf_counter() - t0, X)


def _is_graph(net, params) -> bool:
    return params is None and hasattr(net, "to_staged") and not isinstance(net, StagedNet)


STATE_BATCH = 32  # points per forward pass of the sampled estimate (a graph's forward keeps every node's value)


def _graph_states(graph, prog, X, batch: int = STATE_BATCH) -> list:
    """Pattern states of every stage of a graph (the operator engine's stages) at points X (n, n_in), computed
    ``batch`` points at a time (the graph's NumPy forward keeps every node's value and a convolution's patches:
    1,024 points of a width-16 ResNet-18 at once peaked at 3.4 GB), each state in one byte where it fits (the
    piece index: 139k units of 1,024 points in 143 MB, not 570); 32 at a time, those 1,024 peak at 0.75 GB."""
    if len(X) > batch:
        parts = [_graph_states(graph, prog, X[i:i + batch], batch) for i in range(0, len(X), batch)]
        return [np.concatenate([p[s] for p in parts]) for s in range(len(prog.stages))]
    pre = dict(zip(graph.nonlinear_nodes, graph.preactivations(X)))
    out = []
    for st in prog.stages:
        z = pre[st.node]
        if st.groups is not None:
            a = np.argmax(z[..., st.groups], -1)
        else:
            if st.in_scale is not None:
                z = z * st.in_scale[0] + st.in_scale[1]
            a = np.asarray(st.act.states(z, np))
        out.append(a.astype(np.int8) if a.size == 0 or a.max() < 128 else a)
    return out


def _local_complexity_graph(graph, points, radius, planes, directions, shape, sampled_dim, seed, t0):
    """:func:`local_complexity` of a Graph: the exact slices of all points and planes in one batched search of
    the operator engine (:func:`.graph_engine.enumerate_graph_many`; nothing composed into dense matrices)."""
    from ._resolve import unpack_row
    from .graph_engine import Program, enumerate_graph_many

    prog = Program(graph)
    n_in = graph.n_in
    X = _check(points, radius, n_in)
    rng = np.random.default_rng(seed)
    P = 1 if directions is not None else int(planes)
    if P < 1:
        raise PiecewiseError(f"planes must be >= 1, got {planes}")
    dirs, doms = [], []
    for i, x in enumerate(X):
        for p in range(P):
            D = _orthonormal(directions, n_in) if directions is not None else \
                random_directions(n_in, 2, seed=rng.integers(2**63))
            dirs.append(D)
            doms.append(Domain("plane", x - radius * D.sum(0), 2 * radius * D))
    cells = enumerate_graph_many(graph, doms)
    widths = [st.width for st in prog.stages]
    R = np.zeros((len(X), P), np.int64)
    U, E = np.zeros_like(R), np.zeros_like(R)
    verts = []
    for k, (V, n, words) in enumerate(cells):
        i, p = divmod(k, P)
        keep = [c for c in range(len(n)) if _meets(shape, V[c, : n[c]] * (2 * radius), radius, 1e-12 * radius)]
        if keep:
            states = unpack_row(words[keep], prog.bits, widths, len(widths))
            R[i, p] = len(keep)
            U[i, p] = int(sum(np.sum(np.any(s != s[:1], axis=0)) for s in states))
        D = dirs[k]
        verts.append(np.concatenate([X[i] + radius * D, X[i] - radius * D]))
    # the sampled estimate in the same planes: the diamond's 4 vertices through the graph, all at once
    Vx = np.concatenate(verts)
    st = _graph_states(graph, prog, Vx)
    for k in range(len(cells)):
        i, p = divmod(k, P)
        E[i, p] = int(sum(np.sum(np.any(s[4 * k:4 * k + 4] != s[4 * k], axis=0)) for s in st))
    nd = None
    if sampled_dim is not None:
        dim = int(sampled_dim)
        vs = []
        rng2 = np.random.default_rng(rng.integers(2**63))  # as sampled_local_complexity draws them
        for x in X:
            V = random_directions(n_in, dim, seed=rng2.integers(2**63))
            vs.append(np.concatenate([x + radius * V, x - radius * V]))
        st = _graph_states(graph, prog, np.concatenate(vs))
        m = 2 * dim
        nd = np.array([int(sum(np.sum(np.any(s[m * i:m * i + m] != s[m * i], axis=0)) for s in st))
                       for i in range(len(X))], np.int64)
    return LocalComplexity(float(radius), shape, R, U, E, nd, sampled_dim, time.perf_counter() - t0, X)


def local_complexity_over_training(checkpoints, points, radius: float, *, steps=None, **kwargs) -> dict:
    """:func:`local_complexity` at every checkpoint: ``checkpoints`` a list of networks (Graph / StagedNet, or
    (MLP, params) pairs). The same planes are used at every checkpoint (same ``seed``). Returns a JSON-ready
    dict with ``steps`` and per-checkpoint means: ``exact_regions``, ``exact_units``, ``sampled``,
    ``sampled_nd`` and the full ``summaries``."""
    steps = list(range(len(checkpoints))) if steps is None else list(steps)
    if len(steps) != len(checkpoints):
        raise PiecewiseError(f"{len(steps)} steps for {len(checkpoints)} checkpoints")
    out = {"steps": steps, "exact_regions": [], "exact_units": [], "sampled": [], "sampled_nd": [], "summaries": []}
    for ck in checkpoints:
        net, params = ck if isinstance(ck, tuple) else (ck, None)
        lc = local_complexity(net, params, points, radius, **kwargs)
        s = lc.summary()
        out["summaries"].append(s)
        out["exact_regions"].append(s["exact_regions"]["mean"])
        out["exact_units"].append(s["exact_units"]["mean"])
        out["sampled"].append(s["sampled_same_plane"]["mean"])
        out["sampled_nd"].append(None if s["sampled_nd"] is None else s["sampled_nd"]["mean"])
    return out

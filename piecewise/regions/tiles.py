"""Exact counts of a domain cut into tiles, each tile enumerated as a separate task (in-process or on Dask).

**Tiles.** The domain's parameter cube [0, 1]^d is cut into a regular grid of K tiles: a segment into K
pieces; a 2-D box or plane into sqrt(K) x sqrt(K) tiles (K must be a square); a box of 3 or more
dimensions along its longest axes (K is factored into primes, largest first, and each factor cuts the
axis whose current pieces are longest in input coordinates). Each tile is itself a
:class:`~piecewise.regions.domain.Domain` and is enumerated with the public
:func:`~piecewise.regions.enumerate_cells`.

**Activation regions.** They are convex, so one activation pattern is one region: the exact count of the
whole domain is the number of distinct patterns in the union of the tiles' pattern sets. A region that
meets a tile only along its border (no area) is not a cell of that tile, exactly as for the whole domain.

**Linear regions** (connected unions of facet-sharing cells with one affine map). Inside a tile the engine
labels them (:meth:`linear_regions`). Across tiles they are merged with a union-find over a graph whose
nodes are the tiles' linear-region labels, and whose edges are

* *same pattern*: pieces of one activation region cut by tile borders are one region, and
* *border facets*: a cell of one tile and a cell of the neighbouring tile that share a piece of positive
  (d-1)-measure of the common border (an interval in 2-D, an end point in 1-D, a polygon overlap tested
  by a linear program in n-D) and whose gradients agree (the rule used within a complex: the network is
  continuous, so equal gradients across a shared facet mean one affine map). A cell's facets on the tile's
  border are the ones labelled with the tile's box facets (no tolerance); float64 proves gradients different
  beyond their error bounds, the rest are compared exactly from the two cells' patterns
  (:mod:`.rational`), and 2-D border intervals whose overlap is within rounding of zero are compared with
  their exact end points. Box tiles share their borders exactly (each tile is the exact box between float64
  corners that its neighbours use too); tiles of a plane or segment are float64 sub-slices.

Two activation regions are adjacent in the whole domain iff some tile sees them adjacent or they meet
across a tile border, so the components are exactly the untiled linear regions.

**Memory.** A task returns only its tile's packed patterns, per-cell linear-region labels and the cells on
its border (their border pieces and affine maps) -- never a whole complex.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import PiecewiseError
from ..numerics import U, gradients_differ
from .cells import prepare_exact
from .domain import Domain

BORDER_TOL = 1e-9  # a vertex lies on a tile face when its tile coordinate is within this of 0 or 1


# -- the tiling ----------------------------------------------------------------------------------------
def _prime_factors(k: int) -> list[int]:
    out, p = [], 2
    while p * p <= k:
        while k % p == 0:
            out.append(p)
            k //= p
        p += 1
    if k > 1:
        out.append(k)
    return sorted(out, reverse=True)


def tile_grid(domain: Domain, tiles: int) -> tuple[int, ...]:
    """Tiles per domain axis (their product is ``tiles``). See the module docstring for the rule."""
    if isinstance(tiles, bool) or not isinstance(tiles, (int, np.integer)) or tiles < 1:
        raise PiecewiseError(f"tiles must be a positive integer, got {tiles!r}")
    tiles, d = int(tiles), domain.dim
    if d == 1:
        return (tiles,)
    if d == 2:
        r = int(round(tiles ** 0.5))
        if r * r != tiles:
            raise PiecewiseError(f"tiles must be a square number on a 2-D domain (4, 9, 16, ...), got {tiles}")
        return (r, r)
    counts = [1] * d
    length = np.linalg.norm(domain.axes, axis=1)
    for p in _prime_factors(tiles):
        a = int(np.argmax(length / np.asarray(counts)))  # first axis among the longest pieces
        counts[a] *= p
    return tuple(counts)


def tile_domains(domain: Domain, tiles: int) -> list[tuple[tuple[int, ...], Domain]]:
    """The tiles as ``(grid index, Domain)`` pairs, in C order of the grid index. A tile with index ``i``
    covers ``u_a`` in ``[i_a / k_a, (i_a + 1) / k_a]`` of the parent's parameter cube."""
    counts = tile_grid(domain, tiles)
    span = 1.0 / np.asarray(counts, np.float64)
    out = []
    for idx in np.ndindex(*counts):
        lo = np.asarray(idx, np.float64) * span
        origin = domain.origin + lo @ domain.axes
        if domain.kind == "box":  # keep a box a box (diagonal axes, exact corners)
            full_lo, full_hi = domain.origin, domain.origin + np.diag(domain.axes)
            a_lo = np.asarray(idx, np.float64) / counts
            a_hi = (np.asarray(idx, np.float64) + 1) / counts
            t_lo = full_lo + a_lo * (full_hi - full_lo)
            t_hi = np.where(np.asarray(idx) + 1 == np.asarray(counts), full_hi, full_lo + a_hi * (full_hi - full_lo))
            out.append((idx, Domain("box", t_lo, np.diag(t_hi - t_lo), exact=(t_lo, t_hi))))
        else:
            out.append((idx, Domain(domain.kind, origin, span[:, None] * domain.axes)))
    return out


# -- one tile (runs on a worker) -----------------------------------------------------------------------
def _tile_task(item, shared):
    """Enumerate one tile; return its packed patterns and, for linear regions, per-cell labels and the
    cells on the tile's faces. ``item = (grid index, tile domain, linear, max_cells, threads)`` (threads:
    the engine's; 1 on Dask, where a task has one core; None: its default), ``shared = (net, params)``."""
    idx, tdom, linear, max_cells, threads = item
    net, params = shared
    t0 = time.perf_counter()
    from ..distributed import reuse_freed_memory

    with reuse_freed_memory():
        return _tile(idx, tdom, linear, max_cells, threads, net, params, t0)


def _tile(idx, tdom, linear, max_cells, threads, net, params, t0):
    from . import enumerate_cells

    cx = enumerate_cells(net, params, tdom, progress=False, max_cells=max_cells, threads=threads)
    out = {"index": tuple(idx), "patterns": np.ascontiguousarray(cx.patterns, np.uint32),
           "measure": float(cx.to_json()["measure_total"]), "seconds": time.perf_counter() - t0}
    if linear:
        n_lab, labels = cx.linear_regions()
        out["n_labels"] = int(n_lab)
        out["labels"] = np.asarray(labels, np.int32)
        out["faces"], out["jacobian_err"] = _faces(cx, tdom)
        out["axes"] = np.asarray(tdom.axes, np.float64)
    return out


def _faces(cx, tdom: Domain) -> dict:
    """Cells with a facet on each face ``(axis, side)`` of the tile: their indices, the facet in the face's
    coordinates (tile u = c + 1/2 of the other axes: an interval (lo, hi) with an error margin and, for box
    tiles, the exact end points in input coordinates, in 2-D; vertices in n-D; nothing in 1-D) and the cell's
    gradient in the tile's coordinates (J (d, n_out)) with the complex's error bound. A facet lies on a face
    iff it carries that box facet's label (:class:`._engine.Events`: -1 - a for c_a = -1/2, -1 - d - a for
    c_a = 1/2)."""
    d = tdom.dim
    J = np.asarray(cx.jacobian_u, np.float64)
    acc = {(a, s): ([], []) for a in range(d) for s in (0, 1)}
    V, n, D = cx.vertices_c, cx.n_vertices, cx.vertex_err
    if d == 1:
        L = cx.facets[0]
        for s, lab in ((0, -1), (1, -2)):
            cells = np.nonzero((L == lab).any(1))[0]
            acc[(0, s)] = (list(cells), [None] * len(cells))
    elif d == 2:
        from .polygons import ring_next

        L = cx.facets[0]
        K = V.shape[1]
        nxt = ring_next(n, K)
        point = cx._exact_points() if tdom.kind == "box" else None
        if point is not None:
            from .rational import domain_frame

            cen, ax = domain_frame(tdom)
            cen = [_frac(cen, i) for i in range(2)]
            axd = [_frac(ax, (i, i)) for i in range(2)]
        for a in range(2):
            b = 1 - a
            for s, lab in ((0, -1 - a), (1, -1 - d - a)):
                ci, ki = np.nonzero((L == lab) & (np.arange(K)[None, :] < n[:, None]))
                for c, k in zip(ci.tolist(), ki.tolist()):
                    k2 = int(nxt[c, k])
                    t0, t1 = V[c, k, b] + 0.5, V[c, k2, b] + 0.5
                    err = 2 * max(D[c, k], D[c, k2]) + 4 * U
                    exact = None
                    if point is not None:  # the end points in input coordinates, exactly
                        nk = int(n[c])
                        ends = []
                        for kk in (k, k2):
                            P = point(c, [int(L[c, (kk - 1) % nk]), int(L[c, kk])])
                            ends.append(cen[b] + P[b] * axd[b])
                        exact = (min(ends), max(ends))
                    acc[(a, s)][0].append(c)
                    acc[(a, s)][1].append((min(t0, t1), max(t0, t1), err, exact))
    else:
        from .polytopes import _facet_mask

        inc, flab = cx.facets
        for a in range(d):
            for s, slot in ((0, a), (1, d + a)):  # box facet slots are fixed (exact_nd._cube)
                ci = np.nonzero(flab[:, slot] == (-1 - a if s == 0 else -1 - d - a))[0]
                for c in ci.tolist():
                    on = _facet_mask(n, inc, c, slot)
                    if on.sum() < d:  # tight at fewer than d vertices: not a facet
                        continue
                    P = np.delete(V[c][on] + 0.5, a, axis=1)
                    acc[(a, s)][0].append(c)
                    acc[(a, s)][1].append(P)
    faces = {}
    for key, (cells, geo) in acc.items():
        cells = np.asarray(cells, np.int64)
        faces[key] = {"cells": cells, "geometry": geo, "J": J[cells]}
    return faces, np.asarray(cx.jacobian_err, np.float64)


def _frac(D, idx):
    from fractions import Fraction

    return Fraction(int(D.N[idx])) * Fraction(2) ** D.k


# -- merging (driver) ----------------------------------------------------------------------------------
def _polys_overlap(P, Q) -> bool:
    """Whether two convex polytopes of dimension m >= 2 (vertex arrays (n, m)) overlap with positive measure:
    the largest ball inside both has a positive radius relative to their size (one LP, scipy HiGHS, retried
    with HiGHS's other methods; refused if all fail)."""
    from scipy.optimize import linprog
    from scipy.spatial import ConvexHull

    pts = np.concatenate([P, Q])
    x0 = pts.mean(0)
    sc = float(np.abs(pts - x0).max()) or 1.0
    P, Q = (P - x0) / sc, (Q - x0) / sc
    H = np.vstack([ConvexHull(P).equations, ConvexHull(Q).equations])  # rows (a, b): a.x + b <= 0 inside
    A, b = H[:, :-1], -H[:, -1]
    m = A.shape[1]
    msg = ""
    for method in ("highs", "highs-ds", "highs-ipm"):
        res = linprog(np.r_[np.zeros(m), -1.0], A_ub=np.c_[A, np.linalg.norm(A, axis=1)], b_ub=b,
                      bounds=[(None, None)] * m + [(0, 1.0)], method=method)
        if res.status == 0:
            return bool(-res.fun > BORDER_TOL)
        if res.status == 2:
            return False
        msg = res.message
    raise PiecewiseError(f"the linear program deciding whether two tiles' cells share a border facet failed ({msg})")


def _border_pairs(fa: dict, fb: dict, axis: int, d: int, same_map) -> np.ndarray:
    """Cell pairs (i in tile A, j in tile B) that share a border facet piece and the same affine map, where
    face ``fa`` is A's side 1 and ``fb`` B's side 0 of ``axis``. ``same_map(ia, jb) -> bool``: whether the
    cells' gradients are equal (float64 bounds, then exactly)."""
    ca, cb = fa["cells"], fb["cells"]
    if not len(ca) or not len(cb):
        return np.zeros((0, 2), np.int64)
    if d == 1:
        ia, jb = np.zeros(1, np.int64), np.zeros(1, np.int64)
    elif d == 2:
        ga, gb = fa["geometry"], fb["geometry"]
        A = np.array([g[:3] for g in ga], np.float64).reshape(-1, 3)
        B = np.array([g[:3] for g in gb], np.float64).reshape(-1, 3)
        ia_l, jb_l = [], []
        for s in range(0, len(ca), 1024):
            lo = np.maximum(A[s:s + 1024, None, 0], B[None, :, 0])
            hi = np.minimum(A[s:s + 1024, None, 1], B[None, :, 1])
            m = A[s:s + 1024, None, 2] + B[None, :, 2]
            i, j = np.nonzero(hi - lo > m)
            ia_l.append(i + s)
            jb_l.append(j)
            # within rounding of zero: the exact end points decide (box tiles), else the float64 overlap
            ui, uj = np.nonzero(np.abs(hi - lo) <= m)
            keep = []
            for x, y in zip(ui.tolist(), uj.tolist()):
                ea, eb = ga[x + s][3], gb[y][3]
                if ea is not None and eb is not None:
                    keep.append(max(ea[0], eb[0]) < min(ea[1], eb[1]))
                else:
                    keep.append(bool(hi[x, y] > lo[x, y]))
            keep = np.asarray(keep, bool)
            ia_l.append(ui[keep] + s)
            jb_l.append(uj[keep])
        ia, jb = np.concatenate(ia_l), np.concatenate(jb_l)
    else:
        ga, gb = fa["geometry"], fb["geometry"]
        lo_a = np.stack([g.min(0) for g in ga]); hi_a = np.stack([g.max(0) for g in ga])  # noqa: E702
        lo_b = np.stack([g.min(0) for g in gb]); hi_b = np.stack([g.max(0) for g in gb])  # noqa: E702
        ia_l, jb_l = [], []
        for i in range(len(ca)):
            cand = np.nonzero(np.all((lo_a[i] < hi_b + BORDER_TOL) & (lo_b < hi_a[i] + BORDER_TOL), 1))[0]
            for j in cand:
                if _polys_overlap(ga[i], gb[j]):
                    ia_l.append(i)
                    jb_l.append(j)
        ia, jb = np.asarray(ia_l, np.int64), np.asarray(jb_l, np.int64)
    if not len(ia):
        return np.zeros((0, 2), np.int64)
    ok = same_map(ia, jb)
    return np.stack([ca[ia[ok]], cb[jb[ok]]], 1)


def _unique_rows(words: np.ndarray) -> tuple[int, np.ndarray]:
    words = np.ascontiguousarray(words, np.uint32)
    if words.shape[0] == 0:
        return 0, np.zeros(0, np.int64)
    v = words.view(np.dtype((np.void, 4 * words.shape[1]))).ravel()
    uniq, inv = np.unique(v, return_inverse=True)
    return len(uniq), inv.ravel()


def merge_tiles(parts: list[dict], counts: tuple[int, ...], linear: bool, staged=None) -> tuple[int, int | None]:
    """(activation regions, linear regions or None) of the parent domain from the tiles' task results
    (``staged``: the network, for the exact comparison of gradients across tile borders)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    parts = sorted(parts, key=lambda p: p["index"])
    n_regions, region_of = _unique_rows(np.concatenate([p["patterns"] for p in parts]))
    if not linear:
        return n_regions, None
    d = len(counts)
    off = np.cumsum([0] + [p["n_labels"] for p in parts])
    n_lab = int(off[-1])
    node = np.concatenate([off[t] + p["labels"] for t, p in enumerate(parts)])  # per cell, all tiles
    rows = [node]
    cols = [n_lab + region_of]  # every cell joins its activation region's node
    where = {p["index"]: t for t, p in enumerate(parts)}
    for t, p in enumerate(parts):
        for a in range(d):
            nb = list(p["index"])
            nb[a] += 1
            u = where.get(tuple(nb))
            if u is None:
                continue
            q = parts[u]
            fa, fb = p["faces"][(a, 1)], q["faces"][(a, 0)]
            same = _same_map_fn(staged, p, q, fa, fb)
            pairs = _border_pairs(fa, fb, a, d, same)
            if len(pairs):
                rows.append(off[t] + p["labels"][pairs[:, 0]])
                cols.append(off[u] + q["labels"][pairs[:, 1]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    n = n_lab + n_regions
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n)).tocsr()
    n_comp, _ = connected_components(graph, directed=False)
    return n_regions, int(n_comp)


def _same_map_fn(staged, p, q, fa, fb):
    """``same(ia, jb)``: whether face cells ia of tile p and jb of tile q carry equal gradients. Gradients are
    compared in input coordinates (tile coordinates over the tiles' own axes, which may differ by rounding);
    float64 proves most pairs different, the rest are compared exactly from the cells' patterns."""
    from . import rational
    from ._resolve import unpack_row
    from .cells import _layout_of

    def x_grad(part, J):
        ax = part["axes"]  # (d, n_in); boxes: diagonal
        if ax.shape[0] == ax.shape[1] and np.all(ax == np.diag(np.diag(ax))):
            a = np.diag(ax)
            return J / a[None, :, None], 1.0 / a.min()
        return J, 1.0

    Ja, sa = x_grad(p, fa["J"])
    Jb, sb = x_grad(q, fb["J"])
    Da = p["jacobian_err"] * sa + 2 * U * np.abs(Ja).sum(1).max(0, initial=0.0)
    Db = q["jacobian_err"] * sb + 2 * U * np.abs(Jb).sum(1).max(0, initial=0.0)
    state = {}

    def exact(part, cell):
        if "net" not in state:
            ax = p["axes"]
            box = ax.shape[0] == ax.shape[1] and np.all(ax == np.diag(np.diag(ax)))
            frame_axes = np.eye(ax.shape[1]) if box else ax
            n_in = ax.shape[1]
            fr = (rational.Dyadic.of(np.zeros(n_in)), rational.Dyadic.of(frame_axes))
            state["net"] = rational.ExactNet(staged, frame=fr)
            state["layout"] = _layout_of(staged)
        bits, widths = state["layout"]
        st = unpack_row(part["patterns"][cell], bits, widths, len(widths))
        g = state["net"].output(st)
        return g[: g.N.shape[0] - 1]

    def same(ia, jb):
        ok = ~gradients_differ(Ja[ia], Jb[jb], Da, Db)
        if staged is None:
            return ok
        for t in np.nonzero(ok)[0].tolist():
            ga, gb = exact(p, int(fa["cells"][ia[t]])), exact(q, int(fb["cells"][jb[t]]))
            k = min(ga.k, gb.k)
            ok[t] = bool(np.all(ga.shifted(k) == gb.shifted(k)))
        return ok

    return same


def _work_order(staged, tiles: list) -> list[int]:
    """Tile indices, most work first (for Dask: the longest tasks start first, so no worker is left with a
    big tile at the end). A tile's work is estimated by how often the units' signs change between
    neighbouring points of a small grid inside it (about 256 points per tile): a measure of the length of
    the cell boundaries it holds, which, unlike a count of distinct patterns on so few points, does not
    saturate on the busiest tiles. One float64 NumPy forward pass (no JAX compilation)."""
    d = tiles[0][1].dim
    s = max(2, int(round(256 ** (1.0 / d))))
    g = (np.stack(np.meshgrid(*[(np.arange(s) + 0.5) / s] * d, indexing="ij"), -1)).reshape(-1, d)
    h = np.concatenate([t.points(g) for _, t in tiles])
    bits = np.concatenate([(z > 0).reshape(len(z), -1) for z in staged.forward(h)[1]], 1)
    bits = bits.reshape(len(tiles), *([s] * d), -1)
    work = np.zeros(len(tiles))
    for a in range(1, d + 1):
        work += np.count_nonzero(np.diff(bits, axis=a), axis=tuple(range(1, d + 2)))
    return sorted(range(len(tiles)), key=lambda i: -work[i])


# -- the public entry point ----------------------------------------------------------------------------
def tiled_count(net, params, domain: Domain, tiles: int, *, linear: bool = False, workers: int | None = None,
                scheduler=None, progress: bool | None = None, max_cells: int = 2_000_000,
                threads: int | None = None) -> dict:
    """Exact region counts of ``net`` on ``domain`` cut into ``tiles`` tiles, one task per tile.

    Args:
      net, params: any piecewise-linear MLP and its parameters, or a StagedNet (a graph's stages) and None.
      domain: a segment, 2-D box / plane (``tiles`` a square number) or n-D box.
      tiles: the number of tiles K.
      linear: also count linear regions (merged across tile borders).
      workers: run the tiles on a Dask LocalCluster of this many worker processes.
      scheduler: ... or on an existing Dask cluster (``"tcp://HOST:PORT"`` or a ``Client``).
      progress: tqdm bar over tiles (None: on when stderr is a terminal).
      max_cells: per-tile cap passed to :func:`~piecewise.regions.enumerate_cells`.
      threads: the engine's threads per tile in-process (default: the process's cores); on Dask one per task.
    Returns:
      the JSON of an untiled exact count -- ``regions``, ``method`` ("exact"), ``seconds`` (wall time),
      ``domain``, ``measure_total``, and ``linear_regions`` when ``linear`` -- plus ``tiles`` (K) and
      ``tile_grid`` (tiles per domain axis).
    Raises:
      PiecewiseError: bad input; :class:`~piecewise.distributed.TasksFailed` (a PiecewiseError) naming the
      tile whose task failed.
    """
    from ..distributed import check_mode, run_tasks

    t0 = time.perf_counter()
    staged, P = prepare_exact(net, params, domain)
    if P is None:
        net = staged
    counts = tile_grid(domain, tiles)
    check_mode(workers, scheduler)
    if isinstance(max_cells, bool) or not isinstance(max_cells, (int, np.integer)) or max_cells < 1:
        raise PiecewiseError(f"max_cells must be a positive integer, got {max_cells!r}")
    parts = tile_domains(domain, tiles)
    if (workers is not None or scheduler is not None) and len(parts) > 2:
        parts = [parts[i] for i in _work_order(staged, parts)]
    on_dask = workers is not None or scheduler is not None
    items = [(idx, tdom, bool(linear), int(max_cells), 1 if on_dask else threads) for idx, tdom in parts]
    parts = run_tasks(_tile_task, items, shared=(net, P), workers=workers, scheduler=scheduler,
                      label=lambda it: f"tile {list(it[0])} of grid {list(counts)}", progress=progress,
                      desc="tiles", unit="tile", fail_fast=True)
    regions, lin = merge_tiles(parts, counts, linear, staged)
    out = {"regions": int(regions), "method": "exact", "seconds": round(time.perf_counter() - t0, 4),
           "domain": domain.describe(), "measure_total": float(sum(p["measure"] for p in parts))}
    if linear:
        out["linear_regions"] = lin
    out["tiles"] = int(np.prod(counts))
    out["tile_grid"] = list(counts)
    return out


def add_tiles_arguments(parser) -> None:
    """Add ``--tiles K [--workers N | --scheduler ADDRESS]`` to an argparse parser (the ``count`` command);
    pass them on as ``tiled_count(..., args.tiles, workers=args.workers, scheduler=args.scheduler)``."""
    parser.add_argument("--tiles", type=int, default=None, metavar="K",
                        help="exact count in K tiles, one task each (a square number in 2-D)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--workers", type=int, default=None, metavar="N",
                      help="run the tiles on a Dask LocalCluster with N worker processes")
    mode.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="run the tiles on an existing Dask cluster, e.g. tcp://127.0.0.1:8786")

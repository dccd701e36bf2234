"""The cell complex returned by exact enumeration (one type for every dimension), and linear regions.

A :class:`CellComplex` holds, for every activation region (cell) of the domain:

* ``vertices_c`` in the domain's centred coordinates ``c = u - 1/2`` (padded (C, K, d), ``n_vertices`` (C,)
  valid; counter-clockwise in 2-D, in no particular order otherwise) with ``vertex_err`` (C, K), a bound on
  each vertex's rounding error (max-norm); ``vertices`` gives them in ``u`` in [0, 1]^d and
  :meth:`CellComplex.cell_vertices` in input coordinates;
* ``patterns`` (packed uint32 words, :mod:`piecewise.patterns`);
* ``measure``: length / area / volume in input coordinates (for a plane slice, area within the plane),
  computed on first use;
* the network's affine map on the cell, ``y = u @ jacobian_u + offset`` (``jacobian_u`` (C, d, n_out); also
  ``y = c @ jacobian_u + offset_c``), with ``jacobian_err`` (n_out,), a bound on the rounding error of every
  cell's gradient (``|.|_1`` over the d coordinates);
* ``adjacency``: the pairs of cells sharing a facet (an end point in 1-D, an edge of positive length in
  2-D, a common face of dimension d - 1 in general), computed on first use.

Linear regions (:meth:`CellComplex.linear_regions`): the network is continuous, so two cells that share a
facet carry the same affine map iff their gradients agree. Float64 proves gradients different when they
differ by more than their error bounds (:func:`piecewise.numerics.gradients_differ`); every other pair is
compared exactly (:mod:`.rational`). Linear regions are the connected components. Cells that touch only in
a lower-dimensional face are not merged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP, check_params
from ..numerics import gradients_differ
from .domain import Domain, check_domain


def prepare_exact(net, params, domain, compose: bool = True):
    """Validate an exact enumeration's inputs and return ``(staged, P)``: the network as a
    :class:`~piecewise.staged.StagedNet` and, for an MLP, its params as float64 NumPy (W, b) pairs (None for
    a StagedNet given as ``net`` with ``params=None``). A :class:`~piecewise.graph.Graph` is composed into
    stages unless ``compose`` is False (then it is checked and returned as it is: the operator engine)."""
    from ..staged import StagedNet, from_mlp

    if params is None and hasattr(net, "to_staged") and not isinstance(net, StagedNet):  # a Graph (ONNX, ...)
        if not compose:
            check_domain(domain, net.n_in)
            for nd in net.nodes:
                for k, v in nd.attrs.items():
                    if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                        raise PiecewiseError(f"node {nd.name} ({nd.op}): {k} contains NaN or inf")
            return net, None
        net = net.to_staged()
    if isinstance(net, StagedNet):
        if params is not None:
            raise PiecewiseError("a StagedNet carries its own weights: pass params=None")
        check_domain(domain, net.n_in)
        return net, None
    if not isinstance(net, MLP):
        raise PiecewiseError(f"expected an MLP spec or a StagedNet, got {type(net).__name__}")
    if not net.activation.piecewise_linear:
        raise PiecewiseError(f"activation {net.activation} is not piecewise linear: it has no activation regions")
    check_params(net, params)
    check_domain(domain, net.n_in)
    P = tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params)
    for i, (W, b) in enumerate(P):
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise PiecewiseError(f"W{i} or b{i} contains NaN or inf")
    return from_mlp(net, P), P


def _duplicates(words) -> int:
    """Number of repeated rows of ``words`` (C, k) uint32: a 64-bit hash of every row first (one sort of C
    integers); only if two hashes agree are the rows themselves compared."""
    C = len(words)
    if C < 2:
        return 0
    mult = np.random.default_rng(0).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    h = np.empty(C, np.uint64)
    step = max(1, (1 << 24) // max(1, words.shape[1]))  # rows per block: 128 MB of uint64 products at most
    with np.errstate(over="ignore"):
        for i in range(0, C, step):
            h[i:i + step] = (words[i:i + step].astype(np.uint64) * mult).sum(1, dtype=np.uint64)
    h.sort()
    if np.all(h[1:] != h[:-1]):
        return 0
    uniq = np.unique(np.ascontiguousarray(words).view(np.dtype((np.void, words.dtype.itemsize * words.shape[1]))))
    return C - len(uniq)


@dataclass(eq=False)
class CellComplex:
    """Cells of an exact enumeration, any dimension (module docstring). ``net`` is the MLP spec (``params``
    its float64 parameters) or the StagedNet (``params`` None)."""

    net: object
    domain: Domain = field(repr=False)
    vertices_c: np.ndarray = field(repr=False)  # (C, K, d) in c = u - 1/2
    n_vertices: np.ndarray = field(repr=False)  # (C,)
    patterns: np.ndarray = field(repr=False)  # (C, n_words) uint32
    jacobian_u: np.ndarray = field(repr=False)  # (C, d, n_out)
    offset_c: np.ndarray = field(repr=False)  # (C, n_out): y = c @ J + offset_c
    seconds: float = 0.0
    params: object = field(default=None, repr=False)  # the float64 parameters the cells were built from
    jacobian_err: np.ndarray = field(default=None, repr=False)  # (n_out,): error bound of every cell's J
    offset_err: np.ndarray = field(default=None, repr=False)  # (n_out,): error bound of every cell's offset_c
    facets: tuple = field(default_factory=tuple, repr=False)  # backend data: 2-D edge labels; n-D (incidence, labels)
    events: object = field(default=None, repr=False)  # hyperplanes of the facet labels
    kind: str = "polygon"  # backend layout: "interval" (1-D), "polygon" (2-D, ordered), "polytope" (incidences)
    vertex_err: np.ndarray = field(default=None, repr=False)  # (C, K)
    staged: object = field(default=None, repr=False)  # the network as stages (for exact decisions)
    layout: tuple = field(default=None, repr=False)  # (bits per unit, stage widths) of the pattern words
    engine: dict = field(default=None, repr=False)  # how the cells were found (the operator engine's figures)
    _measure: np.ndarray = field(default=None, repr=False)
    _adjacency: np.ndarray = field(default=None, repr=False)
    _halfspaces: list = field(default=None, repr=False)
    _ragged: object = field(default=None, repr=False)  # the compiled kernel's cells until first padded
    _exact: object = field(default=None, repr=False)

    _LAZY = ("vertices_c", "facets", "vertex_err")

    def __post_init__(self):
        if self.vertices_c is None and self._ragged is not None:
            # the kernel's ragged cells: the geometry is padded on first use (__getattr__), so a count that never
            # reads it (a few cells with many vertices pad all the others) skips it
            del self.vertices_c, self.facets, self.vertex_err

    def __getattr__(self, name):
        rag = self.__dict__.get("_ragged")
        if name in CellComplex._LAZY and rag is not None:
            geo = rag.padded()
            self.vertices_c, self.facets, self.vertex_err, self._ragged = geo[0], tuple(geo[2:-1]), geo[-1], None
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def build(cls, net, domain, geo, words, J, c, DJ, events, seconds, params=None, kind="polygon", staged=None,
              layout=None):
        """``geo``: the backend's padded arrays (the last one the vertices' error bounds), or the kernel's
        ragged cells (:class:`._ckernel.Ragged`). J, c: the output's map in centred coordinates, DJ = (bound of
        its gradients' errors, of its offsets' errors)."""
        kw = dict(seconds=seconds, params=params, jacobian_err=DJ[0], offset_err=DJ[1], events=events, kind=kind,
                  staged=staged, layout=layout)
        if isinstance(geo, (list, tuple)):
            cx = cls(net, domain, geo[0], geo[1], words, J, c, facets=tuple(geo[2:-1]), vertex_err=geo[-1], **kw)
        else:
            cx = cls(net, domain, None, geo.n, words, J, c, facets=None, vertex_err=None, _ragged=geo, **kw)
        dup = _duplicates(words)
        if dup:  # convex regions have unique patterns: a duplicate would mean a bug
            raise RuntimeError(f"internal error: {dup} duplicate activation patterns among {len(words)} cells")
        return cx

    @property
    def dim(self) -> int:
        return self.jacobian_u.shape[1]

    @property
    def regions(self) -> int:
        """Number of activation regions meeting the domain."""
        return int(len(self.n_vertices))

    def __len__(self):
        return self.regions

    @property
    def vertices(self) -> np.ndarray:
        """Vertices in u = c + 1/2 (C, K, d) (rounded once from ``vertices_c``: for display and coordinates in
        the unit cube; the engine's own geometry is ``vertices_c``)."""
        return self.vertices_c + 0.5

    @property
    def offset(self) -> np.ndarray:
        """Offsets (C, n_out) of the cells' maps in u: ``y = u @ jacobian_u + offset``."""
        return self.offset_c - 0.5 * self.jacobian_u.sum(1)

    @property
    def measure(self) -> np.ndarray:
        """Length / area / volume of every cell in input coordinates (within the slice), (C,)."""
        if self._measure is None:
            if self.kind == "interval":
                m = self.vertices_c[:, 1, 0] - self.vertices_c[:, 0, 0]
            elif self.kind == "polygon":
                from .polygons import polygon_area

                m = polygon_area(self.vertices_c, self.n_vertices)
            else:
                from .polytopes import volumes

                m = volumes(self.vertices_c, self.n_vertices, self.facets[0])
            self._measure = m * self.domain.measure()
        return self._measure

    def cell_vertices(self, i: int) -> np.ndarray:
        """Vertices of cell i in input coordinates, (n_vertices, n_in) (counter-clockwise in 2-D's u)."""
        return self.domain.points_c(self.vertices_c[i, : self.n_vertices[i]])

    @property
    def vertices_u(self) -> list:
        """Vertices of every cell in u, as a list of (n_i, d) arrays."""
        V = self.vertices
        return [V[i, : self.n_vertices[i]] for i in range(self.regions)]

    def interior_points(self) -> np.ndarray:
        """A point inside every cell (vertex average), input coordinates (C, n_in)."""
        return self.domain.points_c(self.interior_c())

    def interior_c(self) -> np.ndarray:
        """The vertex average of every cell in centred coordinates (C, d)."""
        valid = np.arange(self.vertices_c.shape[1])[None, :] < self.n_vertices[:, None]
        return (self.vertices_c * valid[..., None]).sum(1) / self.n_vertices[:, None]

    def jacobian(self) -> np.ndarray:
        """The network's Jacobian on each cell with respect to the input, (C, n_out, n_in), for boxes
        (axes invertible); for slices and segments use ``jacobian_u`` (derivative along the slice)."""
        if self.domain.kind != "box":
            raise ValueError("the input Jacobian is defined for boxes; use jacobian_u along a slice")
        inv = np.linalg.inv(self.domain.axes)  # (n, n): u = (x - origin) @ inv, so du_n/dx_i = inv[i, n]
        return np.einsum("in,cno->coi", inv, self.jacobian_u)

    # -- geometry queries ------------------------------------------------------------------------------
    def halfspace(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Inequalities ``A u <= c`` of cell i in u (one per facet; A (r, d), c (r,))."""
        A, b = self._halfspace_c(i)
        return A, b + 0.5 * A.sum(1)

    def _halfspace_c(self, i: int):
        V = self.vertices_c[i, : self.n_vertices[i]]
        if self.kind == "interval":
            return np.array([[-1.0], [1.0]]), np.array([-V[0, 0], V[1, 0]])
        if self.kind == "polygon":
            W = np.roll(V, -1, axis=0)
            e = W - V
            A = np.stack([e[:, 1], -e[:, 0]], 1)  # outward normals of a counter-clockwise polygon
            return A, np.einsum("ij,ij->i", A, V)
        from .polytopes import halfspace

        return halfspace(V, self.facets[0][i, : self.n_vertices[i]], self.facets[1][i], self.events)

    @property
    def halfspaces(self) -> list:
        """``[(A, c)]`` per cell: A u <= c (see :meth:`halfspace`); computed once."""
        if self._halfspaces is None:
            self._halfspaces = [self.halfspace(i) for i in range(self.regions)]
        return self._halfspaces

    def contains(self, cells, U, tol: float = 1e-10) -> np.ndarray:
        """For (cell, point) pairs: is the u point U[t] (T, d) in cell ``cells[t]`` (within tol)?"""
        cells, U = np.asarray(cells), np.asarray(U, np.float64)
        out = np.empty(len(cells), bool)
        for t, (c, u) in enumerate(zip(cells, U)):
            A, b = self.halfspaces[int(c)]
            nrm = np.linalg.norm(A, axis=1)
            out[t] = np.all(A @ u - b <= tol * np.maximum(nrm, 1e-300))
        return out

    # -- adjacency and linear regions ----------------------------------------------------------------
    def _pairs(self, keep=None) -> np.ndarray:
        if self.kind == "interval":
            from .polygons import adjacency_1d

            pairs = adjacency_1d(self.vertices_c)
        elif self.kind == "polygon":
            from .polygons import adjacency_2d

            pairs = adjacency_2d(self.vertices_c, self.n_vertices, self.facets[0], self.events, self.vertex_err,
                                 self._exact_points())
        else:
            from .polytopes import adjacency_nd

            return adjacency_nd(self.vertices_c, self.n_vertices, self.facets[0], self.facets[1], self.events, keep)
        return pairs if keep is None else pairs[keep(pairs)]

    @property
    def adjacency(self) -> np.ndarray:
        """Pairs (i, j), i < j, of cells sharing a facet, (P, 2) int."""
        if self._adjacency is None:
            self._adjacency = self._pairs()
        return self._adjacency

    def _exactness(self):
        """The exact network and pattern unpacking of this complex (built on first use)."""
        if self._exact is None:
            from . import rational
            staged = self.staged
            if staged is None and hasattr(self.net, "to_staged"):  # a graph: composed for exact decisions
                from .program import EXACT_UNITS_LIMIT, Program

                n = Program(self.net).n_units
                if n > EXACT_UNITS_LIMIT:
                    raise PiecewiseError(
                        f"this needs exact arithmetic on the network's stages, implemented for graphs of up to "
                        f"{EXACT_UNITS_LIMIT:,} units (this one has {n:,})")
            if staged is None:
                from ..staged import as_staged

                staged = as_staged(self.net, self.params)
            self._exact = (rational.ExactNet(staged, self.domain), staged)
        return self._exact

    def cell_states(self, i: int) -> list:
        """The per-stage states (int arrays) of cell i, from its pattern words."""
        from ._resolve import unpack_row

        staged = self._exactness()[1]
        bits, widths = self.layout if self.layout is not None else _layout_of(staged)
        return unpack_row(self.patterns[i], bits, widths, len(widths))

    def _exact_points(self):
        """``point(cell, labels)``: the exact intersection of facet labels of a cell (2-D adjacency's exact
        comparisons)."""
        from . import rational

        def point(cell, labels):
            net, _ = self._exactness()
            st = self.cell_states(int(cell))
            H = []
            for lab in labels:
                if lab < 0:
                    H.append(net.box_plane(lab))
                else:
                    s, u, sub = self.events.meta_of(lab)
                    H.append(net.unit_plane(s, u, sub, st))
            return rational.intersection(H)

        return point

    def exact_gradient(self, i: int):
        """Cell i's exact gradient (d rows of the output map) as a :class:`.rational.Dyadic` (d, n_out)."""
        net, _ = self._exactness()
        return net.output(self.cell_states(i))[: self.dim]

    def _no_influence(self, a, b) -> np.ndarray:
        """Pairs of cells (a, b) proven to carry the same affine map without arithmetic: every unit whose state
        differs between them reaches the output only through zero weights or through units flat (slope 0) in
        both cells (a dead relu, a saturated hardtanh, a max-pool window that selects another input). Then the
        two forward computations agree at every unit the differences cannot reach, the output included."""
        from ._resolve import unpack_row

        staged = self._exactness()[1]
        bits, widths = self.layout if self.layout is not None else _layout_of(staged)
        n = len(widths)
        Sa = unpack_row(self.patterns[a], bits, widths, n)
        Sb = unpack_row(self.patterns[b], bits, widths, n)
        from .pieces import piece_tables

        R = {0: np.zeros((len(a), staged.n_in), bool)}  # outputs that may differ between the two cells

        def fed(weights):
            f = None
            for j, W in weights.items():
                if not R[j].any():
                    continue
                x = R[j].astype(np.float32) @ (W != 0).astype(np.float32)
                f = x > 0 if f is None else f | (x > 0)
            return f

        for s, st in enumerate(staged.stages, 1):
            diff = Sa[s - 1] != Sb[s - 1]
            f = fed(st.weights)
            if st.groups is not None:
                r = diff.copy()
                if f is not None:
                    sel = np.take_along_axis(np.broadcast_to(st.groups, (len(a),) + st.groups.shape),
                                             Sa[s - 1][..., None], 2)[..., 0]
                    r |= np.take_along_axis(f, sel, 1)
            else:
                slope, _ = piece_tables(st.activation, st.m, st.slopes)
                cols = np.arange(st.m)[None, :]
                live = (slope[Sa[s - 1], cols] != 0) | (slope[Sb[s - 1], cols] != 0)
                r = diff if f is None else diff | (f & live)
            R[s] = np.asarray(r, bool)
        f = fed(staged.out_weights)
        return np.ones(len(a), bool) if f is None else ~f.any(1)

    def same_map(self, pairs) -> np.ndarray:
        """Whether the cells of each pair (P, 2) carry the same gradient (hence, on neighbours, the same
        affine map): float64 proves most pairs different (their difference beats the error bounds); the
        others are compared exactly."""
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        a, b = pairs[:, 0], pairs[:, 1]
        D = self.jacobian_err if self.jacobian_err is not None else np.full(self.jacobian_u.shape[-1], np.inf)
        out = np.zeros(len(pairs), bool)
        maybe = np.nonzero(~gradients_differ(self.jacobian_u[a], self.jacobian_u[b], D, D))[0]
        if len(maybe):
            same = self._no_influence(a[maybe], b[maybe])
            out[maybe[same]] = True
            maybe = maybe[~same]
        memo = {}

        def grad(i):
            if i not in memo:
                memo[i] = self.exact_gradient(i)
            return memo[i]

        for t in maybe.tolist():
            ga, gb = grad(int(a[t])), grad(int(b[t]))
            k = min(ga.k, gb.k)
            out[t] = bool(np.all(ga.shifted(k) == gb.shifted(k)))
        return out

    def linear_regions(self) -> tuple[int, np.ndarray]:
        """(number of linear regions, region label per cell): connected unions of facet-sharing cells with
        one affine map."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        if self._adjacency is not None or self.kind != "polytope":
            pairs = self.adjacency
            pairs = pairs[self.same_map(pairs)]
        else:  # n-D: the facet test is costly, so it runs only on pairs whose gradients agree
            pairs = self._pairs(keep=self.same_map)
        C = self.regions
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(C, C))
        n, labels = connected_components(graph, directed=False)
        return int(n), labels

    def to_json(self, linear: bool = False) -> dict:
        out = {"regions": self.regions, "method": "exact", "seconds": round(self.seconds, 4),
               "domain": self.domain.describe(), "measure_total": float(self.measure.sum())}
        if linear:
            out["linear_regions"] = self.linear_regions()[0]
        if self.engine:
            out["engine"] = dict(self.engine)
        return out

    @property
    def points_c(self) -> np.ndarray:
        """One point inside each cell: the mean of its vertices, centred coordinates (C, d)."""
        V, n = self.vertices_c, self.n_vertices
        valid = np.arange(V.shape[1])[None, :] < n[:, None]
        return np.where(valid[..., None], V, 0.0).sum(1) / n[:, None]

    @property
    def points(self) -> np.ndarray:
        """One point inside each cell (the mean of its vertices), input coordinates (C, n_in)."""
        return self.domain.points_c(self.points_c)

    def save_cells(self, path) -> str:
        """Write the cells to ``path`` (.npz): :func:`save_cells`."""
        return save_cells(self, path)


def _layout_of(staged):
    from .pieces import state_bits as _bits

    return max([_bits(st) for st in staged.stages] or [1]), [st.width for st in staged.stages]


def save_cells(result, path) -> str:
    """Write an exact result's cells to ``path`` (a .npz, written atomically) and return the path. Arrays:
    ``points`` (C, n_in) float64, one point inside each cell in input coordinates (image inputs flattened in C
    order), the mean of its vertices; ``points_u`` (C, d) the same in the domain's parameters u in [0, 1]^d;
    ``measure`` (C,) float64 in the domain's units (length / area / volume; their sum is the JSON's
    ``measure_total``), absent where a count did not compute it; ``patterns`` (C, n_words) uint32, the
    activation pattern words; for a kept complex also ``n_vertices`` (C,) and ``vertices_u`` (C, K, d), padded
    with NaN. ``points`` is written in blocks so that image models' points need no (C, n_in) temporary
    besides the array itself."""
    import os

    from ..files import atomic_open

    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise PiecewiseError(f"--cells: the file must end in .npz, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PiecewiseError(f"--cells: folder {folder} does not exist")
    dom = result.domain
    pc = result.points_c
    pts = np.empty((len(pc), dom.n_in))
    for i in range(0, len(pc), 4096):
        pts[i:i + 4096] = dom.points_c(pc[i:i + 4096])
    arrays = {"points": pts, "points_u": pc + 0.5, "patterns": np.asarray(result.patterns)}
    if getattr(result, "measure", None) is not None:
        arrays["measure"] = np.asarray(result.measure, np.float64)
    if isinstance(result, CellComplex):
        V = result.vertices_c + 0.5
        valid = np.arange(V.shape[1])[None, :] < result.n_vertices[:, None]
        arrays["vertices_u"] = np.where(valid[..., None], V, np.nan)
        arrays["n_vertices"] = np.asarray(result.n_vertices)
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return path

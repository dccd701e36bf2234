"""Build the explorer's page: the exact cells of every view, packed into typed arrays and inlined in one HTML file.

A *view* is one cell complex drawn by the page: the cells of the sub-network of the first ``l`` hidden layers
(l = 1 .. L; the last one is the network itself) for one checkpoint (one set of params). For the sub-network
of the first l layers the output is the layer's representation ``h_l`` (an identity output layer), so its
linear regions are those of the map x -> h_l; for l = L they are those of the network's output.

Arrays travel as base64 of little-endian typed arrays (float64 for every coordinate and measure, float32 for
the affine maps shown in the hover panel), zlib-compressed where that pays (:func:`_b64`), inside one
``<script type="application/json">`` block; the page inflates them on load and decodes a view on first use. No file, font or script is fetched: a Content-Security-Policy of
``default-src 'none'`` in the page forbids every request.
"""
from __future__ import annotations

import base64
import os
import time
import zlib

import numpy as np

from ..errors import PiecewiseError

MAX_CELLS = 400_000  # per view: beyond this the page (about 200 bytes per cell) gets too big for a browser
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b64(a, dtype):
    """``a`` as a C-ordered little-endian array of ``dtype``, for the page: the base64 of its bytes (a str), or
    where zlib saves a tenth or more (patterns, edge labels, vertices), ``{"z": base64 of the zlib stream}``
    (the page inflates it with the browser's ``DecompressionStream("deflate")``)."""
    raw = np.ascontiguousarray(np.asarray(a), dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    if len(raw) >= 4096:
        z = zlib.compress(raw, 6)
        if len(z) <= 0.9 * len(raw):
            return {"z": base64.b64encode(z).decode("ascii")}
    return base64.b64encode(raw).decode("ascii")


def _is_checkpoints(params) -> bool:
    """Whether ``params`` is a list of params (checkpoints) rather than one params tuple of (W, b) pairs."""
    if not isinstance(params, (list, tuple)) or not params:
        return False
    first = params[0]
    return isinstance(first, (list, tuple)) and len(first) > 0 and isinstance(first[0], (list, tuple))


def _check_out(out) -> str:
    out = os.fspath(out)
    if not out.lower().endswith((".html", ".htm")):
        raise PiecewiseError(f"explore: the page must end in .html, got {out!r}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise PiecewiseError(f"explore: folder {folder} does not exist")
    return out


def _truncated(net, params, l: int):
    """The sub-network of the first ``l`` hidden layers of an MLP with the identity as output layer (its
    output is h_l, (width_l,)): ``(MLP, params)``, params as float64 NumPy."""
    from ..nets import mlp

    w = net.widths[l - 1]
    sub = mlp(net.n_in, net.widths[:l], w, net.activation)
    P = tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params[:l])
    return sub, P + ((np.eye(w), np.zeros(w)),)


class _Labels:
    """The page's table of edge labels (strings), shared by all views: a cell edge on a unit's boundary is
    ``layer s unit u`` (layers from 1, units from 0 as in ``W[:, u]``), on the domain's boundary
    ``x1 = lo`` (box) or ``s = 0`` (plane)."""

    def __init__(self, domain, acts, graph: bool):
        self.names, self.index = [], {}
        self.acts, self.graph = acts, graph
        d = domain.dim
        if domain.kind == "box":
            lo, hi = domain.origin, domain.origin + np.diag(domain.axes)
            side = [f"x{i + 1} = {lo[i]:g}" for i in range(d)] + [f"x{i + 1} = {hi[i]:g}" for i in range(d)]
        else:
            st = "st"
            side = [f"{st[i]} = 0" for i in range(d)] + [f"{st[i]} = 1" for i in range(d)]
        self.box = [self._add(f"domain edge {s}") for s in side]  # label -1 - j -> self.box[j]

    def _add(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
        return self.index[name]

    def _unit_name(self, s: int, u: int, sub: int) -> str:
        what = "stage" if self.graph else "layer"
        name = f"{what} {s} unit {u}"
        act = self.acts[s - 1] if s - 1 < len(self.acts) else None
        if act is not None and act.is_maxout:
            from ..regions.rational import pair_of

            a, b = pair_of(act.rank, sub)
            return f"{name} (pieces {a}, {b} tie)"
        bps = act.breakpoints if act is not None else None
        if bps and len(bps) > 1:
            return f"{name} (z = {bps[sub]:g})"
        if act is None and sub:
            return f"{name} (event {sub})"
        return name

    def of(self, cx) -> np.ndarray:
        """Global label index of every vertex's outgoing edge (edge k joins vertex k and k + 1), flat over the
        valid vertices, int32."""
        L = np.asarray(cx.facets[0])
        valid = np.arange(L.shape[1])[None, :] < cx.n_vertices[:, None]
        lab = L[valid].astype(np.int64)
        out = np.empty(len(lab), np.int32)
        box = lab < 0
        out[box] = np.asarray(self.box)[-1 - lab[box]]
        ev = lab[~box]
        if len(ev):
            uniq, inv = np.unique(ev, return_inverse=True)
            meta = cx.events.finish().meta[uniq]
            idx = np.array([self._add(self._unit_name(*map(int, m))) for m in meta], np.int32)
            out[~box] = idx[inv.reshape(-1)]
        return out


def _maps(cx, domain) -> tuple[np.ndarray, str]:
    """The output's affine map on every cell, (C, n_out, 3): gradient (2) and offset, in the box's input
    coordinates ``y = x1 g1 + x2 g2 + b`` or, for a plane, in its parameters ``y = s g1 + t g2 + b``."""
    Ju, off = cx.jacobian_u, cx.offset  # (C, 2, n_out), (C, n_out): y = u @ Ju + off
    if domain.kind == "box":
        g = cx.jacobian()  # (C, n_out, 2): dy/dx
        b = off - np.einsum("i,coi->co", domain.origin, g)
        return np.concatenate([g, b[..., None]], -1), "x"
    return np.concatenate([np.transpose(Ju, (0, 2, 1)), off[..., None]], -1), "st"


def _view(cx, labels: _Labels, domain, layer: int, full: bool, threshold: float) -> dict:
    """One view's JSON: cells (vertices in u, counter-clockwise), patterns, measures, edge labels, linear
    regions, and for the full network the output maps and the decision boundary."""
    from ..regions.stats import decision_boundary

    C = cx.regions
    nv = np.asarray(cx.n_vertices)
    V = np.asarray(cx.vertices)  # (C, K, 2) in u
    valid = np.arange(V.shape[1])[None, :] < nv[:, None]
    if nv.max(initial=0) > 65535:
        raise PiecewiseError("a cell has more than 65535 vertices: too many for the explorer")
    bits, widths = cx.layout if cx.layout is not None else _layout(cx)
    view = {"layer": layer, "regions": C, "bits": int(bits), "widths": [int(w) for w in widths],
            "nwords": int(cx.patterns.shape[1]), "seconds": round(float(cx.seconds), 4),
            "nv": _b64(nv, np.uint16), "V": _b64(V[valid], np.float64), "E": _b64(labels.of(cx), np.int32),
            "W": _b64(cx.patterns, np.uint32), "M": _b64(cx.measure, np.float64)}
    try:
        n_lin, lab = cx.linear_regions()
        view.update(linear=int(n_lin), LR=_b64(lab, np.int32))
    except PiecewiseError as e:  # a graph beyond the exact arithmetic's limit
        view.update(linear=None, linear_note=str(e))
    if full:
        maps, coords = _maps(cx, domain)
        view.update(nout=int(maps.shape[1]), maps=_b64(maps, np.float32), coords=coords)
        try:
            seg = np.asarray(decision_boundary(cx, threshold=threshold), np.float64).reshape(-1, 2, 2)
            view.update(boundary=_b64(seg, np.float64), nboundary=int(len(seg)))
        except PiecewiseError as e:
            view.update(boundary=None, boundary_note=str(e))
    return view


def _layout(cx):
    from ..regions.cells import _layout_of

    return _layout_of(cx._exactness()[1])


def _describe(net, params) -> str:
    from ..nets import MLP

    if isinstance(net, MLP):
        return " \u2192 ".join(map(str, net.layer_sizes)) + f", {net.activation}"
    return f"graph ({type(net).__name__}) with {net.n_in} inputs"


def build_page(net, params, domain, out="explore.html", *, threshold: float | None = None, layers: bool = True,
               title: str | None = None, max_cells: int = MAX_CELLS, progress: bool | None = False) -> dict:
    """Enumerate the views, write the page; return a summary ``{"path", "regions", "linear_regions", "views",
    "bytes", "seconds"}`` (``regions``: activation regions of the full network, first checkpoint).
    Arguments as :func:`explore`."""
    from ..decision import THRESHOLD
    from ..nets import MLP
    from ..regions import enumerate_cells
    from ..regions.domain import Domain
    from ._assets import render

    t0 = time.perf_counter()
    if not isinstance(domain, Domain):
        raise PiecewiseError(f"explore needs a domain (piecewise.box or piecewise.plane), got {type(domain).__name__}")
    if domain.dim != 2:
        raise PiecewiseError(f"explore draws a 2-D slice; this {domain.kind} is {domain.dim}-D (use a box of a "
                             f"2-input network or a plane: --plane P.npy)")
    out = _check_out(out)
    t = THRESHOLD if threshold is None else float(threshold)
    if not np.isfinite(t):
        raise PiecewiseError(f"threshold must be finite, got {threshold}")
    if isinstance(max_cells, bool) or not isinstance(max_cells, (int, np.integer)) or max_cells < 1:
        raise PiecewiseError(f"max_cells must be a positive integer, got {max_cells!r}")
    is_mlp = isinstance(net, MLP)
    if is_mlp and not net.activation.piecewise_linear:
        raise PiecewiseError(f"activation {net.activation} is not piecewise linear: it has no activation regions")
    checkpoints = list(params) if _is_checkpoints(params) else [params]
    if not is_mlp and (len(checkpoints) != 1 or checkpoints[0] is not None):
        raise PiecewiseError("a graph (ONNX, ...) or StagedNet carries its own weights: pass params=None")
    from ..staged import StagedNet

    if is_mlp:
        acts = [net.activation] * net.depth
    else:  # a StagedNet's stages name their activations; a graph's events get generic labels
        acts = [st.activation for st in net.stages] if isinstance(net, StagedNet) else []
    labels = _Labels(domain, acts, graph=not is_mlp)
    ckpts = []
    for P in checkpoints:
        views = []
        ls = range(1, net.depth + 1) if (is_mlp and layers) else [net.depth if is_mlp else None]
        for l in ls:
            full = not is_mlp or l == net.depth
            sub, Pl = (net, P) if full else _truncated(net, P, l)
            try:
                cx = enumerate_cells(sub, Pl, domain, progress=progress, max_cells=max_cells)
            except PiecewiseError as e:
                what = "the network" if full else f"the first {l} layer{'s' if l > 1 else ''}"
                if "max_cells" in str(e):
                    raise PiecewiseError(f"explore: {what} cut the domain into more than max_cells={max_cells:,} "
                                         f"cells (a page of ~200 bytes a cell): use a smaller box or plane, or "
                                         f"raise max_cells") from None
                raise PiecewiseError(f"explore ({what}): {e}") from None
            views.append(_view(cx, labels, domain, l if l is not None else 1, full, t))
        ckpts.append({"views": views})
    full0 = ckpts[0]["views"][-1]
    data = {
        "version": _version(), "title": title or "piecewise explorer", "network": _describe(net, params if is_mlp else None),
        "kind": domain.kind, "domain": domain.describe(), "origin": domain.origin.tolist(),
        "axes": domain.axes.tolist(), "measure": domain.measure(), "threshold": t,
        "depth": net.depth if is_mlp else 1, "graph": not is_mlp, "labels": labels.names, "checkpoints": ckpts,
    }
    page = render(data)
    from ..files import atomic_open

    with atomic_open(out, "w", encoding="utf-8") as f:
        f.write(page)
    return {"path": out, "regions": full0["regions"], "linear_regions": full0.get("linear"),
            "views": sum(len(c["views"]) for c in ckpts), "bytes": len(page.encode("utf-8")),
            "seconds": round(time.perf_counter() - t0, 3)}


def _version() -> str:
    from .. import __version__

    return __version__


def explore(net, params, domain, out="explore.html", *, threshold: float | None = None, layers: bool = True,
            title: str | None = None, max_cells: int = MAX_CELLS, progress: bool | None = False) -> str:
    """Write one self-contained HTML page (no server, no network: data and scripts inlined) exploring the exact
    activation regions of a network on a 2-D domain, and return its path.

    The page draws the cells on a canvas, coloured by activation region or by linear region (a button), with
    the decision boundary in red (several outputs: where the top two logits tie; one output: the level set
    ``y = threshold``, :mod:`piecewise.decision`); wheel zooms, drag pans. Hovering a cell fills ``#cell-info``
    with its id, activation pattern per layer, area, the output's affine map and the units bounding it. A layer
    slider shows the regions of the first l hidden layers (MLPs), a checkpoint slider the params of a list.
    Scripts read ``window.piecewise.regions`` (the shown view's count of activation regions; on load the full
    network's, first checkpoint: what ``piecewise count --method exact`` reports) and call
    ``window.piecewise.cellAt(s, t)`` with (s, t) in [0, 1]^2 the domain's parameters (x = lo + s (hi - lo) per
    axis for a box, p0 + s (p1 - p0) + t (p2 - p0) for a plane) -> ``{id, pattern, measure}`` or null; ``id`` is
    the cell's index in :func:`~piecewise.regions.enumerate_cells`' complex, ``pattern`` a list of strings,
    one per hidden layer, one digit per unit (its state), ``measure`` its area in input coordinates (float).

    Args:
      net, params: an :class:`~piecewise.nets.MLP` and its params (a tuple of (W, b) pairs), or a list of
        params (checkpoints, one slider step each); or a :class:`~piecewise.graph.Graph` / StagedNet with
        ``params=None`` (the full network only: no layer slider).
      domain: a 2-D domain: :func:`~piecewise.regions.box` of a 2-input network or a
        :func:`~piecewise.regions.plane` slice.
      out: the page's path (.html; its folder must exist).
      threshold: one-output nets' decision level (default :data:`piecewise.decision.THRESHOLD`, 0.5).
      layers: also the views of the first l < L layers (one exact enumeration each).
      title: the page's title.
      max_cells: refuse (PiecewiseError) a view with more cells than this (the page grows ~200 bytes a cell).
      progress: the enumeration's progress bar (None: on a terminal for larger nets).
    Returns:
      the path written (str).
    Raises:
      PiecewiseError: a domain that is not 2-D, a missing folder, a page not ending in .html, an activation
        that is not piecewise linear, params that do not fit the net, too many cells.
    """
    return build_page(net, params, domain, out, threshold=threshold, layers=layers, title=title,
                      max_cells=max_cells, progress=progress)["path"]

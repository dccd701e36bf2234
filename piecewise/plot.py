"""Matplotlib figures: region maps and count curves.

Every figure says what it shows (activation regions from a grid, or exact cells) in its title.
Matplotlib is imported lazily; a GUI backend with no display falls back to Agg.
"""
from __future__ import annotations

import os

import numpy as np


_GUI_BACKENDS = {"tkagg", "tkcairo", "qtagg", "qtcairo", "qt5agg", "qt5cairo", "gtk3agg", "gtk3cairo", "gtk4agg",
                 "gtk4cairo", "wxagg", "wxcairo", "macosx"}


def _plt():
    import matplotlib

    # a GUI backend without a display would fail: fall back to Agg (inline/notebook backends are kept)
    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() in _GUI_BACKENDS:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def region_colors(n: int, seed: int = 0) -> np.ndarray:
    """n distinct-looking RGB colours (random hues, fixed seed), (n, 3) floats in [0, 1]."""
    rng = np.random.default_rng(seed)
    return 0.25 + 0.7 * rng.random((max(n, 1), 3))


def region_map(ids: np.ndarray, domain=None, *, ax=None, title: str | None = None, regions: int | None = None):
    """Draw per-point region ids of a 2D grid (from ``count_grid(..., return_ids=True)``).

    ids: int array (n_s, n_t); axis 0 is the domain's first axis (drawn horizontally). Points on boundaries
    (id -1) are drawn black, so the boundaries show as thin dark lines. Returns the figure.
    """
    plt = _plt()
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"region_map needs a 2D grid of ids, got shape {ids.shape}")
    n = int(ids.max()) + 1 if ids.size else 0
    colors = np.vstack([region_colors(n), np.zeros((1, 3))])  # index -1 -> black
    img = colors[ids.T]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
    else:
        fig = ax.figure
    extent = [0, 1, 0, 1]
    xlabel, ylabel = "s", "t"
    if domain is not None and domain.kind == "box":
        lo, hi = domain.origin, domain.origin + np.diag(domain.axes)
        extent = [lo[0], hi[0], lo[1], hi[1]]
        xlabel, ylabel = "x1", "x2"
    ax.imshow(img, origin="lower", extent=extent, interpolation="nearest", aspect="auto")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    count = regions if regions is not None else n
    ax.set_title(title or f"activation regions (grid {ids.shape[0]}x{ids.shape[1]}): {count}")
    fig.tight_layout()
    return fig


def save(fig, path) -> str:
    """Save a figure and close it; returns the path of the file written. The format is the extension's (png,
    pdf, svg, ...); a path without one gets matplotlib's default, ``.png``, appended (as matplotlib does), and
    an extension matplotlib cannot write is a :class:`~piecewise.errors.PiecewiseError`."""
    import matplotlib

    from .errors import PiecewiseError

    plt = _plt()
    path = os.fspath(path)
    try:
        ext = os.path.splitext(path)[1][1:].lower()
        if not ext:
            path = f"{path}.{matplotlib.rcParams['savefig.format']}"
        elif ext not in fig.canvas.get_supported_filetypes():
            known = ", ".join(sorted(fig.canvas.get_supported_filetypes()))
            raise PiecewiseError(f"cannot write a figure as .{ext} ({path}); use one of: {known}")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=130)
    finally:
        plt.close(fig)
    return path


def _ccw(V):
    """Vertices of a convex polygon in counter-clockwise order."""
    c = V.mean(0)
    return V[np.argsort(np.arctan2(V[:, 1] - c[1], V[:, 0] - c[0]))]


def cell_map(cx, *, ax=None, title: str | None = None, linear: bool = False, boundary: bool = True,
             threshold: float | None = None):
    """Draw the exact cells of a 2-D :class:`~piecewise.regions.CellComplex`, each in its own colour, with
    their edges; ``linear=True`` colours by linear region instead; ``boundary`` draws the classifier's
    decision boundary in red: where the top two outputs (logits) tie, or where a single output crosses
    ``threshold`` (default :data:`piecewise.decision.THRESHOLD`, 0.5: the level training and accuracy use)
    (computed exactly per cell, :func:`piecewise.regions.stats.decision_boundary`). Returns the figure."""
    from .decision import THRESHOLD
    from matplotlib.collections import LineCollection, PolyCollection

    from .regions.stats import decision_boundary

    plt = _plt()
    if cx.vertices.shape[-1] != 2:
        raise ValueError(f"cell_map draws 2-D complexes (boxes of 2 inputs, plane slices); this one is {cx.vertices.shape[-1]}-D")
    box = cx.domain.kind == "box"
    to_xy = (lambda u: cx.domain.points(u)) if box else (lambda u: u)
    order = (lambda V: V) if cx.kind == "polygon" else _ccw
    polys = [to_xy(order(cx.vertices[i, : cx.n_vertices[i]])) for i in range(cx.regions)]
    if linear:
        n, labels = cx.linear_regions()
        colors = region_colors(n)[labels]
    else:
        n = cx.regions
        colors = region_colors(n)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
    else:
        fig = ax.figure
    lw = 0.6 if cx.regions < 2000 else 0.15
    ax.add_collection(PolyCollection(polys, facecolors=colors, edgecolors="k", linewidths=lw))
    what_b = ""
    if boundary:
        t = THRESHOLD if threshold is None else threshold
        segs = decision_boundary(cx, threshold=t) if cx.kind == "polygon" else []
        if len(segs):
            ax.add_collection(LineCollection([to_xy(s) for s in segs], colors="red", linewidths=1.5))
        n_out = cx.jacobian_u.shape[-1]
        what_b = ", red: decision boundary" + (" (top two logits tie)" if n_out > 1 else f" (output = {t:g})")
    lo = to_xy(np.zeros(2)) if box else np.zeros(2)
    hi = to_xy(np.ones(2)) if box else np.ones(2)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x1" if box else "s")
    ax.set_ylabel("x2" if box else "t")
    what = f"linear regions: {n}" if linear else f"activation regions: {n}"
    ax.set_title(title or f"exact cells, {what}\n{what_b.lstrip(', ')}".rstrip(), fontsize=10)
    fig.tight_layout()
    return fig


def det_map(field, *, ax=None, title: str | None = None):
    """Heatmap of det J from :func:`piecewise.invertibility.jacobian_field` (diverging colours centred at 0;
    kinks of PL nets, left out, are white). Returns the figure."""
    plt = _plt()
    det = np.asarray(field["det"])
    dom = field["domain"]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.6))
    else:
        fig = ax.figure
    lim = np.nanmax(np.abs(det)) if np.isfinite(det).any() else 1.0
    extent = [0, 1, 0, 1]
    if dom.kind == "box":
        lo, hi = dom.origin, dom.origin + np.diag(dom.axes)
        extent = [lo[0], hi[0], lo[1], hi[1]]
    im = ax.imshow(det.T, origin="lower", extent=extent, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    fig.colorbar(im, ax=ax, label="det J")
    ax.set_title(title or "Jacobian determinant (red > 0, blue < 0)")
    fig.tight_layout()
    return fig


def deformation(net, params, *, layer: int | None = None, lo: float = -1.0, hi: float = 1.0, lines: int = 21,
                ax=None, title: str | None = None):
    """How a 2D network (or its first ``layer`` hidden layers) bends a square grid: the images of the grid
    lines of [lo, hi]^2 (the deformation pictures of Olah's articles). Returns the figure."""
    import jax

    plt = _plt()
    t = np.linspace(lo, hi, 200)
    ticks = np.linspace(lo, hi, lines)
    curves = [np.stack([np.full_like(t, c), t], 1) for c in ticks] + [np.stack([t, np.full_like(t, c)], 1) for c in ticks]
    pts = np.concatenate(curves)
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), params)
    img = np.asarray(net.apply(p, pts)) if layer is None else np.asarray(net.hidden(p, pts)[layer - 1])
    if img.shape[-1] != 2:
        raise ValueError(f"deformation draws maps into R^2; this one has {img.shape[-1]} outputs")
    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(9, 4.3))
        a0, a1 = ax
    else:
        fig, a0, a1 = ax[0].figure, ax[0], ax[1]
    for k, c in enumerate(curves):
        col = "tab:blue" if k < lines else "tab:orange"
        a0.plot(c[:, 0], c[:, 1], color=col, lw=0.6)
        seg = img[k * 200:(k + 1) * 200]
        a1.plot(seg[:, 0], seg[:, 1], color=col, lw=0.6)
    a0.set_title("grid")
    a1.set_title(title or ("network output" if layer is None else f"after hidden layer {layer}"))
    for a in (a0, a1):
        a.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return fig

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


# -- sweeps: regions against depth, neurons and training step, beside the bounds ------------------------------
_GROUP_LABEL = {"neurons": "N = {}", "depth": "depth {}", "width": "width {}", "widths": "{}"}
_X_LABEL = {"depth": "depth L (hidden layers)", "neurons": "hidden neurons N", "step": "training step"}


def _key(r, k):
    v = r[k]
    return "x".join(map(str, v)) if isinstance(v, list) else v


def sweep_layout(rows) -> list[tuple[str, str]]:
    """The panels :func:`sweep_figure` draws for sweep rows: a list of ``(x, group)`` keys of the rows.

    * a full grid of uniform widths (every depth with every width, several depths): ``("depth", "width")``
      (against depth, one line per width) and, with several widths, ``("neurons", "depth")``;
    * otherwise ``("depth", "neurons")`` (against depth at a fixed neuron count, one line per N) where some N
      has several depths, and ``("neurons", "depth")`` (one line per depth) where some depth has several N;
      ``("neurons", "depth")`` alone when neither;
    * with several training steps, also ``("step", "widths")`` (one line per architecture)."""
    archs = sorted({tuple(r["widths"]) for r in rows})
    depths = sorted({len(w) for w in archs})
    per_n: dict[int, set] = {}
    per_d: dict[int, set] = {}
    for w in archs:
        per_n.setdefault(sum(w), set()).add(len(w))
        per_d.setdefault(len(w), set()).add(sum(w))
    by_n = any(len(v) > 1 for v in per_n.values())
    by_d = any(len(v) > 1 for v in per_d.values())
    widths = sorted({w[0] for w in archs})
    grid = (all(len(set(w)) == 1 for w in archs) and len(depths) > 1
            and set(archs) == {(wd,) * d for d in depths for wd in widths})
    if grid:
        panels = [("depth", "width")] + ([("neurons", "depth")] if len(widths) > 1 else [])
    else:
        panels = ([("depth", "neurons")] if by_n else []) + ([("neurons", "depth")] if by_d else [])
    panels = panels or [("neurons", "depth")]
    if len({r["step"] for r in rows}) > 1:
        panels.append(("step", "widths"))
    return panels


def _bound_fns(activation: str):
    """(label, fn(dim, widths) -> int, linestyle, marker) of the bounds drawn for this activation: ReLU: the Serra
    et al. (2018) upper bound and the Montufar et al. (2014) lower bound (regions some ReLU net of these
    widths attains, for widths >= dim); leaky ReLU and abs (one hyperplane per unit, no dimension lost on the
    inactive side): Montufar (2017)'s upper bound. Others: none."""
    from . import bounds

    name = activation.split(":")[0]
    if name == "relu":
        def lower(d, w):
            return bounds.montufar2014_lower(d, w) if min(w) >= d else None

        return [("Serra 2018 upper bound", bounds.serra2018_upper, ":", "x"),
                ("Montufar 2014 lower bound (attained by a construction)", lower, "-.", "+")]
    if name in ("leaky_relu", "abs"):
        return [("Montufar 2017 upper bound", bounds.montufar2017_upper, ":", "x")]
    return []


def sweep_panel(ax, rows, x: str, group: str, *, dim: int, activation: str = "relu", steps=None,
                with_bounds: bool = True) -> None:
    """Draw one panel of sweep rows on ``ax``: for each value of ``group`` (one colour) the mean over seeds of
    ``regions`` (solid) and, where the rows have it, ``linear_regions`` (dashed) against ``x``, with a band
    from the seeds' min to max; the bounds of :mod:`piecewise.bounds` for the same architectures in R^dim (ReLU:
    Serra et al. 2018 upper, Montufar et al. 2014 lower where every width >= dim; leaky ReLU and abs: Montufar
    2017 upper; at a point holding several architectures, the largest); log y axis.

    rows: sweep rows (``widths``, ``depth``, ``width``, ``neurons``, ``seed``, ``step``, ``regions``,
    optionally ``linear_regions``). x, group: row keys (``"depth"``, ``"neurons"``, ``"width"``, ``"step"``,
    ``"widths"``). dim: the dimension of the counted domain (the bounds are those of R^dim). steps: the
    training steps drawn (default: the first and the last; filled markers for the first, hollow for the
    others); ignored when ``x == "step"``."""
    plt = _plt()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    all_steps = sorted({r["step"] for r in rows})
    if x == "step":
        steps = all_steps
    elif steps is None:
        steps = all_steps[:1] + all_steps[-1:] if len(all_steps) > 1 else all_steps
    quantities = [("regions", "-", "o")] + ([("linear_regions", "--", "s")] if all("linear_regions" in r for r in rows)
                                             else [])
    bound_fns = _bound_fns(activation) if with_bounds and x != "step" else []
    groups = sorted({_key(r, group) for r in rows}, key=lambda g: (len(str(g)), g) if group == "widths" else g)
    handles = []
    for gi, g in enumerate(groups):
        col = colors[gi % len(colors)]
        sel = [r for r in rows if _key(r, group) == g]
        curves = [(None, sel)] if x == "step" else [(s, [r for r in sel if r["step"] == s]) for s in steps]
        for si, (step, cur) in enumerate(curves):
            xs = sorted({r[x] for r in cur})
            if not xs:
                continue
            for q, ls, mk in quantities:
                vals = [[r[q] for r in cur if r[x] == v] for v in xs]
                mean = [np.mean(v) for v in vals]
                ax.plot(xs, mean, ls=ls, marker=mk, color=col, ms=5 if mk == "o" else 3.5,
                        mfc=col if si == 0 else "none")
                if any(len(v) > 1 for v in vals):
                    ax.fill_between(xs, [min(v) for v in vals], [max(v) for v in vals], color=col, alpha=0.12, lw=0)
        for label, fn, ls, mk in bound_fns:
            xs = sorted({r[x] for r in sel})
            ys = []
            for v in xs:
                vals = [fn(dim, tuple(w)) for w in {tuple(r["widths"]) for r in sel if r[x] == v}]
                vals = [b for b in vals if b]
                ys.append(float(max(vals)) if vals else np.nan)
            ax.plot(xs, ys, ls=ls, marker=mk, color=col, lw=1, ms=5, alpha=0.8)
        handles.append(plt.Line2D([], [], color=col, lw=6, alpha=0.6, label=_GROUP_LABEL[group].format(g)))
    ax.set_yscale("log")
    from matplotlib.ticker import LogFormatter

    lo, hi = ax.get_ylim()
    if hi < 100 * lo:  # within two decades matplotlib labels minor ticks: 40, not 4 x 10^1
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
    if x != "step":
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel(_X_LABEL.get(x, x))
    ax.legend(handles=handles, fontsize=7, ncol=2 if len(handles) > 6 else 1,
              title=group.replace("widths", "hidden widths"), title_fontsize=7)


def sweep_styles(rows, *, activation: str = "relu", steps=()) -> list:
    """Legend handles (black) for what the line styles of :func:`sweep_panel` mean: activation regions, linear
    regions (when every row has them), the bounds drawn for ``activation``, and with two ``steps`` the
    filled (first) and hollow (last) markers."""
    plt = _plt()
    L = plt.Line2D
    style = [L([], [], color="k", ls="-", marker="o", ms=5, label="activation regions")]
    if rows and all("linear_regions" in r for r in rows):
        style.append(L([], [], color="k", ls="--", marker="s", ms=3.5, label="linear regions"))
    style += [L([], [], color="k", ls=ls, marker=mk, lw=1, label=lab) for lab, _, ls, mk in _bound_fns(activation)]
    if len(steps) > 1:
        style += [L([], [], color="k", ls="", marker="o", label=f"step {steps[0]} (filled)"),
                  L([], [], color="k", ls="", marker="o", mfc="none", label=f"step {steps[-1]} (hollow)")]
    return style


def sweep_figure(rows, *, dim: int, activation: str = "relu", method: str = "exact", where: str | None = None,
                 layout=None):
    """The figure of a sweep (``sweep.png`` of :func:`piecewise.sweep.run_sweep`): one :func:`sweep_panel` per
    entry of ``layout`` (default :func:`sweep_layout` of the rows), side by side, and one legend of what the
    line styles mean (:func:`sweep_styles`).

    rows: sweep rows. dim: the dimension of the counted domain. activation: the hidden activation (picks the
    bounds). method: ``"exact"`` or ``"grid"`` (grid counts are lower bounds). where: the domain in words for
    the title (e.g. ``"[-1, 1]^2"``, ``"R^3"``). Returns the figure."""
    plt = _plt()
    rows = list(rows)
    layout = sweep_layout(rows) if layout is None else layout
    fig, axes = plt.subplots(1, len(layout), figsize=(max(8.0, 5.2 * len(layout) + 0.6), 5.2), squeeze=False)
    steps = sorted({r["step"] for r in rows})
    show = steps[:1] + steps[-1:] if len(steps) > 1 else steps
    for ax, (x, g) in zip(axes[0], layout):
        sweep_panel(ax, rows, x, g, dim=dim, activation=activation, steps=show)
        if x == "depth" and g == "neurons":
            ax.set_title("deep vs shallow: against depth at a fixed neuron count N", fontsize=9)
        elif x == "step":
            ax.set_title("during training (every checkpoint)", fontsize=9)
        else:
            ax.set_title(f"against {x}, one line per {g}", fontsize=9)
    counted = "exact" if method == "exact" else "grid: lower bounds"
    axes[0][0].set_ylabel(f"regions ({counted})")
    style = sweep_styles(rows, activation=activation, steps=show)
    ncol = min(len(style), 3 if len(layout) == 1 else 4)
    fig.legend(handles=style, loc="lower center", ncol=ncol, fontsize=8, frameon=False, handlelength=3)
    where = f" in {where}" if where else ""
    fig.suptitle(f"regions of {activation} nets{where} ({counted}): mean over seeds, band from min to max over seeds\n"
                 f"bounds: for the same widths, regions of R^{dim}", fontsize=9)
    rows_of_legend = -(-len(style) // ncol)
    fig.tight_layout(rect=(0, 0.035 * rows_of_legend + 0.01, 1, 1))
    return fig

"""Figures of exact complexes: what is drawn, checked against the complex and independent geometry."""
import numpy as np
import pytest

import piecewise as pw
from conftest import random_params


def test_cell_map_draws_cells_and_the_argmax_boundary():
    from matplotlib.collections import LineCollection, PolyCollection

    from piecewise import plot

    net = pw.mlp(2, (8, 8), 3)
    params = random_params(net, 4, bias_std=0.3)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    fig = plot.cell_map(cx)
    ax = fig.axes[0]
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    lines = [c for c in ax.collections if isinstance(c, LineCollection) and not isinstance(c, PolyCollection)]
    assert len(polys) == 1 and len(polys[0].get_paths()) == cx.regions
    assert f"activation regions: {cx.regions}" in ax.get_title() and "top two logits" in ax.get_title()
    # the red lines are where the two largest logits tie (checked with the network itself)
    segs = np.concatenate([np.asarray(s) for s in lines[0].get_segments()])
    y = np.sort(np.asarray(net.apply(params, segs.astype(np.float32)), np.float64), 1)
    assert np.all(y[:, -1] - y[:, -2] <= 1e-4 * (1 + np.abs(y[:, -1])))
    plot._plt().close(fig)


def test_cell_map_linear_regions_and_bad_dimension():
    from matplotlib.collections import PolyCollection

    from piecewise import plot

    net = pw.mlp(2, (6,), 1)
    params = random_params(net, 1, bias_std=0.3)
    (W0, b0), (W1, b1) = params
    W1 = W1.copy()
    W1[:3] = 0.0  # three dead output weights: their lines do not bend the output
    cx = pw.enumerate_cells(net, ((W0, b0), (W1, b1)), pw.box(-1, 1, 2))
    n_lin, labels = cx.linear_regions()
    fig = plot.cell_map(cx, linear=True, boundary=False)
    ax = fig.axes[0]
    poly = [c for c in ax.collections if isinstance(c, PolyCollection)][0]
    assert len({tuple(np.round(f, 6)) for f in poly.get_facecolor()}) == n_lin < cx.regions
    assert f"linear regions: {n_lin}" in ax.get_title()
    plot._plt().close(fig)
    cx3 = pw.enumerate_cells(pw.mlp(3, (4,), 1), random_params(pw.mlp(3, (4,), 1)), pw.box(-1, 1, 3))
    with pytest.raises(ValueError, match="2-D"):
        plot.cell_map(cx3)


@pytest.mark.parametrize("name,written", [("cells", "cells.png"), ("cells.pdf", "cells.pdf"), ("a/cells.PNG", "a/cells.PNG")])
def test_save_returns_the_file_written(tmp_path, name, written):
    from piecewise import plot

    fig = plot._plt().figure()
    assert plot.save(fig, tmp_path / name) == str(tmp_path / written)
    assert (tmp_path / written).stat().st_size > 0


def test_save_refuses_an_unknown_format(tmp_path):
    from piecewise import plot

    with pytest.raises(pw.PiecewiseError, match="cannot write a figure as .xyz"):
        plot.save(plot._plt().figure(), tmp_path / "cells.xyz")
    assert not (tmp_path / "cells.xyz").exists()

import numpy as np
import pytest

import piecewise as pw
from piecewise import bounds, constructions


@pytest.mark.slow
@pytest.mark.parametrize("L", [1, 3, 8, 14])
def test_sawtooth(L):
    net, params = constructions.sawtooth(L)
    cx = pw.enumerate_cells(net, params, pw.segment([0.0], [1.0]))
    assert cx.regions == bounds.sawtooth_pieces(L) == cx.linear_regions()[0]
    # the output is the sawtooth: 0 at even multiples of 2^-L, 1 at odd ones
    x = (np.arange(2**L + 1) / 2**L)[:, None]
    np.testing.assert_allclose(np.asarray(net.apply(params, x.astype(np.float32)))[:, 0],
                               np.arange(2**L + 1) % 2, atol=1e-4)


@pytest.mark.parametrize("n0,widths", [(1, (3, 3, 4)), (1, (2, 5)), (2, (6, 6, 6)), (2, (4, 4, 4, 4)),
                                       (2, (5, 7, 3)), (3, (6, 4))])
def test_montufar_folding_attains_its_bound(n0, widths):
    net, params = constructions.montufar_folding(n0, widths)
    dom = pw.box(0.0, 1.0, n0) if n0 > 1 else pw.segment([0.0], [1.0])
    cx = pw.enumerate_cells(net, params, dom)
    assert cx.regions == bounds.montufar2014_lower(n0, widths)


def _linear_pieces_1d(params, n=200001):
    """Independent count of linear pieces of a scalar ReLU net on [0, 1]: slopes between dense samples, runs
    of equal slope (a sample interval holding a kink has an in-between slope and makes a run of length 1)."""
    x = np.linspace(0.0, 1.0, n)[:, None]
    h = x
    for W, b in params[:-1]:
        h = np.maximum(h @ W + b, 0.0)
    y = (h @ params[-1][0] + params[-1][1])[:, 0]
    s = np.diff(y) / np.diff(x[:, 0])
    change = np.abs(np.diff(s)) > 1e-6 * (1 + np.abs(s).max())
    runs = np.diff(np.flatnonzero(np.r_[True, change, True]))
    return int(np.sum(runs >= 2))


@pytest.mark.slow
@pytest.mark.parametrize("n0,widths", [(1, (3, 3, 4)), (2, (6, 6, 6)), (2, (4, 4, 4, 4))])
def test_montufar_folding_linear_regions_are_fewer(n0, widths):
    """Cells where every last-layer unit is off (h_L = 0) on both sides of a fold carry the same (constant)
    map and merge, so the construction has fewer linear than activation regions. The counts are checked
    against independent counters (tests/linear_reference.py in 2-D, dense slopes in 1-D), and each merge must
    be such an all-off pair."""
    from linear_reference import linear_regions_2d

    net, params = constructions.montufar_folding(n0, widths)
    dom = pw.box(0.0, 1.0, n0) if n0 > 1 else pw.segment([0.0], [1.0])
    cx = pw.enumerate_cells(net, params, dom)
    n_lin, labels = cx.linear_regions()
    P = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    ref = _linear_pieces_1d(P) if n0 == 1 else linear_regions_2d(P, 0.0, 1.0)[1]
    assert n_lin == ref < cx.regions
    last = pw.unpack_states(net, cx.patterns)[-1]
    merged = np.bincount(labels) > 1
    # every linear region made of several cells is a union of cells where the last layer is all off
    for region in np.nonzero(merged)[0]:
        assert not last[labels == region].any()


@pytest.mark.parametrize("n0,L,k", [(1, 1, 3), (1, 3, 3), (1, 4, 5), (2, 2, 3), (2, 3, 2), (2, 2, 4)])
def test_maxout_folding_attains_its_count(n0, L, k):
    net, params = constructions.maxout_folding(n0, L, k)
    dom = pw.box(0.0, 1.0, n0) if n0 > 1 else pw.segment([0.0], [1.0])
    cx = pw.enumerate_cells(net, params, dom)
    assert cx.regions == bounds.maxout_lower(n0, L, k)


@pytest.mark.parametrize("n0,n", [(2, 6), (2, 10), (3, 5)])
def test_shallow_general_position_attains_zaslavsky_in_a_large_box(n0, n):
    net, params = constructions.shallow_general_position(n0, n, seed=1)
    cx = pw.enumerate_cells(net, params, pw.box(-200.0, 200.0, n0))
    assert cx.regions == bounds.zaslavsky(n, n0)


def test_constructions_round_trip_through_npz(tmp_path):
    net, params = constructions.montufar_folding(2, (6, 6, 6))
    pw.save_npz(tmp_path / "m.npz", params)
    net2, params2 = pw.load_npz(tmp_path / "m.npz")
    assert net2 == net
    assert pw.enumerate_cells(net2, params2, pw.box(0.0, 1.0, 2)).regions == 1782


@pytest.mark.parametrize("n0,widths", [(1, (3, 3, 4)), (1, (4, 5, 2)), (1, (3, 3, 3, 3)), (2, (6, 6, 4)),
                                       (2, (8, 6, 3)), (3, (9, 4))])
def test_serra_folding_attains_the_serra_lower_bound(n0, widths):
    net, params = constructions.serra_folding(n0, widths)
    dom = pw.box(0.0, 1.0, n0) if n0 > 1 else pw.segment([0.0], [1.0])
    cx = pw.enumerate_cells(net, params, dom)
    assert cx.regions == bounds.serra2018_lower(n0, widths)
    assert cx.regions > bounds.montufar2014_lower(n0, widths)
    if n0 == 1:  # tight: equals the upper bound
        assert cx.regions == bounds.serra2018_upper(1, widths)


@pytest.mark.parametrize("p", [3, 4, 5, 8])
def test_serra_fold_maps_each_piece_onto_the_unit_interval(p):
    t, f, c, c0 = constructions._serra_fold(p)
    edges = np.r_[0.0, t, 1.0]
    g = lambda y: (c * np.maximum(f * (y - t), 0)).sum() + c0  # noqa: E731
    vals = np.array([g(e) for e in edges])
    np.testing.assert_allclose(vals, np.arange(p + 2) % 2, atol=1e-12)  # 0, 1, 0, 1, ...
    with pytest.raises(ValueError):
        constructions._serra_fold(2)

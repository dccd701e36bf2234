import numpy as np
import pytest

import piecewise as pw
from piecewise import bounds, constructions


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


@pytest.mark.parametrize("n0,widths,linear", [(1, (3, 3, 4), 41), (2, (6, 6, 6), 1726), (2, (4, 4, 4, 4), 665)])
def test_montufar_folding_linear_regions_are_fewer(n0, widths, linear):
    """Cells where every last-layer unit is off (h_L = 0) on both sides of a fold carry the same (constant)
    map and merge, so the construction has fewer linear than activation regions. The figures were found by
    this library; the check that makes them trustworthy is that each merge is such an all-off pair."""
    net, params = constructions.montufar_folding(n0, widths)
    dom = pw.box(0.0, 1.0, n0) if n0 > 1 else pw.segment([0.0], [1.0])
    cx = pw.enumerate_cells(net, params, dom)
    n_lin, labels = cx.linear_regions()
    assert n_lin == linear
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

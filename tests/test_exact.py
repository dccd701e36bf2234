import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import piecewise as pw
from conftest import random_params
from geometry import regions_in_box_exact  # noqa: E402
from geometry import (breakpoints_on_segment, lines_of_shallow, lp_region_count, montufar_params,
                      regions_in_box, sawtooth_params)

ACTS = [("relu", "relu"), ("leaky_relu:0.1", "relu"), ("abs", "relu"), ("hardtanh", "hardtanh"),
        ("maxout:2", "maxout2")]


@pytest.mark.parametrize("act,kind", ACTS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shallow_equals_closed_form(act, kind, seed):
    net = pw.mlp(2, (9,), 1, act)
    params = random_params(net, seed, bias_std=0.5)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    assert cx.regions == regions_in_box(lines_of_shallow(*params[0], kind), (-1, -1), (1, 1))
    assert cx.measure.sum() == pytest.approx(4.0, rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 14), seed=st.integers(0, 10**6), bias=st.floats(0.05, 2.0),
       lo=st.integers(-300, 50).map(lambda i: i / 100), size=st.integers(5, 400).map(lambda i: i / 100))
@pytest.mark.slow
def test_shallow_random_boxes(n, seed, bias, lo, size):
    # biases keep the lines in general position (the closed form needs it; concurrency is tested below)
    net = pw.mlp(2, (n,), 1)
    params = random_params(net, seed, bias_std=bias)
    cx = pw.enumerate_cells(net, params, pw.box(lo, lo + size, 2))
    assert cx.regions == regions_in_box(lines_of_shallow(*params[0]), (lo, lo), (lo + size, lo + size))


@settings(max_examples=12, deadline=None)
@given(w1=st.integers(1, 4), w2=st.integers(1, 4), seed=st.integers(0, 10**6), bias=st.floats(0.05, 1.0))
def test_deep_relu_against_lp_brute_force(w1, w2, seed, bias):
    net = pw.mlp(2, (w1, w2), 1)
    params = random_params(net, seed, bias_std=bias)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    ref = lp_region_count([params[0][0], params[1][0]], [params[0][1], params[1][1]], -1.0, 1.0)
    assert cx.regions == ref


@pytest.mark.parametrize("act,widths", [("relu", (12, 12, 12)), ("leaky_relu:0.2", (10, 10)),
                                        ("hardtanh", (8, 8)), ("maxout:3", (6, 6)), ("abs", (8, 8, 8))])
@pytest.mark.slow
def test_grid_never_exceeds_exact_and_nearly_finds_all(act, widths):
    net = pw.mlp(2, widths, 1, act)
    params = random_params(net, 3, bias_std=0.3)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    g = pw.count_grid(net, params, pw.box(-1, 1, 2), 1025, return_ids=True)
    assert g.regions <= cx.regions
    assert g.regions >= 0.85 * cx.regions
    # every grid pattern is one of the exact cells' patterns
    exact = {row.tobytes() for row in cx.patterns}
    assert all(row.tobytes() in exact for row in g.patterns)


def _segment_pieces(cx, a, b):
    """Number of 2D cells whose interior the segment a->b (in u coordinates) crosses with positive length."""
    count = 0
    for i in range(cx.regions):
        P = cx.vertices[i, : cx.n_vertices[i]]
        t0, t1 = 0.0, 1.0
        for k in range(len(P)):
            p, q = P[k], P[(k + 1) % len(P)]
            nrm = np.array([-(q - p)[1], (q - p)[0]])  # inward normal for counter-clockwise polygons
            num, den = nrm @ (a - p), nrm @ (b - a)
            if abs(den) < 1e-15:
                if num < 0:
                    t0, t1 = 1.0, 0.0
                continue
            t = -num / den
            if den > 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
        if t1 - t0 > 1e-9:
            count += 1
    return count


@pytest.mark.parametrize("act", ["relu", "hardtanh", "maxout:3"])
def test_one_d_equals_two_d_restricted(act):
    net = pw.mlp(2, (10, 10), 1, act)
    params = random_params(net, 11, bias_std=0.3)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    a, b = np.array([0.05, 0.13]), np.array([0.97, 0.71])  # u coordinates
    line = pw.enumerate_cells(net, params, pw.segment(-1 + 2 * a, -1 + 2 * b))
    assert line.regions == _segment_pieces(cx, a, b)


def test_segment_of_shallow_net_equals_breakpoints():
    net = pw.mlp(4, (15,), 1)
    params = random_params(net, 2, bias_std=0.5)
    p0, p1 = np.array([-1.0, 0.3, 0.2, -0.5]), np.array([1.0, -0.7, 0.1, 0.9])
    assert pw.enumerate_cells(net, params, pw.segment(p0, p1)).regions == 1 + len(breakpoints_on_segment(*params[0], p0, p1))


@pytest.mark.slow
@pytest.mark.parametrize("L", [1, 2, 5, 10, 16])
def test_sawtooth_has_2_to_the_L_pieces(L):
    params = sawtooth_params(L)
    net = pw.mlp(1, (2,) * L, 1)
    cx = pw.enumerate_cells(net, params, pw.segment([0.0], [1.0]))
    assert cx.regions == 2**L
    n_lin, _ = cx.linear_regions()
    assert n_lin == 2**L
    # the breakpoints are at i / 2^L
    lo = np.sort(cx.vertices[:, 0, 0])
    np.testing.assert_allclose(lo, np.arange(2**L) / 2**L, atol=1e-12)


@pytest.mark.parametrize("widths,expected", [((6, 6, 6), 3**2 * 3**2 * 22), ((4, 4, 4, 4), 2**2 * 2**2 * 2**2 * 11),
                                             ((6, 4), 3**2 * 11)])
def test_montufar_folding_count(widths, expected):
    params = montufar_params(widths)
    net = pw.mlp(2, widths, 1)
    cx = pw.enumerate_cells(net, params, pw.box(0, 1, 2))
    assert cx.regions == expected
    assert cx.measure.sum() == pytest.approx(1.0, rel=1e-9)


# -- degenerate arrangements -------------------------------------------------------------------------------
def _net(W0, b0, *more):
    layers = [(np.asarray(W0, float), np.asarray(b0, float))] + [(np.asarray(W, float), np.asarray(b, float)) for W, b in more]
    widths = tuple(W.shape[1] for W, _ in layers)
    layers.append((np.ones((widths[-1], 1)), np.zeros(1)))
    return pw.mlp(layers[0][0].shape[0], widths, 1), tuple(layers)


def test_concurrent_lines_through_one_point():
    # five lines exactly through (0.125, -0.25): dyadic numbers, so b = -p @ W is computed without rounding
    W0 = np.array([[1.0, 0.0, 1.0, -1.0, 2.0], [0.0, 1.0, 1.0, 3.0, -1.0]])
    b0 = -(np.array([0.125, -0.25]) @ W0)
    net, p = _net(W0, b0)
    assert pw.enumerate_cells(net, p, pw.box(-1, 1, 2)).regions == 10  # 2n wedges
    g = pw.count_grid(net, p, pw.box(-1, 1, 2), 1025)
    assert g.regions <= 10


def test_nearly_concurrent_lines_are_counted_as_the_float64_net_has_them():
    """Lines meant to pass through (0.1, -0.2), with b = -p @ W rounded in float64: they miss one point by
    ~1e-17, and the exact arrangement of these float64 numbers has small triangles there. The engine counts
    them (never merges what float64 cannot resolve): the same count as an exact rational reference."""
    ang = np.array([0.0, 0.4, 1.3, 2.0, 2.9])
    W0 = np.stack([np.cos(ang), np.sin(ang)])
    b0 = -(np.array([0.1, -0.2]) @ W0)
    net, p = _net(W0, b0)
    ref = regions_in_box_exact(np.c_[W0.T, b0], (-1, -1), (1, 1))
    assert ref > 10
    assert pw.enumerate_cells(net, p, pw.box(-1, 1, 2)).regions == ref


def test_dead_always_on_duplicate_and_parallel_units():
    r = np.random.default_rng(0)
    W0 = r.normal(size=(2, 4))
    b0 = r.normal(size=4) * 0.3
    base = pw.enumerate_cells(*_net(W0, b0), pw.box(-1, 1, 2)).regions
    W = np.c_[W0, np.zeros(2), np.zeros(2), W0[:, 1], 4.0 * W0[:, 2]]  # dead, always on, duplicate, scaled copy
    b = np.r_[b0, -1.0, 5.0, b0[1], 4.0 * b0[2]]  # (scaling by a power of two is exact: the same line)
    assert pw.enumerate_cells(*_net(W, b), pw.box(-1, 1, 2)).regions == base
    # scaled by 2.5, the copy is rounded: a different line, ~1e-16 away, crossing the others; counted exactly
    W25 = np.c_[W0, 2.5 * W0[:, 2]]
    b25 = np.r_[b0, 2.5 * b0[2]]
    ref = regions_in_box_exact(np.c_[W25.T, b25], (-1, -1), (1, 1))
    assert pw.enumerate_cells(*_net(W25, b25), pw.box(-1, 1, 2)).regions == ref
    # a parallel (not identical) unit adds one line: +1 region plus its crossings
    Wp = np.c_[W0, W0[:, 0]]
    bp = np.r_[b0, b0[0] + 0.05]
    lines = np.c_[Wp.T, bp]
    assert pw.enumerate_cells(*_net(Wp, bp), pw.box(-1, 1, 2)).regions == regions_in_box(lines, (-1, -1), (1, 1))


def test_lines_through_box_corners_and_edges():
    # x1 + x2 = 0 passes through two corners of [-1,1]^2; x1 = -1 is the box edge; x2 = 0.5 crosses
    W0 = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    b0 = np.array([0.0, 1.0, -0.5])
    assert pw.enumerate_cells(*_net(W0, b0), pw.box(-1, 1, 2)).regions == 4


def test_flat_preactivation_on_a_cell():
    # layer 2 unit copies relu(z1): identically 0 where z1 < 0, so it adds no boundary; the second unit of
    # layer 2, relu(z1) - 0.5, does cut
    W0 = np.array([[1.0], [0.5]])
    net, p = _net(W0, [0.2], (np.array([[1.0, 1.0]]), np.array([0.0, -0.5])))
    cx = pw.enumerate_cells(net, p, pw.box(-1, 1, 2))
    assert cx.regions == 3
    n_lin, _ = cx.linear_regions()
    assert n_lin == 3


def test_linear_regions_merge_cells_with_equal_maps():
    # two relu units with the same line but opposite sides: relu(z) + relu(-z) = |z| -> 2 linear regions;
    # a third unit whose output weight is 0 splits cells without changing the map
    W0 = np.array([[1.0, -1.0, 0.3], [0.5, -0.5, 1.0]])
    b0 = np.array([0.1, -0.1, 0.2])
    layers = ((W0, b0), (np.array([[1.0], [1.0], [0.0]]), np.zeros(1)))
    cx = pw.enumerate_cells(pw.mlp(2, (3,), 1), layers, pw.box(-1, 1, 2))
    assert cx.regions == 4
    assert cx.linear_regions()[0] == 2


def test_plane_slice_matches_composed_net():
    net = pw.mlp(5, (8, 8), 1)
    params = random_params(net, 5, bias_std=0.3)
    P = np.random.default_rng(3).normal(size=(3, 5))
    a = pw.enumerate_cells(net, params, pw.plane(P)).regions
    A = P[1:] - P[0]
    (W0, b0), rest = params[0], params[1:]
    b = pw.enumerate_cells(pw.mlp(2, (8, 8), 1), ((A @ W0, b0 + P[0] @ W0), *rest), pw.box(0, 1, 2)).regions
    assert a == b


def test_affine_maps_match_the_network():
    net = pw.mlp(2, (8, 8), 2, "leaky_relu:0.1")
    params = random_params(net, 6, bias_std=0.3)
    cx = pw.enumerate_cells(net, params, pw.box(-2, 1, 2))
    x = cx.interior_points()
    u = (x - cx.domain.origin) / 3.0
    y = np.einsum("cd,cdo->co", u, cx.jacobian_u) + cx.offset
    np.testing.assert_allclose(np.asarray(net.apply(params, x.astype(np.float32))), y, rtol=1e-4, atol=1e-4)
    # interior points carry the cell's pattern
    words, valid = pw.classify(net, params, x, np.eye(2))
    assert valid.all()
    np.testing.assert_array_equal(words, cx.patterns)


def test_exact_bad_input():
    net = pw.mlp(3, (4,), 1, "tanh")
    with pytest.raises(pw.PiecewiseError, match="not piecewise linear"):
        pw.enumerate_cells(net, random_params(net), pw.box(-1, 1, 3))
    with pytest.raises(pw.PiecewiseError, match="inputs"):
        pw.enumerate_cells(pw.mlp(3, (4,), 1), random_params(net), pw.box(-1, 1, 2))
    relu3 = pw.mlp(3, (4,), 1)
    (W0, b0), out = random_params(relu3)
    for dom in (pw.box(-1, 1, 3), pw.plane(np.eye(3))):  # both engines refuse NaN weights
        with pytest.raises(pw.PiecewiseError, match="NaN"):
            pw.enumerate_cells(relu3, ((np.full_like(W0, np.nan), b0), out), dom)


def test_stats_against_shallow_geometry():
    from piecewise.regions import stats

    net = pw.mlp(2, (6,), 1)
    params = random_params(net, 4, bias_std=0.3)
    cx = pw.enumerate_cells(net, params, pw.box(-3, 3, 2))
    W0, b0 = params[0]
    pts = np.random.default_rng(0).uniform(-0.5, 0.5, (20, 2))
    # distance to the nearest line (its foot lies inside the big box for points near the centre)
    ref = np.min(np.abs(pts @ W0 + b0) / np.linalg.norm(W0, axis=0), axis=1)
    np.testing.assert_allclose(stats.distance_to_boundary(cx, pts), ref, rtol=1e-9, atol=1e-12)
    lc_small = stats.local_complexity(cx, pts, 0.5 * ref.min())
    assert (lc_small == 1).all()
    # a ball that reaches exactly one line (radius between the nearest and second-nearest distance)
    d = np.sort(np.abs(pts @ W0 + b0) / np.linalg.norm(W0, axis=0), axis=1)
    one = d[:, 1] - d[:, 0] > 1e-3
    r = 0.5 * (d[:, 0] + d[:, 1])
    for x, rr in zip(pts[one][:5], r[one][:5]):
        assert stats.local_complexity(cx, x[None], rr)[0] == 2
    s = stats.summary(cx)
    assert s["regions"] == cx.regions and s["measure_total"] == pytest.approx(36.0)
    assert sum(s["vertices_per_cell"].values()) == cx.regions


# -- n-D boxes --------------------------------------------------------------------------------------------
from geometry import flats_meeting_box  # noqa: E402


@pytest.mark.parametrize("n_in,width,seed", [(3, 6, 0), (3, 9, 1), (4, 7, 2), (4, 8, 3)])
def test_nd_shallow_equals_flat_count(n_in, width, seed):
    net = pw.mlp(n_in, (width,), 1)
    params = random_params(net, seed, bias_std=0.4)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, n_in))
    assert cx.regions == flats_meeting_box(*params[0], -1.0, 1.0)
    assert cx.measure.sum() == pytest.approx(2.0**n_in, rel=1e-9)


@settings(max_examples=8, deadline=None)
@given(w1=st.integers(1, 4), w2=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_nd_deep_against_lp_brute_force(w1, w2, seed):
    net = pw.mlp(3, (w1, w2), 1)
    params = random_params(net, seed, bias_std=0.4)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 3))
    assert cx.regions == lp_region_count([params[0][0], params[1][0]], [params[0][1], params[1][1]], -1.0, 1.0)


@settings(max_examples=10, deadline=None)
@given(act=st.sampled_from(["relu", "leaky_relu:0.3", "abs", "hardtanh", "maxout:3"]),
       widths=st.lists(st.integers(1, 6), min_size=1, max_size=3), seed=st.integers(0, 10**6))
def test_nd_engine_equals_2d_engine(act, widths, seed):
    from piecewise.regions.exact import enumerate_cells_nd

    net = pw.mlp(2, widths, 1, act)
    params = random_params(net, seed, bias_std=0.3)
    a = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    b = enumerate_cells_nd(net, params, pw.box(-1, 1, 2))
    assert a.regions == b.regions
    assert {r.tobytes() for r in a.patterns} == {r.tobytes() for r in b.patterns}
    assert a.linear_regions()[0] == b.linear_regions()[0]


@pytest.mark.slow
def test_nd_grid_never_exceeds_exact_and_degenerate_units():
    net = pw.mlp(3, (8, 6), 1)
    params = random_params(net, 4, bias_std=0.3)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 3))
    g = pw.count_grid(net, params, pw.box(-1, 1, 3), 97)
    assert g.regions <= cx.regions
    exact = {r.tobytes() for r in cx.patterns}
    assert all(r.tobytes() in exact for r in g.patterns)
    # four planes through one point and a dead unit: 14 regions around the point (central arrangement in
    # R^3 of 4 planes in general position: 2 * (C(3,0) + C(3,1) + C(3,2)) = 14); a dyadic point, so b is exact
    W0 = np.array([[1.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0, 0.0]])
    b0 = -(np.array([0.125, 0.25, -0.125]) @ W0)
    b0[4] = 0.0
    layers = ((W0, b0), (np.ones((5, 1)), np.zeros(1)))
    assert pw.enumerate_cells(pw.mlp(3, (5,), 1), layers, pw.box(-1, 1, 3)).regions == 14


def test_max_cells_refuses_cleanly():
    from piecewise import constructions

    net, params = constructions.sawtooth(12)
    with pytest.raises(pw.PiecewiseError, match="max_cells"):
        pw.enumerate_cells(net, params, pw.segment([0.0], [1.0]), max_cells=1000)
    net3 = pw.mlp(3, (8,), 1)
    with pytest.raises(pw.PiecewiseError, match="max_cells"):
        pw.enumerate_cells(net3, random_params(net3, 0), pw.box(-1, 1, 3), max_cells=5)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(60))
def test_degenerate_integer_networks_two_engines_and_lp_agree(seed):
    """Small integer weights make dead units, parallel and concurrent lines, lines through corners and flat
    units common. The 2D engine and the n-D polytope engine (independent geometry) must find the same
    patterns; for ReLU also the LP brute force; the grid never more."""
    from piecewise.regions.exact import enumerate_cells_nd

    r = np.random.default_rng(seed)
    w1, w2 = int(r.integers(1, 5)), int(r.integers(1, 4))
    act = ["relu", "leaky_relu:0.5", "abs", "hardtanh", "maxout:3"][seed % 5]
    k = (3,) if act.startswith("maxout") else ()
    W0 = r.integers(-2, 3, size=(2, w1, *k)).astype(float)
    b0 = r.integers(-2, 3, size=(w1, *k)).astype(float) / 2
    W1 = r.integers(-2, 3, size=(w1, w2, *k)).astype(float)
    b1 = r.integers(-2, 3, size=(w2, *k)).astype(float) / 2
    params = ((W0, b0), (W1, b1), (np.ones((w2, 1)), np.zeros(1)))
    net = pw.mlp(2, (w1, w2), 1, act)
    a = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    b = enumerate_cells_nd(net, params, pw.box(-1, 1, 2))
    assert {x.tobytes() for x in a.patterns} == {x.tobytes() for x in b.patterns}
    if act == "relu":
        assert a.regions == lp_region_count([W0, W1], [b0, b1], -1.0, 1.0)
    assert pw.count_grid(net, params, pw.box(-1, 1, 2), 129, dtype=np.float64).regions <= a.regions


# -- linear regions at any output scale ---------------------------------------------------
def _out_scaled(params, w=1.0, b=0.0):
    *hidden, (W, c) = params
    return (*hidden, (W * w, c + b))


@pytest.mark.parametrize("w,b", [(1.0, 1e9), (1e-12, 0.0), (1e12, 0.0), (1e-12, 1e9), (-7.0, -3e5)])
@pytest.mark.parametrize("n_out", [1, 3])
def test_shallow_linear_regions_closed_form_at_extreme_scales(w, b, n_out):
    # one hidden layer: line j bends the output iff unit j has a nonzero output weight in some output, so
    # the linear regions are the regions of the arrangement of those lines (closed form, general position)
    net = pw.mlp(2, (9,), n_out)
    (W0, b0), (W1, b1) = random_params(net, 8, bias_std=0.5)
    W1 = W1.copy()
    W1[[1, 4]] = 0.0  # dead output weights
    if n_out > 1:
        W1[6, 1:] = 0.0  # unit 6 feeds output 0 only: it still bends the map
    alive = np.abs(W1).max(1) > 0
    lines = lines_of_shallow(W0[:, alive], b0[alive])
    expect = regions_in_box(lines, (-1, -1), (1, 1))
    cx = pw.enumerate_cells(net, _out_scaled(((W0, b0), (W1, b1)), w, b), pw.box(-1, 1, 2))
    assert cx.regions == regions_in_box(lines_of_shallow(W0, b0), (-1, -1), (1, 1))
    assert cx.linear_regions()[0] == expect


@pytest.mark.parametrize("w,b", [(1.0, 1e9), (1e-12, 0.0), (1e12, 0.0), (-1e-9, 1e6)])
@pytest.mark.parametrize("act", ["relu", "hardtanh", "maxout:2", "abs"])
def test_deep_linear_regions_do_not_depend_on_output_scale(w, b, act):
    # scaling the output by a nonzero constant or shifting it cannot change the linear regions
    net = pw.mlp(2, (10, 8), 2, act)
    params = random_params(net, 13, bias_std=0.3)
    ref = pw.enumerate_cells(net, params, pw.box(-1, 1, 2)).linear_regions()[0]
    cx = pw.enumerate_cells(net, _out_scaled(params, w, b), pw.box(-1, 1, 2))
    assert cx.linear_regions()[0] == ref
    assert 1 < ref <= cx.regions


def test_linear_regions_cancelling_and_dead_outputs():
    # output = relu(z) - relu(z) from two duplicate units plus a small third unit: only its line bends
    W0 = np.array([[1.0, 1.0, 0.3], [0.5, 0.5, -1.0]])
    b0 = np.array([0.1, 0.1, 0.2])
    layers = ((W0, b0), (np.array([[2.5], [-2.5], [1e-6]]), np.array([1e9])))
    cx = pw.enumerate_cells(pw.mlp(2, (3,), 1), layers, pw.box(-1, 1, 2))
    assert cx.regions == 4 and cx.linear_regions()[0] == 2
    # every output dead: one linear region, whatever the cells
    dead = ((W0, b0), (np.zeros((3, 2)), np.array([1.0, -4.0])))
    cx = pw.enumerate_cells(pw.mlp(2, (3,), 2), dead, pw.box(-1, 1, 2))
    assert cx.linear_regions()[0] == 1 and (cx.linear_regions()[1] == 0).all()


def test_nd_linear_regions_closed_form_and_scale():
    net = pw.mlp(3, (7,), 1)
    (W0, b0), (W1, b1) = random_params(net, 2, bias_std=0.4)
    W1 = W1.copy()
    W1[[0, 3]] = 0.0
    alive = W1[:, 0] != 0
    expect = flats_meeting_box(W0[:, alive], b0[alive], -1.0, 1.0)
    for w, b in [(1.0, 0.0), (1e-12, 1e9), (1e12, 0.0)]:
        cx = pw.enumerate_cells(net, ((W0, b0), (W1 * w, b1 + b)), pw.box(-1, 1, 3))
        assert cx.regions == flats_meeting_box(W0, b0, -1.0, 1.0)
        assert cx.linear_regions()[0] == expect


def test_linear_regions_of_segment_are_breakpoint_pieces():
    # along a segment, a shallow net's linear pieces: the breakpoints of units with nonzero output weight
    net = pw.mlp(4, (12,), 1)
    (W0, b0), (W1, b1) = random_params(net, 3, bias_std=0.5)
    W1 = W1.copy()
    W1[[2, 7, 9]] = 0.0
    p0, p1 = np.array([-1.0, 0.3, 0.2, -0.5]), np.array([1.0, -0.7, 0.1, 0.9])
    alive = W1[:, 0] != 0
    cx = pw.enumerate_cells(net, ((W0, b0), (W1 * 1e-12, b1 + 1e9)), pw.segment(p0, p1))
    assert cx.linear_regions()[0] == 1 + len(breakpoints_on_segment(W0[:, alive], b0[alive], p0, p1))


# -- one complex type in every dimension -------------------------------------------------
@pytest.mark.parametrize("dom", [pw.segment([-1.0, -1.0, 0.0], [1.0, 0.5, 0.2]), pw.plane(np.eye(3)), pw.box(-1, 1, 3)])
def test_one_complex_type_every_dimension(dom):
    from piecewise.regions import stats

    net = pw.mlp(3, (6, 5), 2)
    params = random_params(net, 1, bias_std=0.3)
    cx = pw.enumerate_cells(net, params, dom)
    assert type(cx) is pw.regions.CellComplex
    d = dom.dim
    assert cx.vertices.shape[0] == cx.regions and cx.vertices.shape[2] == d
    assert cx.jacobian_u.shape == (cx.regions, d, 2) and cx.offset.shape == (cx.regions, 2)
    assert cx.measure.sum() == pytest.approx(dom.measure(), rel=1e-9)
    s = stats.summary(cx)
    assert s["regions"] == cx.regions and s["measure_total"] == pytest.approx(dom.measure(), rel=1e-9)
    # the affine maps agree with the network at interior points, which lie in their own cells
    x = cx.interior_points()
    y = np.asarray(net.apply(params, x.astype(np.float32)))
    u = np.linalg.lstsq(dom.axes.T, (x - dom.origin).T, rcond=None)[0].T
    np.testing.assert_allclose(np.einsum("cd,cdo->co", u, cx.jacobian_u) + cx.offset, y, rtol=1e-4, atol=1e-4)
    assert cx.contains(np.arange(cx.regions), u).all()
    assert cx.cell_vertices(0).shape[1] == 3
    a = cx.adjacency
    assert (a[:, 0] < a[:, 1]).all() and len(a) >= cx.regions - 1  # connected domain
    assert cx.to_json(linear=True)["regions"] == cx.regions


# -- StagedNet: residual and max-pool networks -------------------------------------
def _lp_count_staged(stages, out_dim_unused, domain):
    """Independent brute force (plain NumPy + SciPy, no piecewise code): the number of state tuples of a
    staged network whose region has an interior point in ``domain`` (x = origin + u @ axes, u in the unit
    cube). ``stages``: list of (kind, weights {source: A}, bias, extra) with kind "relu" (extra = per-unit
    negative slopes or None) or "max" (extra = groups). One margin LP per candidate tuple."""
    from itertools import product

    from scipy.optimize import linprog

    origin, axes = domain.origin, domain.axes
    d = axes.shape[0]
    choices = []
    for kind, W, b, extra in stages:
        width = len(b) if kind == "relu" else len(extra)
        k = 2 if kind == "relu" else extra.shape[1]
        choices += [range(k)] * width
    count = 0
    for states in product(*choices):
        maps = [(axes, origin)]  # h_j = u @ M + m
        rows, rhs, bad, off = [], [], False, 0
        for kind, W, b, extra in stages:
            G = sum(maps[j][0] @ A for j, A in W.items())
            E = b + sum(maps[j][1] @ A for j, A in W.items())
            if kind == "relu":
                s = np.array(states[off:off + len(b)])
                off += len(b)
                for j in range(len(b)):
                    if np.abs(G[:, j]).max() <= 1e-12:  # constant on the region: its state is fixed (0 at 0)
                        bad |= (s[j] == 1) != (E[j] > 1e-12)
                        continue
                    sg = 1.0 if s[j] else -1.0  # sg * z >= t |g|
                    rows.append(np.r_[-sg * G[:, j], np.linalg.norm(G[:, j])])
                    rhs.append(sg * E[j])
                slope = np.where(s == 1, 1.0, 0.0 if extra is None else extra)
                maps.append((G * slope, E * slope))
            else:
                grp = extra
                s = np.array(states[off:off + len(grp)])
                off += len(grp)
                for i, win in enumerate(grp):
                    r = win[s[i]]
                    for q, r2 in enumerate(win):
                        if q == s[i]:
                            continue
                        g, e = G[:, r] - G[:, r2], E[r] - E[r2]
                        if np.abs(g).max() <= 1e-12 and abs(e) <= 1e-12:  # identical pieces: lowest index wins
                            bad |= q < s[i]
                            continue
                        if np.abs(g).max() <= 1e-12:
                            bad |= not (e > 1e-12)
                            continue
                        rows.append(np.r_[-g, np.linalg.norm(g)])
                        rhs.append(e)
                idx = np.array([win[si] for win, si in zip(grp, s)])
                maps.append((G[:, idx], E[idx]))
        if bad:
            continue
        if not rows:
            count += 1
            continue
        res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.array(rows), b_ub=np.array(rhs),
                      bounds=[(0.0, 1.0)] * d + [(None, 1.0)], method="highs")
        if res.status == 0 and -res.fun > 1e-9:
            count += 1
    return count


def _staged(n_in, spec, out):
    from piecewise.activations import get_activation
    from piecewise.staged import Stage, StagedNet

    stages = []
    for kind, W, b, extra in spec:
        if kind == "relu":
            act = get_activation("leaky_relu:0.1" if extra is not None else "relu")
            stages.append(Stage(act, W, b, slopes=extra))
        else:
            stages.append(Stage(get_activation(f"maxout:{extra.shape[1]}"), W, b, groups=np.asarray(extra, np.int64)))
    Wo, bo = out
    return StagedNet(n_in, tuple(stages), Wo, bo)


def _residual_spec(r, n_in):
    # stage 1 reads x; stage 2 reads x and stage 1 (a skip connection); stage 3 (PReLU, per-unit slopes)
    # reads stages 1 and 2; the output reads x, 2 and 3
    return [("relu", {0: r.normal(size=(n_in, 4))}, r.normal(size=4) * 0.3, None),
            ("relu", {0: r.normal(size=(n_in, 3)), 1: r.normal(size=(4, 3))}, r.normal(size=3) * 0.3, None),
            ("relu", {1: r.normal(size=(4, 3)), 2: r.normal(size=(3, 3))}, r.normal(size=3) * 0.3,
             np.array([0.1, -0.5, 0.3]))]


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
@pytest.mark.parametrize("dom", ["box2", "plane", "box3"])
def test_staged_residual_net_against_lp(seed, dom):
    r = np.random.default_rng(seed)
    n_in = {"box2": 2, "plane": 4, "box3": 3}[dom]
    spec = _residual_spec(r, n_in)
    net = _staged(n_in, spec, ({0: r.normal(size=(n_in, 2)), 2: r.normal(size=(3, 2)), 3: r.normal(size=(3, 2))},
                               np.zeros(2)))
    domain = {"box2": pw.box(-1, 1, 2), "plane": pw.plane(r.normal(size=(3, 4))), "box3": pw.box(-1, 1, 3)}[dom]
    cx = pw.enumerate_cells(net, None, domain)
    assert cx.regions == _lp_count_staged(spec, 2, domain)
    # the affine maps agree with the network's forward pass inside every cell (StagedNet.forward evaluates
    # relu through JAX, float32 unless x64 is on: a float32 tolerance)
    x = cx.interior_points()
    u = np.linalg.lstsq(domain.axes.T, (x - domain.origin).T, rcond=None)[0].T
    np.testing.assert_allclose(np.einsum("cd,cdo->co", u, cx.jacobian_u) + cx.offset, net(x), rtol=1e-5, atol=1e-5)
    # one state tuple per cell
    st = np.concatenate(net.states(x), 1)
    assert len({row.tobytes() for row in st}) == cx.regions


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])  # 6912 LPs each
@pytest.mark.parametrize("n_in", [2, 3])
def test_staged_max_pool_with_overlapping_windows_against_lp(seed, n_in):
    # relu units, then a max over overlapping windows of their outputs (max-pool): dead units make whole-
    # cell ties (several zero pieces) common; a window with fewer entries repeats one of them
    r = np.random.default_rng(seed)
    groups = np.array([[0, 1, 2], [1, 2, 3], [3, 4, 4]])
    spec = [("relu", {0: r.normal(size=(n_in, 5))}, r.normal(size=5) * 0.5, None),
            ("max", {1: np.eye(5)}, np.zeros(5), groups),
            ("relu", {2: r.normal(size=(3, 3)), 0: r.normal(size=(n_in, 3))}, r.normal(size=3) * 0.3, None)]
    net = _staged(n_in, spec, ({3: r.normal(size=(3, 1))}, np.zeros(1)))
    domain = pw.box(-1, 1, n_in)
    cx = pw.enumerate_cells(net, None, domain)
    assert cx.regions == _lp_count_staged(spec, 1, domain)
    x = cx.interior_points()
    st = np.concatenate(net.states(x), 1)
    assert len({row.tobytes() for row in st}) == cx.regions


def test_staged_from_mlp_gives_the_mlp_result():
    from piecewise.staged import from_mlp

    for act, n_in in [("relu", 2), ("hardtanh", 2), ("maxout:3", 2), ("leaky_relu:0.2", 3)]:
        net = pw.mlp(n_in, (6, 5), 2, act)
        params = random_params(net, 4, bias_std=0.3)
        a = pw.enumerate_cells(net, params, pw.box(-1, 1, n_in))
        b = pw.enumerate_cells(from_mlp(net, params), None, pw.box(-1, 1, n_in))
        assert {r.tobytes() for r in a.patterns} == {r.tobytes() for r in b.patterns}
        np.testing.assert_array_equal(a.jacobian_u, b.jacobian_u)
    with pytest.raises(pw.PiecewiseError, match="params=None"):
        pw.enumerate_cells(from_mlp(net, params), params, pw.box(-1, 1, n_in))


@pytest.mark.slow
def test_packed_patterns_match_pack_states():
    from piecewise.patterns import pack_states, unpack_states

    for act in ["relu", "hardtanh", "maxout:3"]:
        net = pw.mlp(2, (20, 19), 1, act)
        params = random_params(net, 2, bias_std=0.3)
        cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
        np.testing.assert_array_equal(pack_states(net, unpack_states(net, cx.patterns), np), cx.patterns)
        words, valid = pw.classify(net, params, cx.interior_points(), np.eye(2))
        assert valid.all()
        np.testing.assert_array_equal(words, cx.patterns)


# -- the vectorised n-D engine against the previous (recursive, SVD/LP) engine and the LP brute force --------
@pytest.mark.parametrize("seed", range(24))
def test_nd_degenerate_integer_networks_new_engine_equals_reference(seed):
    """Integer weights in 3-D and 4-D: planes through vertices and box corners, duplicates, dead and flat
    units, maxout ties. The batched polytope engine and the previous engine (independent geometry: SVD rank
    tests, halfspaces) find the same patterns; for ReLU also the LP brute force."""
    from nd_reference import enumerate_cells_reference

    r = np.random.default_rng(1000 + seed)
    n_in = 3 + seed % 2
    w1, w2 = int(r.integers(1, 5)), int(r.integers(1, 4))
    act = ["relu", "leaky_relu:0.5", "abs", "hardtanh", "maxout:3", "relu"][seed % 6]
    k = (3,) if act.startswith("maxout") else ()
    W0 = r.integers(-2, 3, size=(n_in, w1, *k)).astype(float)
    b0 = r.integers(-2, 3, size=(w1, *k)).astype(float) / 2
    W1 = r.integers(-2, 3, size=(w1, w2, *k)).astype(float)
    b1 = r.integers(-2, 3, size=(w2, *k)).astype(float) / 2
    params = ((W0, b0), (W1, b1), (np.ones((w2, 1)), np.zeros(1)))
    net = pw.mlp(n_in, (w1, w2), 1, act)
    a = pw.enumerate_cells(net, params, pw.box(-1, 1, n_in))
    b = enumerate_cells_reference(net, params, pw.box(-1, 1, n_in))
    assert {x.tobytes() for x in a.patterns} == {x.tobytes() for x in b.patterns}
    assert a.measure.sum() == pytest.approx(2.0**n_in, rel=1e-9)
    if act == "relu":
        assert a.regions == lp_region_count([W0, W1], [b0, b1], -1.0, 1.0)


@pytest.mark.parametrize("n_in,widths,act,seed", [(3, (8, 6, 5), "relu", 0), (4, (6, 5), "relu", 1),
                                                  (3, (6, 6), "hardtanh", 2), (3, (5, 4), "maxout:2", 3),
                                                  (5, (6, 4), "leaky_relu:0.2", 4),
                                                  pytest.param(6, (7, 4), "abs", 5, marks=pytest.mark.slow)])
def test_nd_random_networks_new_engine_equals_reference(n_in, widths, act, seed):
    from nd_reference import enumerate_cells_reference

    net = pw.mlp(n_in, widths, 1, act)
    params = random_params(net, seed, bias_std=0.3)
    a = pw.enumerate_cells(net, params, pw.box(-1, 1, n_in))
    if n_in < 6:  # the reference's volumes (Qhull) fail on thin 6-D cells; there the grid bound and
        b = enumerate_cells_reference(net, params, pw.box(-1, 1, n_in))  # classification below check it
        assert {x.tobytes() for x in a.patterns} == {x.tobytes() for x in b.patterns}
    else:
        g = pw.count_grid(net, params, pw.box(-1, 1, n_in), 9, dtype=np.float64)
        assert {x.tobytes() for x in g.patterns} <= {x.tobytes() for x in a.patterns}
    words, valid = pw.classify(net, params, a.interior_points(), np.eye(n_in))
    assert valid.all()
    np.testing.assert_array_equal(words, a.patterns)


def test_guard_refuses_before_memory_runs_out():
    net = pw.mlp(2, (64, 64, 64), 1)
    params = random_params(net, 0, bias_std=0.1)
    # refused (a stage's first crossing test gives a lower bound, or the buffers would pass max_cells)
    # before memory runs out, with an estimate and the way out
    with pytest.raises(pw.PiecewiseError, match=r"max_cells=3,000.*grid method"):
        pw.enumerate_cells(net, params, pw.box(-1, 1, 2), max_cells=3000, progress=False)
    # with a progress bar, a grid pass first: at least this many regions (a lower bound) -> refused at once
    with pytest.raises(pw.PiecewiseError, match=r"at least [\d,]+ activation regions.*grid"):
        pw.enumerate_cells(net, params, pw.box(-1, 1, 2), max_cells=100, progress=True)


def test_guard_does_not_refuse_a_count_that_fits():
    """Narrow, wide, narrow: the wide stage multiplies the cells, the narrow one after it hardly does. The
    guard used to predict the next stage from the last one's growth and refused such counts (2-12-384-4:
    86 million cells predicted, 80,922 found). With max_cells equal to the count it must run; one less,
    refuse."""
    net = pw.mlp(2, (12, 96, 4), 1)
    params = random_params(net, 0, bias_std=0.1)
    box = pw.box(-1, 1, 2)
    full = pw.enumerate_cells(net, params, box, progress=False)
    assert full.regions > 1000
    assert pw.enumerate_cells(net, params, box, max_cells=full.regions, progress=False).regions == full.regions
    with pytest.raises(pw.PiecewiseError, match="max_cells"):
        pw.enumerate_cells(net, params, box, max_cells=full.regions - 1, progress=False)

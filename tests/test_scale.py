"""Exact answers at every scale: counts that do not depend on the size of the box, the inputs, a
layer or the output, checked against independent references (a whole-space region search by LPs, closed
forms of one-layer arrangements, an exact rational arrangement counter) on boxes up to 1e12 and beyond."""
from math import comb

import jax
import numpy as np
import pytest

import piecewise as pw
from geometry import regions_in_box_exact
from whole_space import count_whole_space


def _net(n_in, widths, seed, bias_std=0.5, act="relu"):
    net = pw.mlp(n_in, widths, 1, act)
    p = net.init(key=jax.random.key(seed), bias_std=bias_std)
    return net, tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in p)


def _hidden(p):
    return [W for W, _ in p[:-1]], [b for _, b in p[:-1]]


@pytest.mark.parametrize("n_in,widths,seed", [
    (2, (8, 8), 0),
    pytest.param(3, (6, 6), 1, marks=pytest.mark.slow),
    pytest.param(4, (5, 5), 2, marks=pytest.mark.slow),
    pytest.param(2, (6, 6, 6), 3, marks=pytest.mark.slow),
])
@pytest.mark.slow
def test_nested_boxes_reach_the_whole_space_count(n_in, widths, seed):
    """Counts never decrease as the box grows, and from the box that holds every vertex on they equal the
    whole-space count of an independent region-graph search (up to 1e12)."""
    net, p = _net(n_in, widths, seed)
    ref = count_whole_space(*_hidden(p))
    counts = [pw.enumerate_cells(net, p, pw.box(-B, B, n_in), progress=False).regions
              for B in (1e1, 1e2, 1e4, 1e6, 1e8, 1e10, 1e12)]
    assert counts == sorted(counts), counts
    assert counts[-3:] == [ref] * 3, (counts, ref)


def _vertices_2d(W0, b0):
    pts = []
    for i in range(W0.shape[1]):
        for j in range(i + 1, W0.shape[1]):
            A = np.array([W0[:, i], W0[:, j]])
            pts.append(np.linalg.solve(A, -np.array([b0[i], b0[j]])))
    return np.array(pts)


@pytest.mark.parametrize("N", [7, 12])
def test_one_layer_closed_form_on_any_box_holding_its_vertices(N):
    """N lines in general position: 1 + N + C(N, 2) regions on every box that holds all their crossings,
    from just around them to 1e12 times larger (the old tolerance got 54 instead of 79 for N = 12)."""
    r = np.random.default_rng(N)
    W0, b0 = r.normal(size=(2, N)), r.normal(size=N)
    net = pw.mlp(2, (N,), 1)
    p = ((W0, b0), (np.ones((N, 1)), np.zeros(1)))
    R = 1.01 * np.abs(_vertices_2d(W0, b0)).max()
    for B in R * np.array([1.0, 1e3, 1e6, 1e9, 1e12]):
        assert pw.enumerate_cells(net, p, pw.box(-B, B, 2), progress=False).regions == 1 + N + comb(N, 2), B


def test_one_layer_closed_form_in_3d_and_an_exact_reference_in_a_small_box():
    N = 6
    r = np.random.default_rng(3)
    W0, b0 = r.normal(size=(3, N)), r.normal(size=N) * 0.3
    net = pw.mlp(3, (N,), 1)
    p = ((W0, b0), (np.ones((N, 1)), np.zeros(1)))
    full = sum(comb(N, j) for j in range(4))
    for B in (1e6, 1e12):
        assert pw.enumerate_cells(net, p, pw.box(-B, B, 3), progress=False).regions == full
    # 2-D: a box that holds only some crossings, against the exact rational arrangement counter
    W2, b2 = r.normal(size=(2, 9)), r.normal(size=9)
    net2 = pw.mlp(2, (9,), 1)
    p2 = ((W2, b2), (np.ones((9, 1)), np.zeros(1)))
    for B in (0.3, 1.0, 3.0):
        ref = regions_in_box_exact(np.c_[W2.T, b2], (-B, -B), (B, B))
        assert pw.enumerate_cells(net2, p2, pw.box(-B, B, 2), progress=False).regions == ref


@pytest.mark.parametrize("s", [1e-9, 3.7e-5, 1.0, 6.1e6, 1e12])
def test_rescaled_inputs_give_identical_counts(s):
    """f(x) on [-B, B]^n and f(x / s) (W0 / s) on the box s times larger: the same regions (W0 / s is rounded,
    so the arrangements differ by 1e-16 relative: a general-position count does not change)."""
    for n_in, widths, B in ((2, (16, 16, 16), 2.0), (3, (8, 8), 1.5)):
        net, p = _net(n_in, widths, 7, bias_std=0.1)
        ref = pw.enumerate_cells(net, p, pw.box(-B, B, n_in), progress=False)
        q = ((p[0][0] / s, p[0][1]),) + p[1:]
        cx = pw.enumerate_cells(net, q, pw.box(-B * s, B * s, n_in), progress=False)
        assert cx.regions == ref.regions
        assert cx.linear_regions()[0] == ref.linear_regions()[0]


@pytest.mark.parametrize("c", [1e-12, 1e-3, 7.3e5, 1e12])
def test_rescaled_layers_and_outputs_give_identical_counts(c):
    """(c W0, c b0, W1 / c) leaves every pattern of a ReLU net the same; the output times c (any c != 0)
    changes no activation region and no linear region."""
    net, p = _net(2, (12, 12, 12), 11, bias_std=0.1)
    dom = pw.box(-3, 3, 2)
    ref = pw.enumerate_cells(net, p, dom, progress=False)
    q = ((c * p[0][0], c * p[0][1]), (p[1][0] / c, p[1][1])) + p[2:]
    cx = pw.enumerate_cells(net, q, dom, progress=False)
    assert cx.regions == ref.regions
    assert sorted(map(bytes, cx.patterns)) == sorted(map(bytes, ref.patterns))
    out = p[:-1] + ((c * p[-1][0], c * p[-1][1]),)
    cy = pw.enumerate_cells(net, out, dom, progress=False)
    assert cy.regions == ref.regions
    assert cy.linear_regions()[0] == ref.linear_regions()[0]
    neg = p[:-1] + ((-c * p[-1][0], -c * p[-1][1]),)
    assert pw.enumerate_cells(net, neg, dom, progress=False).linear_regions()[0] == ref.linear_regions()[0]


def test_far_boxes_tiles_and_other_activations_at_scale():
    """Leaky ReLU, hardtanh and abs nets, plane slices and tiled counts: the same answers at 1e2 and 1e10
    times the features' scale (in every domain kind the engine has)."""
    for act in ("leaky_relu:0.1", "hardtanh", "abs"):
        net, p = _net(2, (10, 10), 5, bias_std=0.3, act=act)
        a = pw.enumerate_cells(net, p, pw.box(-1e3, 1e3, 2), progress=False).regions
        b = pw.enumerate_cells(net, p, pw.box(-1e11, 1e11, 2), progress=False).regions
        assert a == b, act
    net, p = _net(5, (10, 10), 6, bias_std=0.3)
    P = np.random.default_rng(0).normal(size=(3, 5))
    a = pw.enumerate_cells(net, p, pw.plane(P * 1e3), progress=False)
    b = pw.enumerate_cells(net, p, pw.plane(P * 1e11), progress=False)
    assert a.regions == b.regions
    from piecewise.regions.tiles import tiled_count

    net, p = _net(2, (10, 10), 8, bias_std=0.3)
    for B in (1e3, 1e11):
        whole = pw.enumerate_cells(net, p, pw.box(-B, B, 2), progress=False)
        t = tiled_count(net, p, pw.box(-B, B, 2), 9, linear=True, progress=False)
        assert t["regions"] == whole.regions
        assert t["linear_regions"] == whole.linear_regions()[0]


@pytest.mark.slow
def test_huge_and_tiny_boxes():
    """Boxes far beyond 1e12, and tiny ones, still give the count of the arrangement they hold."""
    net, p = _net(2, (8, 8), 0)
    ref = count_whole_space(*_hidden(p))
    assert pw.enumerate_cells(net, p, pw.box(-1e100, 1e100, 2), progress=False).regions == ref
    # a box of 1e-9 around a point inside one region: exactly one region
    x = np.array([0.3, -0.2])
    cx = pw.enumerate_cells(net, p, pw.box(x - 1e-9, x + 1e-9), progress=False)
    words = pw.pattern_words(net, p, x[None])
    assert cx.regions == 1 and bytes(cx.patterns[0]) == bytes(np.asarray(words)[0])


def test_past_what_float64_holds_a_one_line_refusal():
    from piecewise.errors import PiecewiseError

    net, p = _net(2, (8, 8), 0)
    with pytest.raises(PiecewiseError, match="too large for float64"):
        pw.box(-1e308, 1e308, 2)
    big = ((p[0][0] * 1e10, p[0][1]),) + p[1:]
    with pytest.raises(PiecewiseError, match="overflow float64"):
        pw.enumerate_cells(net, big, pw.box(-1e300, 1e300, 2), progress=False)

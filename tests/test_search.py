"""Whole input space and high-dimensional boxes (piecewise.regions.search): against an independent search
(tests/whole_space.py), closed forms of hyperplane arrangements, the vertex engine, and invariances."""
from math import comb
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

import piecewise as pw
from piecewise.errors import PiecewiseError
from piecewise.regions.search import count_space, search, space
from whole_space import count_whole_space


def _net(n_in, widths, seed, act="relu", bias=0.5, n_out=1):
    net = pw.mlp(n_in, widths, n_out, act)
    return net, net.init(key=jax.random.key(seed), bias_std=bias)


def _hidden(p):
    return [np.asarray(W, np.float64) for W, _ in p[:-1]], [np.asarray(b, np.float64) for _, b in p[:-1]]


@pytest.mark.parametrize("n_in,widths,seed", [(2, (6, 5), 0), (3, (6, 6), 1), (4, (5, 5), 2)])
def test_whole_space_equals_an_independent_search(n_in, widths, seed):
    net, p = _net(n_in, widths, seed)
    ref = count_whole_space(*_hidden(p))
    for alg in ("vertex", "search"):
        res = count_space(net, p, algorithm=alg, progress=False)
        assert res.regions == ref, alg
        assert res.exact


@pytest.mark.parametrize("n_in,N", [(6, 9), (64, 10), (3, 7)])
def test_one_hidden_layer_in_general_position_has_the_closed_form(n_in, N):
    net, p = _net(n_in, (N,), 7 + n_in)
    res = pw.enumerate_cells(net, p, space(n_in=n_in))
    assert res.regions == sum(comb(N, j) for j in range(n_in + 1))
    assert res.to_json()["algorithm"]


def test_central_arrangement_closed_form_and_degenerate_duplicates():
    # no biases: N hyperplanes through 0 in general position in R^n have 2 sum_{j<n} C(N-1, j) regions
    n, N = 3, 6
    net, p = _net(n, (N,), 3, bias=0.0)
    want = 2 * sum(comb(N - 1, j) for j in range(n))
    assert count_space(net, p, algorithm="search").regions == want
    assert count_space(net, p, algorithm="vertex").regions == want
    # a duplicated unit (same hyperplane, twice) and a unit scaled by 3: the same regions
    W, b = np.asarray(p[0][0], np.float64), np.asarray(p[0][1], np.float64)  # x3 is exact in float64
    W2 = np.c_[W, W[:, :1], 3 * W[:, 1:2]]
    b2 = np.r_[b, b[:1], 3 * b[1:2]]
    net2 = pw.mlp(n, (N + 2,), 1)
    p2 = [(W2, b2), (np.ones((N + 2, 1)), np.zeros(1))]
    for alg in ("search", "vertex"):
        res = count_space(net2, p2, algorithm=alg)
        assert res.regions == want and res.exact, alg


@pytest.mark.parametrize("act", ["leaky_relu:0.1", "abs", "hardtanh", "maxout:3"])
def test_vertex_engine_and_search_agree_for_every_activation(act):
    net, p = _net(2, (5, 4), 11, act=act)
    a = count_space(net, p, algorithm="vertex")
    b = count_space(net, p, algorithm="search")
    assert a.regions == b.regions and a.exact and b.exact
    assert a.linear_regions()[0] == b.linear_regions()[0]


def test_finite_boxes_in_any_dimension_and_nested_boxes():
    net, p = _net(3, (7, 6), 5)
    for B in (0.5, 2.0):
        dom = pw.box(-B, B, 3)
        assert search(net, p, dom).regions == pw.enumerate_cells(net, p, dom).regions
    whole = count_space(net, p, algorithm="search").regions
    counts = [search(net, p, pw.box(-B, B, 3)).regions for B in (0.5, 2.0, 8.0, 1e4)]
    assert counts == sorted(counts) and counts[-1] <= whole
    # an orthant: the vertex engine's proven box against the search
    half = space([0, -np.inf, 0], [np.inf, np.inf, np.inf])
    assert count_space(net, p, half, algorithm="vertex").regions == count_space(net, p, half, algorithm="search").regions
    # 10 inputs, a finite box: the search (the polytope backend stops at 6)
    net10, p10 = _net(10, (8, 6), 6)
    res = pw.enumerate_cells(net10, p10, pw.box(0, 1, 10))
    assert res.algorithm.startswith("region-graph") and res.regions >= 1
    pts = res.points
    assert np.all((pts > 0) & (pts < 1))
    words = np.asarray(pw.pattern_words(net10, p10, pts))
    assert len({w.tobytes() for w in words}) == res.regions


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_rescaling_changes_no_count(scale):
    net, p = _net(4, (6, 6), 4)
    base = count_space(net, p, algorithm="search").regions
    (W0, b0), (W1, b1), (W2, b2) = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in p]
    inputs = [(W0 / scale, b0), (W1, b1), (W2, b2)]  # f(x / scale): the same regions, scaled
    layer = [(W0 * scale, b0 * scale), (W1 / scale, b1), (W2 * 1e-30, b2)]  # relu is positively homogeneous
    for q in (inputs, layer):
        for alg in ("search", "vertex"):
            res = count_space(net, q, algorithm=alg)
            assert res.regions == base and res.exact, (alg, scale)
    # a finite box of f and the box `scale` times larger of f(x / scale)
    small = search(net, p, pw.box(-2.0, 2.0, 4)).regions
    assert search(net, inputs, pw.box(-2.0 * scale, 2.0 * scale, 4)).regions == small


def test_linear_regions_merge_units_the_output_ignores():
    net, p = _net(3, (6, 5), 8)
    (W0, b0), (W1, b1), (W2, b2) = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in p]
    W2 = W2.copy()
    W2[:2] = 0.0  # two last-layer units that the output never sees
    q = [(W0, b0), (W1, b1), (W2, b2)]
    a, b = count_space(net, q, algorithm="search"), count_space(net, q, algorithm="vertex")
    la, lb = a.linear_regions()[0], b.linear_regions()[0]
    assert la == lb and la < a.regions
    # the region graph is connected and its adjacency is symmetric
    from scipy.sparse.csgraph import connected_components

    A = a.adjacency()
    assert (A != A.T).nnz == 0 and connected_components(A)[0] == 1
    assert a.components(np.ones(a.regions, bool)) == 1


def test_graph_networks_count_like_their_mlp():
    net, p = _net(3, (5, 5), 9)
    g = pw.graph.from_mlp(net, p)
    assert count_space(g, None, algorithm="search").regions == count_space(net, p, algorithm="search").regions


def test_bad_input_is_refused():
    net, p = _net(3, (4,), 0)
    with pytest.raises(PiecewiseError, match="inputs"):
        count_space(net, p, space(n_in=2))
    with pytest.raises(PiecewiseError, match="LO"):
        space(np.inf, np.inf, 3)
    with pytest.raises(PiecewiseError, match="algorithm"):
        count_space(net, p, algorithm="magic")
    with pytest.raises(PiecewiseError, match="not piecewise linear"):
        tnet = pw.mlp(3, (4,), 1, "tanh")
        count_space(tnet, tnet.init(key=jax.random.key(0)))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "piecewise", *args], capture_output=True, text=True, timeout=300)


def test_cli_whole_space(tmp_path):
    n_in, widths = 5, (8,)
    net, p = _net(n_in, widths, 2)
    f = tmp_path / "net.npz"
    pw.save_npz(f, p, net)
    r = _cli("count", "--weights", str(f), "--box", "-inf", "inf", "--json", "--linear", "--cells", str(tmp_path / "c.npz"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["regions"] == sum(comb(8, j) for j in range(n_in + 1)) and out["algorithm"] and out["exact"]
    assert out["linear_regions"] <= out["regions"]
    cells = np.load(tmp_path / "c.npz")
    words = np.asarray(pw.pattern_words(net, p, cells["points"]))
    assert len({w.tobytes() for w in words}) == out["regions"]
    bad = _cli("count", "--weights", str(f), "--box", "-inf", "inf", "--method", "grid")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "exact" in bad.stderr

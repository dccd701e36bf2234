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


# -- the batched search: its simplex, shared facets, the HiGHS fallback, workers, the vertex path at 5-6 inputs
def _polyhedra(rng, L, M, n):
    """L random polyhedra {y : N y + d >= 0} around 0: unit rows N (L, M, n), d (L, M) log-uniform in [0.05, 200]
    (many rows far away: redundant)."""
    N = rng.normal(size=(L, M, n))
    N /= np.linalg.norm(N, axis=2, keepdims=True)
    return N, np.exp(rng.uniform(np.log(0.05), np.log(200.0), (L, M)))


@pytest.mark.parametrize("M,n", [(12, 5), (24, 8)])
def test_batched_simplex_decides_like_scipy(M, n):
    from scipy.optimize import linprog

    from piecewise.regions.search import DELTA, _lp_batch

    rng = np.random.default_rng(M + n)
    L = 400
    N, d = _polyhedra(rng, L, M, n)
    j = rng.integers(0, M, L)
    status, y, hj = _lp_batch(N, d, j, np.zeros((L, M), bool))
    assert np.all(status >= 0)  # random polyhedra: every question decided
    kinds = set()
    for l in range(L):
        others = np.arange(M) != j[l]
        r = linprog(N[l, j[l]], A_ub=-N[l, others], b_ub=d[l, others], bounds=[(None, None)] * n, method="highs")
        low = -np.inf if r.status == 3 else r.fun + d[l, j[l]]  # min of row j over the other rows
        if status[l] == 1:  # a point of the other rows below row j
            assert np.all(N[l, others] @ y[l] + d[l, others] >= -1e-9) and N[l, j[l]] @ y[l] + d[l, j[l]] < 0
            assert np.isclose(N[l, j[l]] @ y[l] + d[l, j[l]], hj[l]) and low < 0
        else:
            assert low >= DELTA * (1 - 1e-6)
        kinds.add(int(status[l]))
    assert kinds == {0, 1}


def test_batched_simplex_leaves_touching_parallel_and_skipped_rows_to_others():
    from piecewise.regions.search import _lp_batch

    s = np.sqrt(0.5)
    # y1 >= -1, y2 >= -1, and rows: (1) y1 + y2 >= -2 only touches the corner; (2) a duplicate of y1 >= -1;
    # (3) y1 >= -3 (redundant); (4) y1 + y2 >= -1 cuts the corner (a facet)
    rows = np.array([[1, 0], [0, 1], [s, s], [1, 0], [1, 0], [s, s]], float)
    d = np.array([1, 1, 2 * s, 1, 3, s])
    N = np.broadcast_to(rows, (4, 6, 2)).copy()
    D = np.broadcast_to(d, (4, 6)).copy()
    skip = np.zeros((4, 6), bool)
    skip[1, 0] = True  # the duplicate asks with its twin left out: then it is a facet
    skip[:, 5] = True  # row (4) left out except when asked about
    skip[3, 5] = False
    status, y, _ = _lp_batch(N, D, np.array([2, 3, 4, 5]), skip)
    assert status[0] == -1  # touching: min exactly 0, below DELTA, for HiGHS and its T_NONE rule
    assert status[1] == 1  # the duplicate alone is the facet y1 = -1
    assert status[2] == 0  # y1 >= -3 is implied by y1 >= -1
    assert status[3] == 1
    # a cone with no vertex (rows parallel to y2): the simplex keeps a free direction and still decides
    Nc = np.array([[[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]]])
    st, _, _ = _lp_batch(Nc, np.array([[1.0, 1.0, 5.0]]), np.array([2]), np.zeros((1, 3), bool))
    assert st[0] == 0


@pytest.mark.parametrize("n_in,widths,seed", [(5, (5, 5), 12), (6, (5, 5), 13), (8, (6, 4), 14)])
def test_region_graph_degrees_equal_the_reference_facets(n_in, widths, seed):
    net, p = _net(n_in, widths, seed)
    ref, degree = count_whole_space(*_hidden(p), facets=True)
    res = search(net, p)
    assert res.regions == ref and res.exact and res.shared > 0
    K = np.concatenate(res.states, 1)
    # every facet crosses one unit (general position), and each region has the reference's number of facets
    assert np.all(np.sum(K[res.edges[:, 0]] != K[res.edges[:, 1]], axis=1) == 1)
    deg = np.bincount(res.edges.ravel(), minlength=res.regions)
    assert {K[i].astype(bool).tobytes(): int(deg[i]) for i in range(res.regions)} == degree
    if n_in <= 6:  # the vertex engine's proven box, beyond VERTEX_DIM
        v = count_space(net, p, algorithm="vertex")
        assert v.regions == ref and v.exact and v.algorithm.startswith("vertex")


def _graph(res):
    """Patterns (set of bytes) and edges (set of pattern pairs) of a RegionGraph."""
    K = np.concatenate(res.states, 1).astype(np.int16)
    pats = [k.tobytes() for k in K]
    return set(pats), {frozenset((pats[a], pats[b])) for a, b in res.edges}


def test_highs_fallback_alone_finds_the_same_graph(monkeypatch):
    import piecewise.regions.search as S

    net, p = _net(5, (5, 4), 15)
    fast = search(net, p)
    assert fast.lps_highs == 0 and fast.exact
    monkeypatch.setattr(S, "_lp_batch", lambda N, d, j, skip: (np.full(len(j), -1, np.int8), np.zeros((len(j), N.shape[2])),
                                                              np.zeros(len(j))))
    slow = search(net, p)
    assert slow.lps_highs > 0 and slow.exact
    assert _graph(slow) == _graph(fast) and slow.regions == count_whole_space(*_hidden(p))


def test_two_workers_find_the_graph_of_one():
    # in a process without JAX (as the CLI runs it): forked workers inherit the network
    code = """if True:
        import sys, multiprocessing.pool, numpy as np, piecewise as pw
        import piecewise.regions.search as S
        from piecewise.regions.search import search
        S.BATCH = 16  # small batches: the pool starts early and runs many rounds
        sent = []
        submit = multiprocessing.pool.Pool.apply_async
        multiprocessing.pool.Pool.apply_async = lambda self, *a, **k: sent.append(1) or submit(self, *a, **k)
        r = np.random.default_rng(16)
        p = [(r.normal(size=(6, 8)), r.normal(size=8) * 0.5), (r.normal(size=(8, 6)) / 3, r.normal(size=6) * 0.5),
             (r.normal(size=(6, 1)), np.zeros(1))]
        net = pw.mlp(6, (8, 6), 1)
        def graph(res):
            K = np.concatenate(res.states, 1).astype(np.int16)
            pats = [k.tobytes() for k in K]
            return set(pats), {frozenset((pats[a], pats[b])) for a, b in res.edges}
        one, two = search(net, p, workers=1), search(net, p, workers=2)
        assert two.regions == one.regions > 500 and two.exact and two.workers == 2, (one.regions, two.regions)
        assert graph(two) == graph(one) and len(sent) > 10
        assert 'jax' not in sys.modules
    """
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    net, p = _net(3, (4,), 0)
    with pytest.raises(PiecewiseError, match="workers"):
        search(net, p, workers=0)


@pytest.mark.parametrize("n_in,widths,seed,act", [(5, (6, 5), 19, "leaky_relu:0.1"), (5, (5, 4), 20, "hardtanh"),
                                                  (6, (5, 4), 21, "abs")])
def test_vertex_path_at_five_and_six_inputs(n_in, widths, seed, act):
    net, p = _net(n_in, widths, seed, act=act)
    v = count_space(net, p, algorithm="vertex")
    s = count_space(net, p)  # auto: the search beyond VERTEX_DIM
    assert s.algorithm.startswith("region-graph") and v.algorithm.startswith("vertex")
    assert v.regions == s.regions and v.exact and s.exact


def test_search_imports_no_jax():
    code = ("import sys, numpy as np, piecewise as pw; from piecewise.regions.search import search; "
            "r = np.random.default_rng(0); p = [(r.normal(size=(5, 6)), r.normal(size=6)), (r.normal(size=(6, 1)), np.zeros(1))]; "
            "assert search(pw.mlp(5, (6,), 1), p).regions == 63; assert 'jax' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

"""The operator engine (regions/graph_engine.py: a graph's affine nodes applied to the cells' maps, depth first
in chunks) against the staged engine (every affine node composed into dense matrices) on graphs small enough
for both: the same activation patterns, output maps and linear regions, whatever the memory budget."""
import numpy as np
import pytest

import piecewise as pw
from conftest import pool_cnn as _pool_cnn, random_params
from piecewise.graph import GraphBuilder, from_mlp
from piecewise.regions.graph_engine import enumerate_graph
from piecewise.regions.opmaps import apply


def _cnn(seed=0, act="relu", s_in=1.0, s_out=1.0):
    """A small CNN (conv, residual add, max-pool, leaky, avg-pool, dense); ``s_in`` divides the first conv's
    weights (for inputs s_in times larger), ``s_out`` multiplies the output."""
    r = np.random.default_rng(seed)
    gb = GraphBuilder((2, 6, 6))
    h = gb.conv(gb.input, r.normal(size=(3, 2, 3, 3)) / s_in, r.normal(size=3) * 0.1, padding=1)
    h = gb.relu(h) if act == "relu" else gb.clip(h, -0.5, 1.0)
    h2 = gb.conv(h, r.normal(size=(3, 3, 3, 3)) * 0.5, r.normal(size=3) * 0.1, padding=1)
    h = gb.relu(gb.add(h, h2))
    h = gb.max_pool(h, 2)
    h = gb.leaky_relu(gb.conv(h, r.normal(size=(4, 3, 2, 2)), None, stride=1), 0.1)
    h = gb.dense(gb.flatten(gb.avg_pool(h, 2)), r.normal(size=(4, 3)) * s_out)
    return gb.build(h)


def _plane(n, seed=0, scale=0.5):
    r = np.random.default_rng(seed + 100)
    x = r.normal(size=n)
    return pw.plane(np.stack([x, x + scale * r.normal(size=n), x + scale * r.normal(size=n)]))


def _same(a, b):
    ka = [bytes(x) for x in a.patterns]
    kb = [bytes(x) for x in b.patterns]
    assert sorted(ka) == sorted(kb)
    oa, ob = np.argsort(ka), np.argsort(kb)
    np.testing.assert_allclose(a.jacobian_u[oa], b.jacobian_u[ob], rtol=1e-12, atol=1e-12)
    assert abs(a.measure.sum() - b.measure.sum()) <= 1e-9 * a.measure.sum()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["mlp2d", "mlp3d_hardtanh", "cnn_relu", "cnn_clip"])
@pytest.mark.parametrize("budget", [None, 2_000_000])
def test_operator_engine_equals_staged_engine(case, budget):
    if case == "mlp2d":
        net = pw.mlp(2, (8, 8), 2)
        g, dom = from_mlp(net, random_params(net, 1)), pw.box(-2, 2, 2)
    elif case == "mlp3d_hardtanh":
        net = pw.mlp(3, (6, 6), 1, "hardtanh")
        g, dom = from_mlp(net, random_params(net, 2)), pw.box(-1, 1, 3)
    else:
        g, dom = _cnn(0, "relu" if case == "cnn_relu" else "clip"), _plane(72)
    ref = pw.enumerate_cells(g.to_staged(), None, dom, progress=False)
    cx = enumerate_graph(g, dom, memory_budget=budget, progress=False)
    assert cx.regions == ref.regions
    _same(cx, ref)
    assert cx.linear_regions()[0] == ref.linear_regions()[0]
    count = enumerate_graph(g, dom, memory_budget=budget, keep_cells=False, progress=False)
    assert count.regions == ref.regions


def test_convolution_operator_equals_the_graphs_own_forward():
    from piecewise.graph import _eval

    r = np.random.default_rng(0)
    for C, H, O, k, s, p, dl, gr in [(4, 9, 6, 3, 2, (1, 0, 2, 1), 2, 2), (3, 8, 5, 1, 2, 0, 1, 1), (2, 7, 4, 3, 1, 1, 1, 1)]:
        gb = GraphBuilder((C, H, H))
        h = gb.conv(gb.input, r.normal(size=(O, C // gr, k, k)), None, stride=s, padding=p, dilation=dl, groups=gr)
        node = gb.build(h).nodes[1]
        x = r.normal(size=(7, C, H, H))
        np.testing.assert_allclose(apply(node, [x]), _eval(node, [x], np, False, 7), rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["cnn_relu", "cnn_clip", "mlp_dead"])
def test_same_map_certificate_agrees_with_exact_gradients(case):
    """CellComplex.same_map proves most equal maps of neighbours without arithmetic (the units that differ
    reach the output only through flat units): every pair it decides agrees with the exact gradients."""
    if case == "mlp_dead":
        net = pw.mlp(2, (10, 10, 10), 1)
        params = random_params(net, 5)
        params = [(W, b - 0.8 * (i > 0)) for i, (W, b) in enumerate(params)]  # many dead units
        cx = pw.enumerate_cells(net, params, pw.box(-2, 2, 2), progress=False)
    else:
        g = _cnn(0, "relu" if case == "cnn_relu" else "clip")
        cx = pw.enumerate_cells(g.to_staged(), None, _plane(72), progress=False)
    pairs = cx.adjacency
    a, b = pairs[:, 0], pairs[:, 1]
    proven = cx._no_influence(a, b)
    assert proven.sum() >= 20  # the certificate is exercised
    for t in np.nonzero(proven)[0][:300].tolist():
        ga, gb = cx.exact_gradient(int(a[t])), cx.exact_gradient(int(b[t]))
        k = min(ga.k, gb.k)
        assert np.all(ga.shifted(k) == gb.shifted(k)), (a[t], b[t])


def _forward_patterns(graph, X):
    """Activation patterns of a graph at points X (n, n_in) by the staged forward (float64), packed as the
    engine packs them, for comparison with cells' patterns."""
    from piecewise.regions._engine import Packer
    from piecewise.regions.graph_engine import Program

    sn = graph.to_staged()
    prog = Program(graph)
    packer = Packer(prog.n_units, prog.bits)
    words = np.zeros((len(X), packer.n_words), np.uint32)
    for st in sn.states(X):
        packer.add(words, np.asarray(st))
    return words


def test_count_keeps_no_cells_and_exports_points_inside_each_cell(tmp_path):
    """A count (keep_cells=False) finds the same patterns as the complex, in small chunks too; its points lie
    inside their cells (the forward pass at each point gives the cell's pattern); the measures sum to the
    domain's; save_cells writes them."""
    g, dom = _cnn(1), _plane(72, seed=1)
    cx = pw.enumerate_cells(g, None, dom, progress=False)
    for budget in (None, 2e6):
        rc = pw.enumerate_cells(g, None, dom, progress=False, keep_cells=False, memory_budget=budget)
        assert sorted(bytes(x) for x in rc.patterns) == sorted(bytes(x) for x in cx.patterns)
        assert abs(rc.measure.sum() - dom.measure()) <= 1e-9 * dom.measure()
        assert rc.to_json()["measure_total"] == pytest.approx(dom.measure(), rel=1e-9)
    assert rc.engine["chunks"] > 5  # the small budget really chunked the search
    inside = np.all(_forward_patterns(g, rc.points) == rc.patterns, 1)
    assert inside.mean() > 0.99
    path = rc.save_cells(tmp_path / "cells.npz")
    z = np.load(path)
    assert z["points"].shape == (rc.regions, 72) and z["measure"].shape == (rc.regions,)
    np.testing.assert_allclose(z["points"], rc.points)
    with pytest.raises(pw.PiecewiseError, match="memory budget"):
        pw.enumerate_cells(g, None, dom, memory_budget=-1)


@pytest.mark.parametrize("seed", [0, 1])
def test_max_stages_whole_cell_winners_equal_the_split_path(seed, monkeypatch):
    """The max stages name a unit's winner on a whole cell from the vertices' signs (ties, as in a pool window
    of off relus, to the lowest index; the exactly known values of off units and of vertices on a unit's own
    boundary) and split only the other cells: the same cells as sending every unit through the split
    (max_unit), far fewer splits, and the forward pass at each cell's point gives its pattern."""
    from piecewise.regions import _engine

    g, dom = _pool_cnn(seed), _plane(72, seed=seed, scale=1.0)
    calls = []
    real_unit = _engine.max_unit

    def counted(cells, *a, **k):
        calls.append(cells.size)
        return real_unit(cells, *a, **k)

    monkeypatch.setattr(_engine, "max_unit", counted)
    fast = pw.enumerate_cells(g, None, dom, progress=False, keep_cells=False)
    n_fast = sum(calls)
    calls.clear()
    monkeypatch.setattr(_engine, "_max_winners", lambda cells, ctx, st, G, E: np.full((len(G), st.width), -1))
    slow = pw.enumerate_cells(g, None, dom, progress=False, keep_cells=False)
    n_slow = sum(calls)
    assert fast.regions == slow.regions > 50
    assert sorted(bytes(x) for x in fast.patterns) == sorted(bytes(x) for x in slow.patterns)
    assert n_fast < 0.2 * n_slow  # (cells, unit) pairs sent through the split
    assert np.all(_forward_patterns(g, fast.points) == fast.patterns, 1).mean() > 0.99


def test_maxout_whole_cell_winners_equal_the_split_path(monkeypatch):
    """The same for maxout MLPs in 2-D and 3-D (no known values: float64 and proven zeros only)."""
    from piecewise.regions import _engine

    for n0, dom in ((2, pw.box(-2, 2, 2)), (3, pw.box(-1, 1, 3))):
        net = pw.mlp(n0, (6, 6), 1, activation="maxout:3")
        p = random_params(net, 5)
        fast = pw.enumerate_cells(net, p, dom, progress=False)
        with monkeypatch.context() as m:
            m.setattr(_engine, "_max_winners", lambda cells, ctx, st, G, E: np.full((len(G), st.width), -1))
            slow = pw.enumerate_cells(net, p, dom, progress=False)
        assert fast.regions == slow.regions > 20
        assert sorted(bytes(x) for x in fast.patterns) == sorted(bytes(x) for x in slow.patterns)


def test_mlp_count_runs_depth_first_past_the_budget():
    """An MLP count whose cells would not fit the budget runs depth first (the operator engine on the MLP as a
    graph): the same patterns as the breadth-first engine, with a peak that stays within the budget."""
    net = pw.mlp(3, (12, 12), 1)
    p = random_params(net, 3)
    dom = pw.box(-1, 1, 3)
    cx = pw.enumerate_cells(net, p, dom, progress=False)
    rc = pw.enumerate_cells(net, p, dom, progress=False, keep_cells=False, memory_budget=2e5, measure=True)
    assert rc.engine["algorithm"] == "operators" and rc.engine["peak_map_bytes"] <= 2e5
    assert sorted(bytes(x) for x in rc.patterns) == sorted(bytes(x) for x in cx.patterns)
    assert rc.measure.sum() == pytest.approx(8.0, rel=1e-9)


@pytest.mark.slow
def test_batched_local_complexity_of_a_graph_equals_the_staged_path():
    """local_complexity of a Graph (every point's and plane's slice in one batched search of the operator
    engine, the sampled estimate from the graph's own forward) equals the same on its staged form (one
    enumeration per slice)."""
    from piecewise.regions.local_complexity import local_complexity

    g = _cnn(2)
    X = np.random.default_rng(7).normal(size=(5, 72))
    for shape in ("diamond", "disc"):
        a = local_complexity(g, None, X, 0.3, planes=2, shape=shape, sampled_dim=4, seed=3)
        b = local_complexity(g.to_staged(), None, X, 0.3, planes=2, shape=shape, sampled_dim=4, seed=3)
        np.testing.assert_array_equal(a.exact_regions, b.exact_regions)
        np.testing.assert_array_equal(a.exact_units, b.exact_units)
        np.testing.assert_array_equal(a.sampled, b.sampled)
        np.testing.assert_array_equal(a.sampled_nd, b.sampled_nd)
        assert a.exact_regions.min() >= 1 and a.exact_regions.max() > 3


def test_batched_search_falls_back_to_one_domain_at_a_time(monkeypatch):
    """Where the batched search needs an exact decision (the exact resolver works on one domain), each domain
    is enumerated on its own: the same cells."""
    from piecewise.regions import graph_engine as ge

    g = _cnn(3)
    X = np.random.default_rng(1).normal(size=(3, 72))
    doms = [pw.plane(np.stack([x, x + 0.3 * np.eye(72)[0], x + 0.3 * np.eye(72)[1]])) for x in X]
    ref = ge.enumerate_graph_many(g, doms)
    real, calls = ge._dfs, []

    def dfs(prog, s, chunk, *a):
        if not calls and chunk.root is not None:
            calls.append(1)
            raise ge._ExactNeeded()
        return real(prog, s, chunk, *a)

    monkeypatch.setattr(ge, "_dfs", dfs)
    out = ge.enumerate_graph_many(g, doms)
    assert calls
    for (_, _, wa), (_, _, wb) in zip(ref, out):
        assert sorted(bytes(x) for x in wa) == sorted(bytes(x) for x in wb)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float64", "double-double"])
def test_operator_engine_counts_do_not_depend_on_scale(precision):
    """Inputs 2^40 times larger (the plane's points scaled, the first conv's weights divided) and outputs
    2^-60 times smaller (and both at once) give the same cells and linear regions, in float64 and in
    double-double maps."""
    from piecewise.regions.graph_engine import enumerate_graph

    dom = _plane(72)
    ref = enumerate_graph(_cnn(0), dom, progress=False, precision=precision)
    P = np.stack([dom.origin, dom.origin + dom.axes[0], dom.origin + dom.axes[1]])
    for s_in, s_out in ((2.0**40, 1.0), (1.0, 2.0**-60), (2.0**-30, 2.0**40)):
        cx = enumerate_graph(_cnn(0, s_in=s_in, s_out=s_out), pw.plane(P * s_in), progress=False,
                             precision=precision)
        assert cx.regions == ref.regions > 100
        assert sorted(bytes(w) for w in cx.patterns) == sorted(bytes(w) for w in ref.patterns)
        assert cx.linear_regions()[0] == ref.linear_regions()[0]


def test_batched_search_isolates_the_one_domain_that_needs_exact_arithmetic(monkeypatch):
    """Three lines through the origin, exactly (float64 cannot decide the third at the other two's crossing):
    of five domains only the one around the origin is enumerated by itself (the batch is halved until it is
    alone), and every domain gets the cells it gets alone."""
    from piecewise.graph import from_mlp
    from piecewise.regions import graph_engine as ge

    net = pw.mlp(2, (3,), 1)
    p = [(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]), np.zeros(3)), (np.ones((3, 1)), np.zeros(1))]
    g = from_mlp(net, p)
    centres = [(3.0, 3.0), (-4.0, 1.0), (0.0, 0.0), (2.0, -5.0), (0.5, 0.9)]
    corner = [np.array(c) - 0.2 for c in centres]  # squares of side 0.4 centred on the centres
    doms = [pw.plane(np.stack([a, a + [0.4, 0.0], a + [0.0, 0.4]])) for a in corner]
    alone = [ge.enumerate_graph(g, dm, progress=False) for dm in doms]
    real, calls = ge.enumerate_graph, []

    def spy(graph, domain, **kw):
        calls.append(domain)
        return real(graph, domain, **kw)

    monkeypatch.setattr(ge, "enumerate_graph", spy)
    out = ge.enumerate_graph_many(g, doms)
    assert len(calls) == 1 and calls[0] is doms[2]
    assert alone[2].regions == 6  # three lines through the centre: six sectors
    for cx, (_, n, w) in zip(alone, out):
        assert len(w) == cx.regions
        assert sorted(bytes(x) for x in w) == sorted(bytes(x) for x in cx.patterns)

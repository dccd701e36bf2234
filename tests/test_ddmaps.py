"""Double-double maps (regions/ddmaps.py), the fallback for signs that float64 cannot decide in graphs too
large for exact arithmetic: every value within its error bound of the exact value (rational arithmetic),
bounds near 2^-100, and counts that equal the exact engine's where float64 alone cannot decide."""
from fractions import Fraction

import numpy as np
import pytest

import piecewise as pw
from conftest import random_params
from piecewise.graph import GraphBuilder, from_mlp
from piecewise.regions import ddmaps, graph_engine
from piecewise.regions.ddmaps import DD, dd_matmul


def _exact(a):
    return np.array([Fraction(float(x)) for x in np.ravel(a)], object).reshape(np.shape(a))


@pytest.mark.parametrize("seed", range(4))
def test_dd_matmul_is_within_its_bound_of_the_exact_product(seed):
    r = np.random.default_rng(seed)
    n, k, m = 3, [5, 70, 600, 2000][seed], 4
    hi = r.normal(size=(n, k)) * np.exp(r.normal(size=(n, k)) * 8)  # magnitudes over many decades
    lo = hi * r.normal(size=(n, k)) * 2.0**-60
    W = r.normal(size=(k, m)) * np.exp(r.normal(size=(k, m)) * 4)
    y = dd_matmul(DD(hi, lo), W)
    ex = (_exact(hi) + _exact(lo)).dot(_exact(W))
    got = _exact(y.hi) + _exact(y.lo)
    err = np.array([float(abs(a - b)) for a, b in zip(ex.ravel(), got.ravel())]).reshape(n, m)
    assert np.all(err <= y.E)
    scale = np.abs(hi).max(1)[:, None] * np.abs(W).sum(0)[None, :]  # the slices are cut per row and column
    assert np.all(y.E <= 2.0**-90 * scale)


@pytest.mark.parametrize("seed", range(3))
def test_dd_matmul_with_float32_weights_zero_rows_and_extreme_scales(seed):
    """Float32 weights (their slices stop early, two or three hold them exactly), zero rows and columns, and
    rows at 2^+-300: every value within its bound of the exact product, the bound near 2^-90."""
    r = np.random.default_rng(10 + seed)
    n, k, m = 6, [9, 144, 1152][seed], 5
    hi = r.normal(size=(n, k)) * np.exp(r.normal(size=(n, k)) * 3)
    hi[1] = 0.0
    hi[2] *= 2.0**300
    hi[3] *= 2.0**-300
    lo = hi * r.normal(size=(n, k)) * 2.0**-57
    W = (r.normal(size=(k, m)) * np.sqrt(2 / k)).astype(np.float32).astype(np.float64)
    W[:, 4] = 0.0
    WA, WR = ddmaps._fixed_slices(W, ddmaps._exponents(W, 0), ddmaps._plan(k)[0], 5)
    assert len(WA) <= 3 and not WR.any()  # 24-bit weights: the slices stop once they hold W exactly
    y = dd_matmul(DD(hi, lo, np.abs(hi) * 2.0**-110), W)
    ex = (_exact(hi) + _exact(lo)).dot(_exact(W))
    got = _exact(y.hi) + _exact(y.lo)
    err = np.array([float(abs(a - b)) for a, b in zip(ex.ravel(), got.ravel())]).reshape(n, m)
    assert np.all(err + 2.0**-110 * (np.abs(hi) @ np.abs(W)) <= y.E)
    assert np.all(y.hi[1] == 0) and np.all(y.hi[:, 4] == 0)
    scale = np.abs(hi).max(1)[:, None] * np.abs(W).sum(0)[None, :]
    assert np.all(y.E <= 2.0**-90 * scale)


def _cnn():
    """A small CNN with a residual add, max-pool and clip, its weights multiples of 1/8 (so that the staged
    form's composed matrices, the exact reference, are the same network: float64 composes them exactly)."""
    r = np.random.default_rng(0)

    def w(*shape):
        return np.round(r.normal(size=shape) * 8) / 8

    gb = GraphBuilder((2, 5, 5))
    h = gb.relu(gb.conv(gb.input, w(3, 2, 3, 3), w(3) * 0.1, padding=1))
    h2 = gb.conv(h, w(3, 3, 3, 3) * 0.5, w(3) * 0.1, padding=1, stride=1)
    h = gb.relu(gb.add(h, h2))
    h = gb.max_pool(h, 2)
    h = gb.clip(gb.conv(h, w(4, 3, 2, 2), None), -0.5, 1.5)
    h = gb.dense(gb.flatten(h), w(4, 3))
    return gb.build(h)


def test_dd_preactivations_are_within_their_bounds_of_the_exact_maps():
    from piecewise.regions import rational
    from piecewise.regions.graph_engine import Program

    g = _cnn()
    prog = Program(g)
    x = np.random.default_rng(1).normal(size=50)
    dom = pw.plane(np.stack([x, x + 0.3 * np.eye(50)[3], x + 0.3 * np.eye(50)[7]]))
    exact = rational.ExactNet(g.to_staged(), dom)
    dd = ddmaps.DDNet(g, prog, dom)
    rng = np.random.default_rng(2)
    for s in range(len(prog.stages)):
        states = [rng.integers(0, 2 if st.groups is None else st.groups.shape[1], st.width)
                  if st.act.name != "hardtanh" else rng.integers(0, 3, st.width) for st in prog.stages[:s]]
        Z = exact.preact(s + 1, states)
        ez = Z.N.astype(object) * Fraction(2) ** Z.k
        z = dd.preact(s, states)
        got = _exact(z.hi) + _exact(z.lo)
        err = np.array([float(abs(a - b)) for a, b in zip(ez.ravel(), got.ravel())]).reshape(z.hi.shape)
        assert np.all(err <= z.E), s
        assert np.all(z.E <= 2.0**-85 * (1 + np.abs(z.hi)))


def _near_concurrent(seed):
    """A 2-8-8-1 net whose first three lines nearly meet at a point: x = 0, y = 0 and x + y = 2^-60 (closer
    than float64 can tell from the box's corners), the rest random."""
    net = pw.mlp(2, (8, 8), 1)
    p = [list(t) for t in random_params(net, seed)]
    W0, b0 = np.array(p[0][0]), np.array(p[0][1])
    W0[:, :3] = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    b0[:3] = [0.0, 0.0, -(2.0**-60)]
    p[0] = (W0, b0)
    return net, [tuple(t) for t in p]


@pytest.mark.parametrize("seed", range(3))
def test_counts_with_double_double_decisions_equal_the_exact_engine(seed, monkeypatch):
    net, p = _near_concurrent(seed)
    dom = pw.box(-1, 1, 2)
    ref = pw.enumerate_cells(net, p, dom, progress=False)
    monkeypatch.setattr(graph_engine, "EXACT_UNITS_LIMIT", 0)  # as if the graph were too large for rationals
    calls = []
    real = graph_engine._GraphResolver._dd_sign

    def spy(self, q, H, key=None):
        calls.append(1)
        return real(self, q, H, key)

    monkeypatch.setattr(graph_engine._GraphResolver, "_dd_sign", spy)
    real_at, batched = ddmaps.values_at, []

    def spy_at(*a):
        batched.append(1)
        return real_at(*a)

    monkeypatch.setattr(ddmaps, "values_at", spy_at)
    cx = graph_engine.enumerate_graph(from_mlp(net, p), dom, progress=False)
    assert calls and batched  # float64 could not decide some signs; double-double did (one by one and batched)
    assert cx.regions == ref.regions
    assert sorted(bytes(w) for w in cx.patterns) == sorted(bytes(w) for w in ref.patterns)


def test_exactly_concurrent_lines_are_refused_in_double_double(monkeypatch):
    """Lines that meet exactly in one point cannot be told apart from nearly meeting ones by a bound: refused,
    in one line, never guessed."""
    net = pw.mlp(2, (3,), 1)
    p = [(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]), np.zeros(3)), (np.ones((3, 1)), np.zeros(1))]
    monkeypatch.setattr(graph_engine, "EXACT_UNITS_LIMIT", 0)
    with pytest.raises(pw.PiecewiseError, match="double-double"):
        graph_engine.enumerate_graph(from_mlp(net, p), pw.box(-1, 1, 2), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["cnn", "mlp"])
def test_double_double_maps_give_the_same_cells(case):
    """The search with every chunk's maps in double-double (precision="double-double", what "auto" switches to
    in deep networks) finds the cells of the float64 search and of the staged engine, with output maps equal to
    float64's within their bounds, and far smaller bounds."""
    if case == "cnn":
        g = _cnn()
        x = np.random.default_rng(3).normal(size=50)
        v = np.random.default_rng(4).normal(size=(2, 50))
        dom = pw.plane(np.stack([x, x + 6 * v[0], x + 6 * v[1]]))
    else:
        net = pw.mlp(2, (8, 8, 8), 2, "hardtanh")
        g, dom = from_mlp(net, random_params(net, 4)), pw.box(-2, 2, 2)
    ref = pw.enumerate_cells(g.to_staged(), None, dom, progress=False)
    a = graph_engine.enumerate_graph(g, dom, progress=False, precision="float64")
    b = graph_engine.enumerate_graph(g, dom, progress=False, precision="double-double")
    assert b.engine["precision"] == "double-double" and a.engine["precision"] == "float64"
    assert a.regions == b.regions == ref.regions > 20
    ka, kb = [bytes(w) for w in a.patterns], [bytes(w) for w in b.patterns]
    assert sorted(ka) == sorted(kb)
    oa, ob = np.argsort(ka), np.argsort(kb)
    np.testing.assert_allclose(a.jacobian_u[oa], b.jacobian_u[ob], rtol=1e-12, atol=1e-12)
    assert np.all(b.jacobian_err <= a.jacobian_err)

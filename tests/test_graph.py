"""The network graph: forward passes (NumPy float64, JAX) against plain NumPy references written here,
lowering to stages, grid counting on graphs (MLP results unchanged), bad input."""
import jax
import numpy as np
import pytest

import piecewise as pw
from piecewise.errors import PiecewiseError
from piecewise.graph import GraphBuilder, from_mlp
from piecewise.staged import from_mlp as staged_from_mlp

from bruteforce import count_plane
from conftest import random_params

ACTS = ["relu", "leaky_relu:0.1", "abs", "hardtanh", "maxout:3"]


@pytest.mark.slow
@pytest.mark.parametrize("act", ACTS)
def test_mlp_graph_matches_mlp(act, rng):
    net = pw.mlp(3, (5, 4), 2, act)
    p = random_params(net)
    g = from_mlp(net, p)
    X = rng.normal(size=(20, 3))
    with jax.enable_x64(True):
        y = np.asarray(net.apply(p, X))
        S, S0 = g.to_staged(), staged_from_mlp(net, p)
        np.testing.assert_allclose(g.forward(X), y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(S(X), y, rtol=1e-12, atol=1e-12)
        for a, b in zip(S.states(X), S0.states(X)):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.asarray(g.apply(X.astype(np.float32))), y, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("act", ACTS)
def test_grid_count_graph_equals_mlp(act):
    """Grid counting of an MLP's graph gives the MLP's own count and patterns (the MLP path is unchanged)."""
    net = pw.mlp(2, (8, 8), 1, act)
    p = random_params(net, seed=1)
    dom = pw.box(-2, 2, 2)
    a = pw.count_grid(net, p, dom, 129, return_ids=True)
    b = pw.count_grid(from_mlp(net, p), None, dom, 129, return_ids=True)
    assert a.regions == b.regions
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.patterns, b.patterns)


def _conv_ref(x, W, b, stride, pad, dil, groups):
    """Direct loops: x (C, H, W), pad (top, left, bottom, right)."""
    C, H, Wd = x.shape
    O, Cg, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (pad[0], pad[2]), (pad[1], pad[3])))
    Ho = (xp.shape[1] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (xp.shape[2] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((O, Ho, Wo))
    og = O // groups
    for o in range(O):
        gi = o // og
        for i in range(Ho):
            for j in range(Wo):
                patch = xp[gi * Cg:(gi + 1) * Cg, i * stride[0]:i * stride[0] + dil[0] * (kh - 1) + 1:dil[0],
                           j * stride[1]:j * stride[1] + dil[1] * (kw - 1) + 1:dil[1]]
                y[o, i, j] = np.sum(patch * W[o]) + b[o]
    return y


def _pool_ref(x, k, s, pad, kind, include_pad=True):
    C, H, W = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    valid = np.pad(np.ones((H, W)), pad)
    Ho, Wo = (H + 2 * pad - k) // s + 1, (W + 2 * pad - k) // s + 1
    y = np.zeros((C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            win = xp[:, i * s:i * s + k, j * s:j * s + k]
            if kind == "max":
                y[:, i, j] = win.max((1, 2))
            else:
                n = k * k if include_pad else valid[i * s:i * s + k, j * s:j * s + k].sum()
                y[:, i, j] = win.sum((1, 2)) / n
    return y


@pytest.mark.parametrize("stride,pad,dil,groups", [(1, (1, 1, 1, 1), (1, 1), 1), (2, (0, 1, 2, 1), (1, 2), 2),
                                                   (1, (0, 0, 0, 0), (2, 1), 4)])
def test_conv_pool_forward(stride, pad, dil, groups, rng):
    C, H, W = 4, 7, 6
    Wt = rng.normal(size=(4, C // groups, 3, 2))
    b = rng.normal(size=4)
    gb = GraphBuilder((C, H, W))
    h = gb.conv(gb.input, Wt, b, stride=stride, padding=pad, dilation=dil, groups=groups)
    h1 = gb.max_pool(gb.relu(h), 2, 1, 1)
    h2 = gb.avg_pool(gb.leaky_relu(h, np.linspace(-0.5, 0.5, 4).reshape(4, 1, 1)), 2, 1, 1, count_include_pad=False)
    out = gb.concat([gb.flatten(h1), gb.flatten(h2)], 0)
    g = gb.build(out)
    X = rng.normal(size=(3, C * H * W))
    s2 = (stride, stride)
    refs = []
    for x in X:
        c = _conv_ref(x.reshape(C, H, W), Wt, b, s2, pad, dil, groups)
        sl = np.linspace(-0.5, 0.5, 4).reshape(4, 1, 1)
        refs.append(np.concatenate([_pool_ref(np.maximum(c, 0), 2, 1, 1, "max").ravel(),
                                    _pool_ref(np.where(c > 0, c, sl * c), 2, 1, 1, "avg", False).ravel()]))
    ref = np.stack(refs)
    np.testing.assert_allclose(g.forward(X), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(g.apply(X.astype(np.float32))), ref, rtol=1e-5, atol=1e-5)
    with jax.enable_x64(True):
        np.testing.assert_allclose(g.to_staged()(X), ref, rtol=1e-10, atol=1e-10)


def test_clip_variants_and_residual(rng):
    """Clip with any bounds (hardtanh rescaled), one-sided clips (shifted relus), abs, residual add, concat."""
    gb = GraphBuilder((4,))
    W = rng.normal(size=(4, 4))
    h = gb.dense(gb.input, W, rng.normal(size=4))
    a = gb.clip(h, -0.3, 2.0)
    b_ = gb.clip(h, 0.5, None)
    c = gb.clip(h, None, -0.2)
    d = gb.add(gb.abs(h), a, coefs=(1.0, -2.0))
    out = gb.dense(gb.concat([a, b_, c, d], 0), rng.normal(size=(16, 2)))
    g = gb.build(out)
    X = rng.normal(size=(50, 4)) * 2
    z = X @ W + g.nodes[1].attrs["b"]
    ref_feat = np.concatenate([np.clip(z, -0.3, 2.0), np.maximum(z, 0.5), np.minimum(z, -0.2),
                               np.abs(z) - 2 * np.clip(z, -0.3, 2.0)], 1)
    ref = ref_feat @ g.nodes[-1].attrs["W"]
    np.testing.assert_allclose(g.forward(X), ref, rtol=1e-12, atol=1e-12)
    S = g.to_staged()
    assert [st.activation.name for st in S.stages] == ["hardtanh", "relu", "relu", "abs"]
    with jax.enable_x64(True):
        np.testing.assert_allclose(S(X), ref, rtol=1e-10, atol=1e-10)
        st = S.states(X)
    # the hardtanh stage's states are the clip's pieces
    np.testing.assert_array_equal(st[0], (z >= -0.3).astype(int) + (z > 2.0))


class _NumpyRef:
    """Brute-force reference for a residual net written directly in NumPy: h1 = relu(x W1 + b1);
    h2 = relu(h1 W2 + b2); y = h1 + h2 W3 ... (units: the two relu layers)."""

    def __init__(self, rng):
        self.W1, self.b1 = rng.normal(size=(5, 6)), rng.normal(size=6) * 0.5
        self.W2, self.b2 = rng.normal(size=(6, 6)), rng.normal(size=6) * 0.5
        self.W3, self.b3 = rng.normal(size=(6, 4)), rng.normal(size=4) * 0.5
        self.units = [("sign", 6), ("sign", 6), ("sign", 4)]

    def pre(self, X, force=None):
        z1 = X @ self.W1 + self.b1
        h1 = z1 * (z1 > 0 if force is None else force[0] == 1)
        z2 = h1 @ self.W2 + self.b2
        h2 = z2 * (z2 > 0 if force is None else force[1] == 1)
        r = h1 + h2  # residual
        z3 = r @ self.W3 + self.b3
        return [z1, z2, z3]

    def states(self, pre):
        return [(z > 0).astype(np.int64) for z in pre]

    def graph(self):
        gb = GraphBuilder((5,))
        h1 = gb.relu(gb.dense(gb.input, self.W1, self.b1))
        h2 = gb.relu(gb.dense(h1, self.W2, self.b2))
        r = gb.add(h1, h2)
        h3 = gb.relu(gb.dense(r, self.W3, self.b3))
        return gb.build(gb.dense(h3, np.ones((4, 1))))


@pytest.mark.parametrize("seed", [0, 1])
def test_residual_graph_count_vs_bruteforce(seed):
    ref = _NumpyRef(np.random.default_rng(seed))
    g = ref.graph()
    dom = pw.plane(np.random.default_rng(10 + seed).normal(size=(3, 5)) * 2)
    expected, _ = count_plane(ref, dom.origin, dom.axes, seeds=16)
    grid = pw.count_grid(g, None, dom, 513)
    assert grid.regions <= expected and grid.regions >= 0.8 * expected
    assert pw.regions.enumerate_cells(g.to_staged(), None, dom).regions == expected


def test_pattern_words_and_unpack_staged(rng):
    ref = _NumpyRef(rng)
    g = ref.graph()
    X = rng.normal(size=(30, 5))
    words = np.asarray(pw.pattern_words(g, None, X))
    states = pw.unpack_states(g, words)
    for a, b in zip(states, ref.states(ref.pre(X))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("build,msg", [
    (lambda gb: gb.dense(gb.input, np.ones((3, 2))), "PyTorch's Linear.weight is \\(out, in\\)"),
    (lambda gb: gb.conv(gb.input, np.ones((2, 1, 3, 3))), "input must be \\(C, H, W\\)"),
    (lambda gb: gb.reshape(gb.input, (3, 3)), "cannot reshape"),
    (lambda gb: gb.clip(gb.input, 1.0, 0.0), "min <= max"),
    (lambda gb: gb.maxout(gb.input, 3), "not a multiple"),
    (lambda gb: gb.dense(gb.input, np.full((4, 2), np.nan)), "NaN"),
])
def test_builder_errors(build, msg):
    with pytest.raises(PiecewiseError, match=msg):
        build(GraphBuilder((4,)))


def test_grid_rejects_params_for_graph():
    g = from_mlp(pw.mlp(2, (3,), 1), random_params(pw.mlp(2, (3,), 1)))
    with pytest.raises(PiecewiseError, match="params=None"):
        pw.count_grid(g, (1, 2), pw.box(-1, 1, 2), 9)


def test_exact_entry_points_take_a_graph_as_count_grid_does():
    """enumerate_cells, tiled_count and stats.locate take a Graph (with params=None) like count_grid and the
    homeomorphism check: the same cells as the graph's stages, located by their own interior points."""
    from piecewise.regions import stats
    from piecewise.regions.tiles import tiled_count

    net = pw.mlp(2, (6, 5), 1)
    p = random_params(net, seed=3)
    g = from_mlp(net, p)
    dom = pw.box(-1.5, 1.5, 2)
    cg = pw.enumerate_cells(g, None, dom)
    cs = pw.enumerate_cells(g.to_staged(), None, dom)
    cm = pw.enumerate_cells(net, p, dom)
    assert cg.regions == cs.regions == cm.regions
    assert tiled_count(g, None, dom, 4, progress=False)["regions"] == cm.regions
    assert np.array_equal(stats.locate(cg, cg.interior_points()), np.arange(cg.regions))

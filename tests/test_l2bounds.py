"""Euclidean error bounds of the operator engine (regions/l2bounds.py): the row and operator norms it uses are
upper bounds of the norms of each node's dense matrix (built here from the operator on a basis, the norms from
numpy's SVD), and with them float64 decides the signs of a deep residual CNN whose per-unit bounds alone do
not -- the same cells as double-double maps."""
import numpy as np
import pytest

import piecewise as pw
from piecewise.graph import GraphBuilder
from piecewise.regions import graph_engine
from piecewise.regions.graph_engine import enumerate_graph
from piecewise.regions.l2bounds import norms
from piecewise.regions.opmaps import apply


def _matrix(graph, k, which: int):
    """Dense matrix (n_out, n_in) of the linear part of affine node k in its input ``which`` (others zero)."""
    nd = graph.nodes[k]
    shapes = [graph.nodes[i].shape for i in nd.inputs]
    n = int(np.prod(shapes[which]))
    ins = [np.eye(n).reshape(n, *s) if j == which else np.zeros((n, *s)) for j, s in enumerate(shapes)]
    return apply(nd, ins).reshape(n, -1).T


def _zoo():
    r = np.random.default_rng(3)
    gb = GraphBuilder((4, 7, 6))
    x = gb.input
    a = gb.conv(x, r.normal(size=(6, 4, 3, 3)), r.normal(size=6), padding=1)
    b = gb.conv(x, r.normal(size=(6, 2, 3, 3)), None, stride=2, padding=2, dilation=2, groups=2)
    c = gb.conv(gb.relu(a), r.normal(size=(6, 6, 5, 3)), None, stride=(2, 1), padding=(1, 0))
    d = gb.avg_pool(gb.relu(a), 3, stride=2, padding=1, count_include_pad=False)
    e = gb.scale_shift(d, r.normal(size=(6, 1, 1)), 0.5)
    f = gb.add(gb.relu(e), gb.avg_pool(gb.relu(a), 3, stride=2, padding=1), coefs=[1.0, -2.5])
    size = lambda v: int(np.prod(gb.shape(v)))  # noqa: E731
    h = gb.dense(gb.flatten(f), r.normal(size=(size(f), 5)))
    h2 = gb.dense(gb.concat([gb.flatten(b), gb.flatten(c)]), r.normal(size=(size(b) + size(c), 5)))
    g = gb.global_avg_pool(gb.relu(c))
    return gb.build(gb.add(h, h2, gb.dense(gb.flatten(g), r.normal(size=(6, 5)))))


def test_row_and_operator_norms_bound_every_affine_node():
    graph = _zoo()
    seen = set()
    for k, nd in enumerate(graph.nodes):
        if nd.op in ("input", "act", "max", "const"):
            continue
        for j, (rn, opn) in enumerate(norms(graph, k)):
            A = _matrix(graph, k, j)
            sigma = np.linalg.norm(A, 2)
            assert sigma <= opn, (nd.op, sigma, opn)
            if rn is not None:
                rows = np.linalg.norm(A, axis=1)
                assert np.all(rows <= rn), nd.op
            seen.add(nd.op)
            if nd.op == "conv" and nd.attrs["stride"] == (1, 1):
                assert opn <= 1.5 * sigma  # the circular embedding is close on a 7 x 6 input
    assert {"conv", "avgpool", "scale_shift", "add", "dense", "global_avgpool", "concat", "reshape"} <= seen


def _deep_residual(depth=8, ch=6, seed=0):
    r = np.random.default_rng(seed)
    gb = GraphBuilder((2, 5, 5))
    h = gb.relu(gb.conv(gb.input, r.normal(size=(ch, 2, 3, 3)) * 0.5, r.normal(size=ch) * 0.1, padding=1))
    for _ in range(depth):
        h1 = gb.relu(gb.conv(h, r.normal(size=(ch, ch, 3, 3)) * np.sqrt(2 / (9 * ch)), r.normal(size=ch) * 0.1,
                             padding=1))
        h2 = gb.conv(h1, r.normal(size=(ch, ch, 3, 3)) * np.sqrt(2 / (9 * ch)), r.normal(size=ch) * 0.1, padding=1)
        h = gb.relu(gb.add(h, h2))
    h = gb.dense(gb.flatten(gb.global_avg_pool(h)), r.normal(size=(ch, 3)))
    return gb.build(h)


def _plane(n, seed=0, scale=0.3):
    r = np.random.default_rng(seed + 100)
    x = r.uniform(0, 1, size=n)
    return pw.plane(np.stack([x, x + scale * r.normal(size=n), x + scale * r.normal(size=n)]))


def test_euclidean_bounds_let_float64_decide_a_deep_residual_cnn(monkeypatch):
    g, dom = _deep_residual(), _plane(50, scale=0.01)
    fast = enumerate_graph(g, dom, keep_cells=False, progress=False, precision="auto")
    dd = enumerate_graph(g, dom, keep_cells=False, progress=False, precision="double-double")
    assert fast.engine["precision"] == "float64" and fast.engine["fallback_signs"] == 0
    assert sorted(bytes(w) for w in fast.patterns) == sorted(bytes(w) for w in dd.patterns)
    assert fast.regions == dd.regions > 100
    # the per-unit bounds alone (no norms) leave signs to the fallback on the same net
    monkeypatch.setattr(graph_engine.Program, "norms",
                        lambda self, k: [(None, np.inf) for _ in self.graph.nodes[k].inputs])
    slow = enumerate_graph(g, dom, keep_cells=False, progress=False, precision="float64")
    assert slow.engine["fallback_signs"] > 0
    assert sorted(bytes(w) for w in slow.patterns) == sorted(bytes(w) for w in dd.patterns)

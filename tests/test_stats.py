"""Statistics of exact complexes: the classifier's decision boundary against independent geometry, and
summaries in every dimension."""
import numpy as np
import pytest

import piecewise as pw
from conftest import random_params
from piecewise.regions import stats


def _affine_net(A, c):
    """A 2-input net whose logits are the affine maps x @ A + c on [-1, 1]^2 (hidden units always active)."""
    k = A.shape[1]
    W0 = np.eye(2)
    b0 = np.full(2, 10.0)  # relu(x + 10) = x + 10 on the box
    return pw.mlp(2, (2,), k), ((W0, b0), (A, c - 10.0 * A.sum(0)))


def _segment_in_box(a, c, lo=-1.0, hi=1.0, halfplanes=()):
    """Plain geometry: the part of the line a.x + c = 0 in the box and in the half-planes h.x + e >= 0."""
    p0 = -c * a / (a @ a)
    d = np.array([-a[1], a[0]]) / np.linalg.norm(a)
    t0, t1 = -np.inf, np.inf
    cons = [(np.array([1.0, 0.0]), -lo), (np.array([-1.0, 0.0]), hi), (np.array([0.0, 1.0]), -lo),
            (np.array([0.0, -1.0]), hi)] + list(halfplanes)
    for h, e in cons:  # h.(p0 + t d) + e >= 0
        s, r = h @ d, h @ p0 + e
        if abs(s) < 1e-15:
            if r < 0:
                return 0.0
            continue
        if s > 0:
            t0 = max(t0, -r / s)
        else:
            t1 = min(t1, -r / s)
    return max(t1 - t0, 0.0)


def test_one_output_boundary_is_the_zero_line():
    A = np.array([[0.7], [-1.3]])
    c = np.array([0.2])
    net, params = _affine_net(A, c)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    s = stats.decision_summary(cx)
    assert s["length"] == pytest.approx(_segment_in_box(A[:, 0], c[0]), rel=1e-9)
    assert s["crossing_cells"] == 1


def test_three_logits_boundary_is_three_rays():
    A = np.array([[1.0, -0.5, 0.2], [0.3, 0.9, -1.1]])
    c = np.array([0.1, -0.2, 0.05])
    net, params = _affine_net(A, c)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    ref = 0.0
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        k = 3 - i - j
        ref += _segment_in_box(A[:, i] - A[:, j], c[i] - c[j], halfplanes=[(A[:, i] - A[:, k], c[i] - c[k])])
    s = stats.decision_summary(cx)
    assert s["length"] == pytest.approx(ref, rel=1e-9)
    # the zero set of output 0 alone (what the figure used to draw) is a different curve
    assert abs(_segment_in_box(A[:, 0], c[0]) - ref) > 0.1


@pytest.mark.parametrize("n_out,seed", [(1, 0), (3, 4), (4, 2)])
def test_boundary_of_a_deep_net_is_exact_and_complete(n_out, seed):
    net = pw.mlp(2, (10, 8), n_out)
    params = random_params(net, seed, bias_std=0.3)
    if n_out == 1:  # the level y = 0.5 where y = 0 was: the seed's boundary inside the box
        params = params[:-1] + ((params[-1][0], params[-1][1] + 0.5),)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2))
    db = stats.decision_boundary(cx, detail=True)
    seg = cx.domain.points(db["segments"])  # (S, 2, 2) in x

    def logits(x):
        y = np.asarray(net.apply(tuple((W, b) for W, b in params), x.astype(np.float32)), np.float64)
        return np.c_[y, np.full(len(y), 0.5)] if n_out == 1 else y  # one output: the level y = 0.5

    # on every segment the top two logits tie, and just off it the two reported classes win
    t = np.linspace(0.1, 0.9, 5)
    pts = (seg[:, None, 0] * (1 - t)[None, :, None] + seg[:, None, 1] * t[None, :, None]).reshape(-1, 2)
    y = np.sort(logits(pts), 1)
    assert np.all(y[:, -1] - y[:, -2] <= 1e-4 * (1 + np.abs(y[:, -1])))
    # completeness: every place where a fine grid's argmax changes lies near a reported segment
    g = np.linspace(-1, 1, 201)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1)
    lab = logits(X.reshape(-1, 2)).argmax(1).reshape(201, 201)
    change = np.zeros_like(lab, bool)
    change[:-1] |= lab[:-1] != lab[1:]
    change[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    P = X[change]
    assert len(P) > 0 and len(seg) > 0  # the seeds give a boundary inside the box
    a, b = seg[:, 0], seg[:, 1]
    ab = b - a
    tt = np.clip(np.einsum("pen,en->pe", P[:, None] - a[None], ab) / np.einsum("en,en->e", ab, ab), 0, 1)
    dist = np.linalg.norm(a[None] + tt[..., None] * ab[None] - P[:, None], axis=-1).min(1)
    assert dist.max() <= 2 * (g[1] - g[0])


def test_summary_every_dimension_and_one_d_boundary():
    net = pw.mlp(3, (6,), 2)
    params = random_params(net, 5, bias_std=0.3)
    for dom in (pw.box(-1, 1, 3), pw.plane(np.eye(3)), pw.segment([-1, -1, -1], [1, 1, 1])):
        cx = pw.enumerate_cells(net, params, dom)
        s = stats.summary(cx)
        assert s["regions"] == cx.regions
        assert s["measure_total"] == pytest.approx(dom.measure(), rel=1e-9)
        assert sum(s["vertices_per_cell"].values()) == cx.regions
    # 1-D: boundary points are where the argmax changes along the segment (dense sampling finds them all)
    pts = stats.decision_boundary(cx)
    t = np.linspace(0, 1, 20001)
    y = np.asarray(net.apply(params, dom.points(t[:, None]).astype(np.float32)))
    flips = t[1:][np.argmax(y[1:], 1) != np.argmax(y[:-1], 1)]
    got = np.sort([p[0, 0] for p in pts])
    assert len(got) == len(flips)
    np.testing.assert_allclose(got, flips, atol=1e-4)


def test_one_output_boundary_is_the_level_that_accuracy_uses():
    """A one-output net fitted to 0/1 labels by MSE: the decision boundary is y = 0.5 (piecewise.decision),
    the level train.accuracy thresholds at; every training point lies on the side of the pieces whose class
    predict() gives it (it was 52% on two moons when the boundary was drawn at y = 0)."""
    import jax
    import optax

    from piecewise import decision, train
    from piecewise.regions.stats import _pieces_by_class

    X, y = pw.datasets.playground("xor", 200, seed=0)
    net = pw.mlp(2, (16, 16), 1)
    run = train.fit(net, net.init(key=jax.random.key(0), bias_std=0.1), X, y, optax.adam(1e-2), steps=600)
    params = tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in run[-1]["params"])
    acc = train.accuracy(net, params, X, y)
    assert acc > 0.9
    lo, hi = X.min(0) - 0.1, X.max(0) + 0.1
    cx = pw.enumerate_cells(net, params, pw.box(lo, hi))
    seg = cx.domain.points(np.asarray(stats.decision_boundary(cx)))
    mid = seg.mean(1)
    out = np.asarray(net.apply(params, mid), np.float64)[:, 0]
    np.testing.assert_allclose(out, decision.THRESHOLD, atol=1e-6)
    # the class of the piece holding each training point is the one predict() gives
    geo, parent, cls, ev, _ = _pieces_by_class(cx)
    u = (X - cx.domain.origin) / np.diag(cx.domain.axes) - 0.5  # centred coordinates
    V, n = geo[0], geo[1]
    nxt = (np.arange(V.shape[1])[None, :] + 1) % n[:, None]
    W = np.take_along_axis(V, nxt[..., None], 1)
    from piecewise.staged import from_mlp

    pred = decision.predict(from_mlp(net, params)(np.asarray(X, np.float64)))  # float64
    for x, p in zip(u, pred):
        cross = (W[..., 0] - V[..., 0]) * (x[1] - V[..., 1]) - (W[..., 1] - V[..., 1]) * (x[0] - V[..., 0])
        valid = np.arange(V.shape[1])[None, :] < n[:, None]
        inside = np.all(np.where(valid, cross >= -1e-12, True), 1)
        assert set(cls[inside].tolist()) == {p}
    assert abs(float(np.mean(pred == y)) - acc) <= 1 / len(y)  # (accuracy evaluates in float32)

"""Local complexity: exact counts on 2-D neighbourhoods against dense sampling written here, the sampled
cross-polytope estimate against a NumPy forward written here, and their agreement for one hidden layer."""
import numpy as np
import pytest

import piecewise as pw
from piecewise.errors import PiecewiseError
from piecewise.graph import from_mlp
from piecewise.regions.local_complexity import (exact_local_complexity, local_complexity,
                                                local_complexity_over_training, sampled_local_complexity)

from bruteforce import count_plane
from conftest import random_params


class _MlpRef:
    """A relu MLP in NumPy for the brute-force counter."""

    def __init__(self, params):
        self.params = params
        self.units = [("sign", W.shape[1]) for W, _ in params[:-1]]

    def pre(self, X, force=None):
        h, out = X, []
        for k, (W, b) in enumerate(self.params[:-1]):
            z = h @ W + b
            out.append(z)
            h = z * ((z > 0) if force is None else force[k] == 1)
        return out

    def states(self, pre):
        return [(z > 0).astype(np.int64) for z in pre]


def _relu_states(params, X):
    h, out = X, []
    for W, b in params[:-1]:
        z = h @ W + b
        out.append(z > 0)
        h = np.maximum(z, 0)
    return np.concatenate(out, -1)


def _sample(shape, r, n=401):
    a = np.linspace(-r, r, n)
    A, B = np.meshgrid(a, a)
    P = np.stack([A.ravel(), B.ravel()], 1)
    if shape == "disc":
        P = P[np.linalg.norm(P, axis=1) < r * (1 - 1e-9)]
    elif shape == "diamond":
        P = P[np.abs(P).sum(1) < r * (1 - 1e-9)]
    return P


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["disc", "square", "diamond"])
def test_exact_matches_dense_sampling(shape):
    net = pw.mlp(2, (6, 6), 1)
    p = random_params(net, seed=3)
    rng = np.random.default_rng(0)
    for x in rng.normal(size=(3, 2)):
        regions, units = exact_local_complexity(net, p, x, 0.8, np.eye(2), shape=shape)
        S = _relu_states(p, x + _sample(shape, 0.8))
        sampled_regions = len(np.unique(S, axis=0))
        sampled_units = int(np.sum(S.any(0) & ~S.all(0)))
        square, _ = count_plane(_MlpRef(p), x - 0.8, 1.6 * np.eye(2), seeds=8)
        assert sampled_regions <= regions <= square  # dense sampling may miss slivers
        if shape == "square":
            assert regions == square
        assert units == sampled_units


def test_sampled_estimate_matches_numpy():
    net = pw.mlp(5, (7, 7), 2)
    p = random_params(net, seed=4)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 5))
    D = np.linalg.qr(rng.normal(size=(5, 3)))[0].T  # 3 orthonormal directions
    got = sampled_local_complexity(net, p, X, 0.5, directions=D)
    for x, g in zip(X, got):
        V = np.concatenate([x + 0.5 * D, x - 0.5 * D])
        S = _relu_states(p, V)
        assert g == int(np.sum(S.any(0) & ~S.all(0)))


def test_one_layer_estimate_is_exact():
    """With one hidden layer every boundary is a hyperplane: it crosses the convex diamond iff the vertices
    disagree, so the estimate in the same plane equals the exact number of crossing units."""
    net = pw.mlp(6, (20,), 1)
    p = random_params(net, seed=5)
    X = np.random.default_rng(2).normal(size=(5, 6))
    lc = local_complexity(net, p, X, 1.0, planes=2, shape="diamond", sampled_dim=4, seed=1)
    np.testing.assert_array_equal(lc.exact_units, lc.sampled)
    assert lc.exact_regions.shape == (5, 2) and lc.sampled_nd.shape == (5,)
    assert (lc.exact_regions >= lc.exact_units).all()
    s = lc.summary()
    assert s["fraction_estimate_exact"] == 1.0


def test_graph_and_curve():
    net = pw.mlp(4, (6, 6), 2)
    cks = [from_mlp(net, random_params(net, seed=s)) for s in range(3)]
    X = np.random.default_rng(3).normal(size=(3, 4))
    out = local_complexity_over_training(cks, X, 0.5, steps=[0, 10, 20], planes=1)
    assert out["steps"] == [0, 10, 20] and len(out["exact_regions"]) == 3
    # the MLP and its graph give the same numbers
    a = local_complexity(net, random_params(net, seed=0), X, 0.5, seed=0)
    b = local_complexity(cks[0], None, X, 0.5, seed=0)
    np.testing.assert_array_equal(a.exact_regions, b.exact_regions)
    np.testing.assert_array_equal(a.sampled, b.sampled)


@pytest.mark.parametrize("kw,msg", [(dict(radius=0.0), "radius"), (dict(shape="ball"), "shape"),
                                    (dict(points=np.ones((2, 3))), "points must be")])
def test_errors(kw, msg):
    net = pw.mlp(2, (3,), 1)
    p = random_params(net)
    args = dict(points=np.zeros((1, 2)), radius=0.5, shape="disc")
    args.update(kw)
    with pytest.raises(PiecewiseError, match=msg):
        local_complexity(net, p, args["points"], args["radius"], shape=args["shape"])


def test_the_sampled_states_of_a_graph_do_not_depend_on_the_batch():
    """The sampled estimate's forward runs a few points at a time (bounded memory on image models): the
    states equal those of one pass over all points, max-pool winners included."""
    from piecewise.graph import GraphBuilder
    from piecewise.regions.graph_engine import Program
    from piecewise.regions.local_complexity import _graph_states

    r = np.random.default_rng(5)
    gb = GraphBuilder((2, 6, 6))
    h = gb.relu(gb.conv(gb.input, r.normal(size=(3, 2, 3, 3)), r.normal(size=3) * 0.1, padding=1))
    h = gb.max_pool(h, 2)
    g = gb.build(gb.dense(gb.flatten(h), r.normal(size=(27, 2))))
    prog = Program(g)
    X = r.normal(size=(37, 72))
    whole = _graph_states(g, prog, X, batch=1000)
    assert len(whole) == 2 and all(len(s) == 37 for s in whole)
    assert len({bytes(np.concatenate([s[i].ravel() for s in whole]).astype(np.int8)) for i in range(37)}) > 5
    for b in (1, 4, 32):
        for s, t in zip(_graph_states(g, prog, X, batch=b), whole):
            np.testing.assert_array_equal(s, t)

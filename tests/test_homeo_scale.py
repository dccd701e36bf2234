"""Homeomorphism verdicts do not depend on scale (SCIENCE.md, invariances): multiplying the output by
c != 0, or rescaling the inputs (W0 / s on a box s times larger), changes no verdict, and every "no" carries a
real collision at every scale -- checked here independently: exactly (rationals) for piecewise-linear nets, in
float64 relative to the map's own Jacobian for smooth ones."""
from fractions import Fraction

import numpy as np
import pytest

import piecewise as pw
from piecewise.invertibility import homeomorphism, pl_homeomorphism, relu_layer_injective, verified

from test_invertibility import (CASES, TANH_DEEP, angle_doubling, assert_exact_collision, exact_forward, fold_far,
                                touching_corners)

OUT_SCALES = [1e-12, 1.0, 1e12, -3.0]
IN_SCALES = [1e-12, 1e12]


def scaled_output(params, c):
    *hidden, (W, b) = params
    return (*hidden, (np.asarray(W) * c, np.asarray(b) * c))


def scaled_input(params, s):
    (W0, b0), *rest = params
    return ((np.asarray(W0) / s, b0), *rest)


def pl_nets():
    out = {name: (pw.mlp(2, (4,), 2), p) for name, (p, _) in CASES.items()}
    out["angle doubling"] = angle_doubling()
    out["far fold"] = fold_far(2)
    return out


PL = pl_nets()


def _check(res, expected, params):
    assert res.homeomorphism is expected, res.certificate
    if expected is False:
        assert_exact_collision(params, res.witness)


@pytest.mark.parametrize("name", list(PL))
@pytest.mark.parametrize("where", ["box", "whole"])
def test_pl_verdicts_do_not_depend_on_scale(name, where):
    net, params = PL[name]
    dom = pw.box(-1, 1, 2) if where == "box" else "whole"
    ref = pl_homeomorphism(net, params, dom)
    assert ref.homeomorphism in (True, False)
    for c in OUT_SCALES:
        p = scaled_output(params, c)
        _check(pl_homeomorphism(net, p, dom), ref.homeomorphism, p)
    for s in IN_SCALES:
        p = scaled_input(params, s)
        res = pl_homeomorphism(net, p, pw.box(-s, s, 2) if where == "box" else "whole")
        _check(res, ref.homeomorphism, p)
        if where == "box" and ref.homeomorphism is False:
            assert np.abs(np.r_[res.witness["x1"], res.witness["x2"]]).max() <= s * (1 + 1e-12)


def test_boundary_touch_at_every_scale():
    """The touch is an exact coincidence of two corners' images: scales that are powers of two (about 1e-12 and
    1e12) keep the weights' products exact, so the map itself is the same up to scale; so does -3."""
    params = touching_corners()
    net = pw.mlp(2, (7,), 2)
    for c in (2.0**-40, 1.0, 2.0**40, -3.0):
        p = scaled_output(params, c)
        _check(pl_homeomorphism(net, p, pw.box(-1, 1, 2)), False, p)
    for s in (2.0**-40, 2.0**40):
        p = scaled_input(params, s)
        res = pl_homeomorphism(net, p, pw.box(-s, s, 2))
        _check(res, False, p)
        assert sorted(map(tuple, [res.witness["x1"], res.witness["x2"]])) == [(-s, -s), (s, -s)]


# -- smooth nets ---------------------------------------------------------------------------------------------
def tanh_forward(params, x):
    h = np.asarray(x, float)
    for W, b in params[:-1]:
        h = np.tanh(h @ W + b)
    return h @ params[-1][0] + params[-1][1]


def tanh_jacobian(params, x):
    """dy/dx (n_in, n_out) of a tanh net at x, row convention (independent NumPy)."""
    h, J = np.asarray(x, float), np.eye(len(x))
    for W, b in params[:-1]:
        z = h @ W + b
        J = (J @ W) * (1 - np.tanh(z) ** 2)
        h = np.tanh(z)
    return J @ params[-1][0]


def assert_smooth_collision(params, w):
    """x1 != x2 and their images agree to 1e-8 of what the map's Jacobian would move points this far apart."""
    x1, x2 = np.array(w["x1"]), np.array(w["x2"])
    dx = np.abs(x1 - x2).max()
    assert dx > 1e-6 * max(np.abs(x1).max(), np.abs(x2).max())
    scale = max(np.abs(tanh_jacobian(params, x)).sum(0).max() for x in (x1, x2)) * dx
    assert np.abs(tanh_forward(params, x1) - tanh_forward(params, x2)).max() <= 1e-8 * scale


W0_ISSUE = np.array([[1.0, 0, 1], [0, 1, 1]])
W1_ISSUE = np.array([[1.0, 0], [0, 1], [0.3, 0.2]])
_r = np.random.default_rng(3)
_u = _r.normal(size=(2, 1))
SMOOTH = {
    # the report's injective-looking 2-3-2 net: proven (Gale-Nikaido) at every scale; W1 * 1e-12 gave "false"
    "reported 2-3-2": (pw.mlp(2, (3,), 2, "tanh"), ((W0_ISSUE, np.zeros(3)), (W1_ISSUE, np.zeros(2))), True),
    "square layers": (pw.mlp(2, (2,), 2, "tanh"), ((np.array([[1.0, 0.3], [-0.2, 0.8]]), np.array([0.1, -0.3])),
                                                    (np.array([[0.5, 1.0], [1.0, 0.2]]), np.zeros(2))), True),
    "singular first layer": (pw.mlp(2, (2,), 2, "tanh"), ((_u @ _r.normal(size=(1, 2)), _r.normal(size=2)),
                                                           (_r.normal(size=(2, 2)), np.zeros(2))), False),
    "even in x1 (search)": (pw.mlp(2, (4,), 2, "tanh"),
                            ((np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]), np.array([1.0, 1.0, 0.0, 0.0])),
                             (np.array([[1.0, 0], [1.0, 0], [0, 1.0], [0, 0]]), np.zeros(2))), False),
    "deep injective (undecided)": (pw.mlp(2, (3, 2), 2, "tanh"), TANH_DEEP, None),
}


@pytest.mark.parametrize("name", list(SMOOTH))
def test_smooth_verdicts_do_not_depend_on_the_output_scale(name):
    net, params, expected = SMOOTH[name]
    for c in OUT_SCALES[:3]:
        p = scaled_output(params, c)
        res = homeomorphism(net, p)
        assert res.homeomorphism is expected, (c, res.certificate)
        if expected is False:
            assert_smooth_collision(p, res.witness)


@pytest.mark.parametrize("name", ["reported 2-3-2", "singular first layer", "deep injective (undecided)"])
def test_smooth_verdicts_on_a_box_do_not_depend_on_the_input_scale(name):
    net, params, expected = SMOOTH[name]
    for s in [1.0, *IN_SCALES]:
        p = scaled_input(params, s)
        res = homeomorphism(net, p, pw.box(-s, s, 2))
        assert res.homeomorphism is expected, (s, res.certificate)
        if expected is False:
            assert_smooth_collision(p, res.witness)
            assert np.abs(np.r_[res.witness["x1"], res.witness["x2"]]).max() <= s * (1 + 1e-9)


def test_the_float64_collision_test_is_relative():
    """f(x) = c x is injective at every scale c: no pair of points passes as a collision, however small c is; a real
    collision of f(x) = c (x1^2, x2) passes at every scale."""
    for c in (1e-12, 1.0, 1e12):
        lin = lambda X, c=c: c * np.asarray(X)  # noqa: E731
        jac = lambda X, c=c: np.broadcast_to(c * np.eye(2), (len(X), 2, 2))  # noqa: E731
        assert verified(lin, [0.0, 0.0], [1.0, 0.0]) is None
        assert verified(lin, [0.0, 0.0], [1.0, 0.0], jac) is None
        sq = lambda X, c=c: c * np.stack([np.asarray(X)[:, 0] ** 2, np.asarray(X)[:, 1]], 1)  # noqa: E731
        assert verified(sq, [0.5, 0.2], [-0.5, 0.2]) is not None


def test_relu_layer_injectivity_does_not_depend_on_scale():
    r = np.random.default_rng(7)
    for n, m in [(2, 3), (2, 4), (3, 6), (2, 5)]:
        W, b = r.normal(size=(n, m)), r.normal(size=m) * 0.5
        ref = relu_layer_injective(W, b)
        assert ref.injective in (True, False)
        for s in IN_SCALES:  # inputs s times larger
            res = relu_layer_injective(W / s, b)
            assert res.injective is ref.injective, (n, m, s, res.reason)
            if res.injective is False:
                x1, x2 = np.array(res.witness["x1"]), [Fraction(v) for v in res.witness["x2_exact"]]
                layer = ((W / s, b), (np.eye(m), np.zeros(m)))
                assert exact_forward(layer, x1) == exact_forward(layer, x2)
        for c in (1e-12, 1e12):
            assert relu_layer_injective(W * c, b * c).injective is ref.injective

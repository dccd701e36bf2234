import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import piecewise as pw
from piecewise.cli import main
from piecewise.invertibility import check_layers, homeomorphism, pl_homeomorphism

W_PM = np.c_[np.eye(2), -np.eye(2)]  # x -> (relu(x), relu(-x))


def forward(params, x, slope=0.0):
    """Independent NumPy forward pass (ReLU / leaky ReLU hidden layers)."""
    h = np.asarray(x, float)
    for W, b in params[:-1]:
        z = h @ W + b
        h = np.where(z > 0, z, slope * z)
    return h @ params[-1][0] + params[-1][1]


def angle_doubling():
    """Coherently oriented (det > 0 on all 6 cones) but 2-to-1: the ray at k pi/3 goes to 2k pi/3."""
    net, params = pw.constructions.angle_doubling()
    k = np.arange(6)
    rays = np.stack([np.cos(k * np.pi / 3), np.sin(k * np.pi / 3)], 1)
    # the construction does what it says, checked with the independent forward pass
    np.testing.assert_allclose(forward(params, rays), np.stack([np.cos(2 * k * np.pi / 3), np.sin(2 * k * np.pi / 3)], 1),
                               atol=1e-12)
    return net, params


CASES = {
    "identity via a 4-wide relu layer": (((W_PM, np.array([0.3, -0.2, 0.1, 0.5])), (np.r_[np.eye(2), -np.eye(2)], np.zeros(2))), True),
    "shear via a 4-wide relu layer": (((W_PM, np.zeros(4)), (np.array([[1.0, 0.5], [0, 1], [-1, -0.5], [0, -1]]), np.zeros(2))), True),
    "fold |x1|": (((W_PM, np.zeros(4)), (np.array([[1.0, 0], [0, 1], [1, 0], [0, -1]]), np.zeros(2))), False),
    "collapse relu(x1)": (((W_PM, np.zeros(4)), (np.array([[1.0, 0], [0, 1], [0, 0], [0, -1]]), np.zeros(2))), False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_pl_verdicts_and_witnesses(name):
    params, expected = CASES[name]
    net = pw.mlp(2, (4,), 2)
    res = pl_homeomorphism(net, params)
    assert res["homeomorphism"] is expected
    if not expected:
        w = res["witness"]
        x1, x2 = np.array(w["x1"]), np.array(w["x2"])
        assert np.linalg.norm(x1 - x2) > 1e-6 and np.all(np.abs(np.r_[x1, x2]) <= 1 + 1e-12)
        np.testing.assert_allclose(forward(params, x1), forward(params, x2), atol=1e-9)
    else:
        assert "proven on the box" in res["certificate"]


def test_coherently_oriented_but_not_injective():
    net, params = angle_doubling()
    res = pl_homeomorphism(net, params)
    assert res["coherently_oriented"] is True and res["det_sign_counts"]["negative"] == 0
    assert res["homeomorphism"] is False
    x1, x2 = np.array(res["witness"]["x1"]), np.array(res["witness"]["x2"])
    assert np.linalg.norm(x1 - x2) > 1e-3
    np.testing.assert_allclose(forward(params, x1), forward(params, x2), atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), slope=st.floats(0.05, 0.9))
def test_exact_check_agrees_with_layer_theorem(seed, slope):
    """Square nonsingular leaky-ReLU nets are homeomorphisms (layer theorem); the exact PL check must say so."""
    r = np.random.default_rng(seed)
    params = tuple((r.normal(size=(2, 2)), r.normal(size=2) * 0.3) for _ in range(3))
    net = pw.mlp(2, (2, 2), 2, f"leaky_relu:{slope}")
    assert check_layers(net, params)["certified"]
    res = pl_homeomorphism(net, params)
    assert res["homeomorphism"] is True and res["coherently_oriented"] is True


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_every_no_has_a_valid_witness(seed):
    r = np.random.default_rng(seed)
    params = ((r.normal(size=(2, 3)), r.normal(size=3) * 0.3), (r.normal(size=(3, 2)), r.normal(size=2)))
    net = pw.mlp(2, (3,), 2)
    res = pl_homeomorphism(net, params)
    if res["homeomorphism"] is False and "x1" in (res["witness"] or {}):
        x1, x2 = np.array(res["witness"]["x1"]), np.array(res["witness"]["x2"])
        assert np.linalg.norm(x1 - x2) > 1e-9
        np.testing.assert_allclose(forward(params, x1), forward(params, x2), atol=1e-8)
    # injective => coherently oriented
    if res["homeomorphism"]:
        assert res["coherently_oriented"]


def test_one_and_three_dimensions():
    net1 = pw.mlp(1, (2,), 1)
    mono = ((np.array([[1.0, -1.0]]), np.zeros(2)), (np.array([[2.0], [-0.5]]), np.zeros(1)))  # slopes 2, 0.5
    assert pl_homeomorphism(net1, mono)["homeomorphism"] is True
    vee = ((np.array([[1.0, -1.0]]), np.zeros(2)), (np.array([[1.0], [1.0]]), np.zeros(1)))  # |x|
    res = pl_homeomorphism(net1, vee)
    assert res["homeomorphism"] is False and abs(res["witness"]["x1"][0] + res["witness"]["x2"][0]) < 1e-9
    W = np.c_[np.eye(3), -np.eye(3)]
    net3 = pw.mlp(3, (6,), 3)
    ident = ((W, np.full(6, 0.1)), (np.r_[np.eye(3), -np.eye(3)], np.zeros(3)))
    res = pl_homeomorphism(net3, ident)
    assert res["homeomorphism"] is True and "sampled" in res["certificate"]
    fold = ((W, np.zeros(6)), (np.r_[np.eye(3), np.diag([1.0, -1.0, -1.0])], np.zeros(3)))  # |x1|
    assert pl_homeomorphism(net3, fold)["homeomorphism"] is False


def test_layer_theorem_reports():
    r = np.random.default_rng(0)
    sq = tuple((r.normal(size=(3, 3)), r.normal(size=3)) for _ in range(3))
    assert check_layers(pw.mlp(3, (3, 3), 3, "tanh"), sq)["certified"]
    rep = check_layers(pw.mlp(3, (3, 3), 3, "relu"), sq)
    assert not rep["certified"] and "monotone" in rep["first_failure"]["reason"]
    sing = ((np.array([[1.0, 2.0], [2.0, 4.0]]), np.zeros(2)), (np.eye(2), np.zeros(2)))
    rep = check_layers(pw.mlp(2, (2,), 2, "leaky_relu:0.1"), sing)
    assert rep["first_failure"]["layer"] == 0 and "singular" in rep["first_failure"]["reason"]
    wide = ((r.normal(size=(2, 4)), np.zeros(4)), (r.normal(size=(4, 2)), np.zeros(2)))
    res = homeomorphism(pw.mlp(2, (4,), 2, "tanh"), wide)
    assert res["homeomorphism"] is None and res["witness"]["layer"] == 0
    res = homeomorphism(pw.mlp(3, (3, 3), 3, "tanh"), sq)
    assert res["homeomorphism"] is True and res["certificate"].startswith("layerwise")


def test_cli_homeo(tmp_path, capsys):
    net, params = angle_doubling()
    pw.save_npz(tmp_path / "cone.npz", params)
    assert main(["homeo", "--weights", str(tmp_path / "cone.npz"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["homeomorphism"] is False and d["coherently_oriented"] is True and {"x1", "x2"} <= set(d["witness"])
    pw.save_npz(tmp_path / "id.npz", CASES["identity via a 4-wide relu layer"][0])
    assert main(["homeo", "--weights", str(tmp_path / "id.npz"), "--box", "-2", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["homeomorphism"] is True and d["domain"]["lo"] == [-2.0, -2.0] and d["certificate"]
    pw.save_npz(tmp_path / "rect.npz", ((np.ones((2, 3)), np.zeros(3)), (np.ones((3, 1)), np.zeros(1))))
    assert main(["homeo", "--weights", str(tmp_path / "rect.npz")]) == 2
    err = capsys.readouterr().err
    assert "R^n -> R^n" in err and err.count("\n") == 1


# -- ReLU layer injectivity -----------------------------------------------------------------------------------
from piecewise.invertibility import injective_relu_layer, relu_layer_injective, relu_preimage_is_point  # noqa: E402


def _check_witness(W, b, w):
    x1, x2 = np.array(w["x1"]), np.array(w["x2"])
    assert np.linalg.norm(x1 - x2) > 1e-9
    np.testing.assert_allclose(np.maximum(x1 @ W + b, 0), np.maximum(x2 @ W + b, 0), atol=1e-9)


def test_identity_pair_is_injective():
    W = np.c_[np.eye(3), -np.eye(3)]  # relu(x), relu(-x): injective thanks to ">=" in the spanning criterion
    assert relu_layer_injective(W)["injective"]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_sufficient_construction_is_injective(n):
    r = np.random.default_rng(n)
    W = injective_relu_layer(r.normal(size=(n, n)), r.uniform(0.2, 3, n))
    assert relu_layer_injective(W)["injective"]
    assert all(relu_preimage_is_point(W, np.zeros(2 * n), x) for x in r.normal(size=(20, n)))


@pytest.mark.parametrize("n,m", [(2, 3), (3, 5), (4, 7), (2, 2)])
def test_fewer_than_2n_rows_is_never_injective(n, m):
    r = np.random.default_rng(m)
    W, b = r.normal(size=(n, m)), r.normal(size=m)
    res = relu_layer_injective(W, b)
    assert not res["injective"]
    _check_witness(W, b, res["witness"])
    x = np.array(res["witness"]["x1"])
    assert not relu_preimage_is_point(W, b, x)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), extra=st.integers(0, 3), seed=st.integers(0, 10**6))
def test_random_layers_verdicts_are_consistent(n, extra, seed):
    r = np.random.default_rng(seed)
    m = 2 * n + extra
    W, b = r.normal(size=(n, m)), r.normal(size=m) * 0.5
    res = relu_layer_injective(W, b)
    if not res["injective"]:
        _check_witness(W, b, res["witness"])
    else:  # injective: every sampled point has a single preimage
        assert all(relu_preimage_is_point(W, b, x) for x in r.normal(size=(30, n)) * 3)


# -- log-determinants, inverses, Jacobian fields ---------------------------------------------------------------
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from piecewise.invertibility import invert_layerwise, invert_pl, jacobian_field, log_abs_det  # noqa: E402


def _square_net(act, n=3, depth=2, seed=0, scale=1.0):
    r = np.random.default_rng(seed)
    params = tuple((scale * (np.eye(n) + 0.5 * r.normal(size=(n, n))), 0.3 * r.normal(size=n)) for _ in range(depth + 1))
    return pw.mlp(n, (n,) * depth, n, act), params


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus", "leaky_relu:0.2"])
def test_log_abs_det_matches_slogdet_of_jacfwd(act):
    net, params = _square_net(act)
    x = np.random.default_rng(1).normal(size=(25, 3))
    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(jnp.asarray, params)
        ref = np.array([np.linalg.slogdet(np.asarray(jax.jacfwd(lambda v: net.apply(p, v))(jnp.asarray(xi))))[1] for xi in x])
    np.testing.assert_allclose(log_abs_det(net, params, x), ref, rtol=1e-9, atol=1e-9)


def test_log_abs_det_survives_tanh_saturation():
    net, params = _square_net("tanh", scale=30.0)  # pre-activations of order 30: float32 tanh is exactly +-1
    x = np.random.default_rng(2).normal(size=(10, 3))
    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
    naive = np.array([np.linalg.slogdet(np.asarray(jax.jacfwd(lambda v: net.apply(p32, v))(jnp.asarray(xi, jnp.float32))))[1]
                      for xi in x])
    assert np.isneginf(naive).any()  # the pitfall
    assert np.all(np.isfinite(log_abs_det(net, params, x)))


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus", "leaky_relu:0.2"])
def test_layerwise_inverse_round_trip(act):
    net, params = _square_net(act, seed=3)
    x = np.random.default_rng(4).normal(size=(50, 3))
    with jax.enable_x64(True):
        y = np.asarray(net.apply(jax.tree_util.tree_map(jnp.asarray, params), jnp.asarray(x)))
    np.testing.assert_allclose(invert_layerwise(net, params, y), x, rtol=1e-8, atol=1e-8)


def test_pl_inverse_round_trip():
    params, _ = CASES["shear via a 4-wide relu layer"]
    net = pw.mlp(2, (4,), 2)
    x = np.random.default_rng(5).uniform(-0.9, 0.9, size=(40, 2))
    y = forward(params, x)
    xi, found = invert_pl(net, params, y)
    assert found.all()
    np.testing.assert_allclose(xi, x, atol=1e-10)


def test_jacobian_field_signs():
    params, _ = CASES["fold |x1|"]
    f = jacobian_field(pw.mlp(2, (4,), 2), params, pw.box(-1, 1, 2), 33)
    sign = f["sign"]
    assert np.nanmax(sign) == 1 and np.nanmin(sign) == -1
    assert np.isnan(f["det"][16, :]).all()  # x1 = 0 is a kink: never differentiated there
    net, sq = _square_net("tanh", n=2)
    g = jacobian_field(net, sq, pw.box(-2, 2, 2), 17)
    assert np.all(np.isfinite(g["det"])) and (g["sign"] == g["sign"][0, 0]).all()


def test_det_map_figure(tmp_path):
    from piecewise import plot

    params, _ = CASES["fold |x1|"]
    field = jacobian_field(pw.mlp(2, (4,), 2), params, pw.box(-1, 1, 2), 41)
    path = plot.save(plot.det_map(field), tmp_path / "det.png")
    assert (tmp_path / "det.png").stat().st_size > 1000 and path.endswith("det.png")
    assert np.isinf(field["condition"][np.nan_to_num(field["det"], nan=1.0) == 0]).all()


def test_newton_inverse_and_deformation_figure(tmp_path):
    from piecewise import plot
    from piecewise.invertibility import invert_newton

    net, params = _square_net("tanh", n=2, seed=7)
    x = np.random.default_rng(8).normal(size=(20, 2)) * 0.5
    with jax.enable_x64(True):
        y = np.asarray(net.apply(jax.tree_util.tree_map(jnp.asarray, params), jnp.asarray(x)))
    xi, res = invert_newton(net, params, y, x0=x + 0.05)
    assert res.max() < 1e-10
    np.testing.assert_allclose(xi, x, atol=1e-8)
    np.testing.assert_allclose(xi, invert_layerwise(net, params, y), atol=1e-8)  # two independent inverses agree
    fig = plot.deformation(net, params, layer=1)
    plot.save(fig, tmp_path / "deform.png")
    assert (tmp_path / "deform.png").stat().st_size > 1000


def test_cell_jacobians_match_autodiff():
    from piecewise.invertibility import cell_jacobians

    params, _ = CASES["fold |x1|"]
    net = pw.mlp(2, (4,), 2)
    out = cell_jacobians(net, params, pw.box(-2, 1, 2))
    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(jnp.asarray, params)
        ref = np.stack([np.asarray(jax.jacfwd(lambda v: net.apply(p, v))(jnp.asarray(x))) for x in out["interior_points"]])
    np.testing.assert_allclose(out["jacobian"], ref, atol=1e-12)
    assert sorted(np.sign(out["det"]).tolist()) == [-1.0, -1.0, 1.0, 1.0]


def test_cell_jacobians_in_three_dimensions():
    from piecewise.invertibility import cell_jacobians

    W = np.c_[np.eye(3), -np.eye(3)]
    A = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3], [0.1, 0.0, 1.0]])
    b = np.r_[np.full(3, 0.1), np.full(3, -0.1)]  # relu(x + 0.1) - relu(-x - 0.1) = x + 0.1
    params = ((W, b), (np.r_[A, -A], np.zeros(3)))  # x -> (x + 0.1) @ A: one affine map everywhere
    out = cell_jacobians(pw.mlp(3, (6,), 3), params, pw.box(-1, 2, 3))
    np.testing.assert_allclose(out["jacobian"], np.broadcast_to(A.T, out["jacobian"].shape), atol=1e-12)
    np.testing.assert_allclose(out["det"], np.linalg.det(A), rtol=1e-12)

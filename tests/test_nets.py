import jax
import jax.numpy as jnp
import numpy as np
import pytest

import piecewise as pw
from piecewise.nets import _apply


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.1", "abs", "hardtanh", "maxout:3", "tanh", "sigmoid", "softplus"])
def test_shapes_and_batching(act):
    net = pw.mlp(3, (5, 4), 2, act)
    params = net.init(key=jax.random.key(0), bias_std=0.1)
    for (W, b), (ws, bs) in zip(params, net.param_shapes()):
        assert W.shape == ws and b.shape == bs
    x = jax.random.normal(jax.random.key(1), (7, 3))
    y = net.apply(params, x)
    assert y.shape == (7, 2)
    np.testing.assert_allclose(jax.vmap(lambda xi: net.apply(params, xi))(x), y, rtol=1e-5, atol=1e-6)
    zs = net.preactivations(params, x)
    k = 3 if act.startswith("maxout") else None
    assert [z.shape for z in zs] == [(7, 5, k) if k else (7, 5), (7, 4, k) if k else (7, 4)]


def test_forward_matches_numpy():
    net = pw.mlp(3, (6, 5), 2, "leaky_relu:0.2")
    params = net.init(key=jax.random.key(3), bias_std=0.5)
    x = np.random.default_rng(0).normal(size=(11, 3))
    h = x
    for W, b in params[:-1]:
        z = h @ np.asarray(W) + np.asarray(b)
        h = np.where(z > 0, z, 0.2 * z)
    ref = h @ np.asarray(params[-1][0]) + np.asarray(params[-1][1])
    np.testing.assert_allclose(net.apply(params, x), ref, rtol=1e-5, atol=1e-5)


def test_maxout_forward_matches_numpy():
    net = pw.mlp(2, (4,), 1, "maxout:3")
    params = net.init(key=jax.random.key(4), bias_std=0.5)
    x = np.random.default_rng(1).normal(size=(9, 2))
    W, b = (np.asarray(a) for a in params[0])
    h = np.max(np.einsum("mi,ijk->mjk", x, W) + b, axis=-1)
    ref = h @ np.asarray(params[1][0]) + np.asarray(params[1][1])
    np.testing.assert_allclose(net.apply(params, x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scheme,fan", [("he", lambda i, o: 2 / i), ("lecun", lambda i, o: 1 / i),
                                        ("glorot", lambda i, o: 2 / (i + o))])
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_init_variance(scheme, fan, dist):
    net = pw.mlp(400, (300,), 1)
    W, b = net.init(key=jax.random.key(5), scheme=scheme, distribution=dist)[0]
    var = float(jnp.var(W))
    # 120,000 samples: the sample variance is within 2% of the target with overwhelming probability
    assert var == pytest.approx(fan(400, 300), rel=0.02)
    assert float(jnp.max(jnp.abs(b))) == 0.0
    if dist == "uniform":
        assert float(jnp.max(jnp.abs(W))) <= (3 * fan(400, 300)) ** 0.5 + 1e-6


def test_bias_std():
    net = pw.mlp(2, (20000,), 1)
    b = net.init(key=jax.random.key(6), bias_std=0.1)[0][1]
    assert float(jnp.std(b)) == pytest.approx(0.1, rel=0.03)


@pytest.mark.slow
def test_ensemble_by_vmap_over_keys():
    net = pw.mlp(2, (8, 8), 1)
    keys = jax.random.split(jax.random.key(0), 5)
    stacked = jax.vmap(lambda k: net.init(key=k, bias_std=0.1))(keys)
    assert stacked[0][0].shape == (5, 2, 8)
    x = jnp.ones((3, 2))
    ys = jax.vmap(net.apply, in_axes=(0, None))(stacked, x)
    assert ys.shape == (5, 3, 1)
    one = net.init(key=keys[2], bias_std=0.1)
    np.testing.assert_allclose(ys[2], net.apply(one, x), rtol=1e-6)
    assert not np.allclose(ys[0], ys[1])


def test_no_recompilation_for_same_shapes():
    net = pw.mlp(2, (7, 3), 1)
    params = net.init(key=jax.random.key(0))
    net.apply(params, jnp.ones((4, 2)))
    before = _apply._cache_size()
    for s in range(3):
        net.apply(net.init(key=jax.random.key(s)), jnp.ones((4, 2)) * s)
    assert _apply._cache_size() == before


@pytest.mark.parametrize("kwargs", [dict(scheme="xavier"), dict(distribution="cauchy"), dict(bias_std=-1.0)])
def test_bad_init(kwargs):
    with pytest.raises(pw.PiecewiseError):
        pw.mlp(2, (3,), 1).init(key=jax.random.key(0), **kwargs)


def test_bad_spec():
    with pytest.raises(pw.PiecewiseError):
        pw.mlp(2, (3, 0), 1)
    with pytest.raises(pw.PiecewiseError):
        pw.mlp(0, (3,), 1)


# -- validation and precision (issue #18) --------------------------------------------------------------
@pytest.mark.parametrize("bad, needle", [
    (lambda p, x: (p[:-1], x), "expected 3 (W, b) pairs"),
    (lambda p, x: (((p[0][0][:, :3], p[0][1]),) + p[1:], x), "W0 has shape"),
    (lambda p, x: (p[:1] + ((p[1][0], p[1][1][:2]),) + p[2:], x), "b1 has shape"),
    (lambda p, x: (p, x[:, :1]), "x has shape (4, 1), expected (..., 2)"),
    (lambda p, x: ((p[0][0],) + p[1:], x), "must be a (W, b) pair"),
])
@pytest.mark.parametrize("method", ["apply", "preactivations", "hidden"])
def test_forward_checks_shapes_with_one_line_errors(bad, needle, method):
    """Before issue #18 a wrong shape surfaced as JAX's TypeError (a traceback on the command line)."""
    net = pw.mlp(2, (5, 4), 1)
    params, x = bad(net.init(key=jax.random.key(0)), jnp.ones((4, 2)))
    with pytest.raises(pw.PiecewiseError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        getattr(net, method)(params, x)


def test_shape_checks_do_not_cost_a_trace_per_call():
    net = pw.mlp(2, (5, 4), 1)
    params = net.init(key=jax.random.key(0))
    net.apply(params, jnp.ones((3, 2)))
    before = _apply._cache_size()
    for _ in range(3):
        net.apply(params, jnp.ones((3, 2)))
    assert _apply._cache_size() == before


def test_precision_reaches_the_products():
    net = pw.mlp(2, (5,), 1, "maxout:2")
    params = net.init(key=jax.random.key(0))
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    for precision, want in ((None, (None, None)), (jax.lax.Precision.HIGHEST, highest)):
        closed = jax.make_jaxpr(lambda p, x: net.apply(p, x, precision=precision))(params, jnp.ones((3, 2)))
        inner = [e for e in closed.jaxpr.eqns if "jaxpr" in e.params][0].params["jaxpr"].jaxpr
        precs = [e.params["precision"] for e in inner.eqns if e.primitive.name == "dot_general"]
        assert len(precs) == 2 and all((p or (None, None)) == want for p in precs), precs
    np.testing.assert_allclose(net.apply(params, jnp.ones((3, 2)), precision=jax.lax.Precision.HIGHEST),
                               net.apply(params, jnp.ones((3, 2))), rtol=1e-6)


@pytest.mark.parametrize("dtype, box, ok", [
    (np.float64, 1e40, True), (np.float32, 1e40, False), (np.float32, 1e30, True), (np.float64, 1e60, False),
])
def test_check_magnitudes_per_dtype(dtype, box, ok):
    from piecewise.validate import check_magnitudes

    net = pw.mlp(2, (4,), 1)
    params = tuple((np.eye(2, 4), np.zeros(4)) for _ in range(1)) + ((np.ones((4, 1)) * 1e-3, np.zeros(1)),)
    domain = pw.box(-box, box, 2)
    if ok:
        check_magnitudes(net, params, domain, dtype)
    else:
        with pytest.raises(pw.PiecewiseError, match="overflow"):
            check_magnitudes(net, params, domain, dtype)

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import piecewise as pw
from piecewise.patterns import forward_states, n_words, pack_states, unpack_states
from piecewise.numerics import rtol
from conftest import random_params


@settings(max_examples=40, deadline=None)
@given(act=st.sampled_from(["relu", "hardtanh", "maxout:3", "maxout:5", "maxout:9"]),
       widths=st.lists(st.integers(1, 40), min_size=1, max_size=4), seed=st.integers(0, 2**31))
@pytest.mark.slow
def test_pack_unpack_round_trip(act, widths, seed):
    net = pw.mlp(2, widths, 1, act)
    r = np.random.default_rng(seed)
    states = [r.integers(0, net.activation.n_states, (13, w)) for w in widths]
    words = np.asarray(pack_states(net, states))
    assert words.shape == (13, n_words(net)) and words.dtype == np.uint32
    np.testing.assert_array_equal(words, pack_states(net, states, np))
    for a, b in zip(unpack_states(net, words), states):
        np.testing.assert_array_equal(a, b)


def test_distinct_states_give_distinct_words():
    net = pw.mlp(2, (33, 31), 1)
    r = np.random.default_rng(0)
    s = [r.integers(0, 2, (1, w)) for w in net.widths]
    base = np.asarray(pack_states(net, s))
    for layer in range(2):
        for unit in range(net.widths[layer]):
            t = [a.copy() for a in s]
            t[layer][0, unit] ^= 1
            assert not np.array_equal(np.asarray(pack_states(net, t)), base)


def test_pattern_words_match_manual_signs():
    net = pw.mlp(2, (5, 4), 1)
    params = random_params(net, 0)
    x = np.random.default_rng(1).uniform(-1, 1, (50, 2))
    h, bits = x, []
    for W, b in params[:-1]:
        z = h @ W + b
        bits.append((z > 0).astype(int))
        h = np.maximum(z, 0)
    manual = np.concatenate(bits, axis=1)
    got = np.concatenate(unpack_states(net, pw.pattern_words(net, params, x)), axis=1)
    np.testing.assert_array_equal(got, manual)


def test_classify_rejects_points_on_boundaries():
    net = pw.mlp(2, (3, 3), 1)
    params = list(random_params(net, 0))
    params[0] = (params[0][0], np.zeros(3))  # bias-free first layer: all three lines pass through 0
    x = np.array([[0.0, 0.0], [0.3, 0.2]])
    _, valid = pw.classify(net, params, x, np.eye(2))
    assert valid.tolist() == [False, True]


def test_classify_keeps_flat_units():
    # unit 2 of layer 2 copies relu(unit 1 of layer 1): where z1 < 0 it is identically 0 (a flat unit)
    W0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    b0 = np.array([0.0, 0.25])
    W1 = np.array([[1.0, 0.0], [0.0, 0.0]])
    b1 = np.zeros(2)  # second unit of layer 2: weights 0, bias 0 -> a dead unit, identically 0
    params = ((W0, b0), (W1, b1), (np.ones((2, 1)), np.zeros(1)))
    net = pw.mlp(2, (2, 2), 1)
    x = np.array([[-0.5, 0.5], [0.5, 0.5], [-0.5, -0.5]])
    words, valid = pw.classify(net, params, x, np.eye(2))
    assert valid.all()
    states = np.concatenate(unpack_states(net, words), axis=1)
    assert states.tolist() == [[0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]]


@pytest.mark.slow
@pytest.mark.parametrize("widths", [(64,) * 8, (128,) * 3])
def test_float32_tolerance_covers_rounding(widths):
    """The claim in piecewise.numerics: a point not flagged by the float32 pass has the float64 pattern."""
    net = pw.mlp(2, widths, 1)
    params = random_params(net, 7, bias_std=0.1)
    x = np.random.default_rng(2).uniform(-1, 1, (20000, 2))
    p32 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), params)
    states, flag = jax.jit(lambda p, x: forward_states(net, p, x, rtol(np.float32)))(p32, x.astype(np.float32))
    w32 = np.asarray(pack_states(net, states))
    w64, valid = pw.classify(net, params, x, np.eye(2))
    ok = ~np.asarray(flag)
    assert ok.mean() > 0.9
    np.testing.assert_array_equal(w32[ok], w64[ok])
    assert valid.all()  # random points are never exactly on a boundary


@pytest.mark.parametrize("widths, n_states", [((5, 7, 30, 3), 2), ((33, 31, 1, 64), 2), ((256, 256), 2),
                                              ((5, 17, 12), 3), ((9, 8), 5)])
def test_the_engines_packer_packs_as_pack_states(widths, n_states):
    """The exact engine packs patterns stage by stage (a byte-packing fast path for two-state units); the
    words must be those of patterns.pack_states, whatever the offsets of the stages within a word."""
    from piecewise.regions._engine import Packer
    from piecewise.patterns import pack_states
    rng = np.random.default_rng(len(widths) + n_states)
    states = [rng.integers(0, n_states, (50, w)).astype(np.int8) for w in widths]
    net = pw.mlp(3, widths, 1, activation={2: "relu", 3: "hardtanh", 5: "maxout:5"}[n_states])
    bits = max(1, (n_states - 1).bit_length())
    p = Packer(sum(widths), bits)
    words = np.zeros((50, p.n_words), np.uint32)
    for s in states:
        words = p.add(words, s)
    np.testing.assert_array_equal(words, np.asarray(pack_states(net, states, np)))


# -- precision and validation (issue #18) ---------------------------------------------------------------
def _dot_precisions(jaxpr):
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(eqn.params["precision"])
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                if hasattr(sub, "eqns"):
                    out += _dot_precisions(sub)
                elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                    out += _dot_precisions(sub.jaxpr)
    return out


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.1", "hardtanh", "maxout:3"])
@pytest.mark.parametrize("graph", [False, True], ids=["mlp", "graph"])
def test_pattern_routines_multiply_at_highest_precision(act, graph):
    """Every matrix product of the pattern routines (float32 pass, float64 classification, packing) carries
    precision=HIGHEST: on GPUs JAX's default is TF32 for float32 (bf16 on TPUs), far coarser than the
    tolerance the boundary test assumes."""
    from piecewise import patterns as P

    net = pw.mlp(2, (5, 4), 1, act)
    params = random_params(net, 2)
    if graph:
        net = P.as_staged(pw.graph.from_mlp(net, params))
        params = P.staged_params(net)
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    x = np.zeros((8, 2))
    dx = np.broadcast_to(np.eye(2), (8, 2, 2))
    with jax.enable_x64(True):
        jaxprs = [jax.make_jaxpr(f, static_argnums=0)(net, params, *args)
                  for f, args in ((P._words_near, (x,)), (P._pattern_words, (x,)), (P._classify, (x, dx)))]
    p32 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), params)
    jaxprs.append(jax.make_jaxpr(lambda p, x: P.forward_states(net, p, x, 1e-6))(p32, x.astype(np.float32)))
    for closed in jaxprs:
        precs = _dot_precisions(closed.jaxpr)
        assert precs and all(p == highest for p in precs), precs


@pytest.mark.parametrize("call, needle", [
    (lambda net, p, x: pw.pattern_words(net, ((p[0][0] * np.nan, p[0][1]),) + p[1:], x), "W0 contains NaN"),
    (lambda net, p, x: pw.pattern_words(net, p[:1], x), "(W, b) pairs"),
    (lambda net, p, x: pw.pattern_words(net, p, x[:, :1]), "shape (m, 2)"),
    (lambda net, p, x: pw.pattern_words(net, p, np.where(x > 0.5, np.inf, x)), "NaN or inf"),
    (lambda net, p, x: pw.pattern_words(net, p, x * 1e38), "use float64"),
    (lambda net, p, x: pw.classify(net, p, np.where(x > 0.5, np.nan, x), np.eye(2)), "NaN or inf"),
    (lambda net, p, x: pw.classify(net, ((p[0][0], p[0][1] * np.inf),) + p[1:], x, np.eye(2)), "b0 contains"),
    (lambda net, p, x: pw.classify(net, p, x, np.eye(3)), "directions"),
    (lambda net, p, x: pw.classify(pw.graph.from_mlp(net, p), p, x, np.eye(2)), "pass params=None"),
])
def test_pattern_entry_points_validate_their_inputs(call, needle):
    """Before issue #18 NaN weights or points gave patterns without a word."""
    net = pw.mlp(2, (5, 4), 1)
    p = random_params(net, 0)
    x = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    with pytest.raises(pw.PiecewiseError, match=needle.replace("(", r"\(").replace(")", r"\)")) as e:
        call(net, p, x)
    assert "\n" not in str(e.value)


def test_pattern_words_in_float64_holds_large_inputs():
    net = pw.mlp(2, (5, 4), 1)
    p = random_params(net, 0, bias_std=0.0)
    x = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    with jax.enable_x64(True):
        big = np.asarray(pw.pattern_words(net, p, x * 1e38))
    np.testing.assert_array_equal(big, np.asarray(pw.pattern_words(net, p, x)))  # ReLU nets, bias-free: scale-free


def _slopes_net(rng):
    """A StagedNet with two sources per stage and per-unit leaky slopes (what a PReLU graph lowers to)."""
    from piecewise.staged import Stage, StagedNet

    A = {0: rng.normal(size=(3, 5))}
    B = {0: rng.normal(size=(3, 4)), 1: rng.normal(size=(5, 4))}
    s1 = Stage(pw.activations.get_activation("leaky_relu:0.1"), A, rng.normal(size=5), None, rng.uniform(-0.5, 0.5, 5))
    s2 = Stage(pw.activations.get_activation("abs"), B, rng.normal(size=4))
    return StagedNet(3, (s1, s2), {1: rng.normal(size=(5, 2)), 2: rng.normal(size=(4, 2))}, rng.normal(size=2))


@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.1", "abs", "hardtanh", "maxout:3", "slopes"])
def test_the_one_forward_pass_of_each_representation_agrees_with_the_others_and_with_autodiff(act):
    """The MLP's pass (nets._forward) and the StagedNet's (staged.walk, NumPy and JAX) give the same outputs, and
    the derivatives they carry to every unit (what classify reads to find flat units) equal JAX's autodiff of
    the pre-activations; the scale bounds they hand on dominate the pre-activations."""
    import jax.numpy as jnp
    from piecewise import patterns as P
    from piecewise.staged import params as sparams, walk

    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 3))
    dirs = rng.normal(size=(3, 2))
    dx = np.broadcast_to(dirs, (16, 3, 2))
    if act == "slopes":
        net = sn = _slopes_net(rng)
    else:
        net = pw.mlp(3, (5, 4), 2, act)
        params = random_params(net, 1)
        sn = pw.graph.from_mlp(net, params).to_staged()
    with jax.enable_x64(True):
        y_np = sn.forward(x)[0]
        y_jx = walk(sn.stages, sparams(sn), jnp.asarray(x), jnp, P.PRECISION)[0]
        np.testing.assert_allclose(np.asarray(y_jx), y_np, rtol=1e-12, atol=1e-12)
        reps = [(sn, sparams(sn), lambda p, x: walk(sn.stages, p, x, jnp, P.PRECISION)[1])]
        if act != "slopes":
            np.testing.assert_allclose(np.asarray(net.apply(params, x)), y_np, rtol=1e-12, atol=1e-12)
            reps.append((net, params, lambda p, x: list(net.preactivations(p, x, precision=P.PRECISION))))
        for rep, p, pre in reps:
            seen = []
            P._walk(rep, p, jnp.asarray(x), jnp.asarray(dx), lambda a, z, dz, s, ds: seen.append((a, z, dz, s, ds)))
            jac = jax.vmap(jax.jacfwd(lambda xi: pre(p, xi[None])))(jnp.asarray(x))  # per layer (m, 1, w[, k], n)
            assert len(seen) == len(jac) == 2
            for l, ((a, z, dz, s, ds), J) in enumerate(zip(seen, jac)):
                J = np.asarray(J)[:, 0] @ dirs  # (m, w[, k], d)
                if is_staged := rep is sn and sn.stages[l].groups is not None:
                    J = J[:, np.asarray(sn.stages[l].groups)]
                np.testing.assert_allclose(np.asarray(dz), J, rtol=1e-10, atol=1e-10, err_msg=f"{rep} layer {l}")
                zmax = np.abs(np.asarray(z)).max(-1) if np.asarray(z).ndim == 3 else np.abs(np.asarray(z))
                assert np.all(np.asarray(s) >= zmax * (1 - 1e-12)), (l, is_staged)
                dzmax = np.abs(np.asarray(dz)).max(-1)
                dzmax = dzmax.max(-1) if dzmax.ndim == 3 else dzmax
                assert np.all(np.asarray(ds) >= dzmax * (1 - 1e-12))

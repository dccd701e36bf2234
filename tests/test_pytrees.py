"""Graph and StagedNet are JAX pytrees (static structure, float array leaves): jit-compiled functions compile
once per structure, not once per object, and give each object's own values."""
import jax
import numpy as np
import pytest

import piecewise as pw
from piecewise import _pytree
from piecewise.graph import GraphBuilder, _jax_apply
from piecewise.patterns import _pattern_words, pack_states, pattern_words
from piecewise.staged import from_mlp, skeleton


def _cnn(seed, ch=4):
    r = np.random.default_rng(seed)
    gb = GraphBuilder((2, 6, 6))
    h = gb.relu(gb.conv(gb.input, r.normal(size=(ch, 2, 3, 3)), r.normal(size=ch), padding=1))
    h = gb.max_pool(h, 2)
    return gb.build(gb.dense(gb.flatten(h), r.normal(size=(ch * 9, 3))))


def _words_ref(net, x):
    st = net.to_staged() if hasattr(net, "to_staged") else net
    _, zs, _ = st.forward(x)
    return np.asarray(pack_states(st, [s.states(z) for s, z in zip(st.stages, zs)], np))


def test_graphs_of_one_structure_share_one_compilation():
    x = np.random.default_rng(5).normal(size=(7, 72))
    before = _jax_apply._cache_size()
    nets = [_cnn(s) for s in range(3)]
    with jax.enable_x64(True):
        ys = [np.asarray(n.apply(x)) for n in nets]
    assert _jax_apply._cache_size() == before + 1  # three graphs, one compilation
    for n, y in zip(nets, ys):
        assert np.allclose(y, n.forward(x), rtol=1e-12, atol=1e-12)  # each with its own weights
    assert not np.allclose(ys[0], ys[1])
    with jax.enable_x64(True):
        _cnn(0, ch=5).apply(x)  # another structure: another compilation
    assert _jax_apply._cache_size() == before + 2


def test_staged_nets_of_one_structure_share_one_compilation_of_the_pattern_kernel():
    x = np.random.default_rng(6).normal(size=(9, 72))
    nets = [_cnn(s).to_staged() for s in (10, 11, 12)]
    before = _pattern_words._cache_size()
    words = [np.asarray(pattern_words(n, None, x)) for n in nets]
    assert _pattern_words._cache_size() == before + 1
    for n, w in zip(nets, words):
        assert np.array_equal(w, _words_ref(n, x))


def test_pytree_leaves_and_structure():
    net = pw.mlp(2, (5, 4), 1)
    a = from_mlp(net, net.init(key=jax.random.PRNGKey(0)))
    b = from_mlp(net, net.init(key=jax.random.PRNGKey(1)))
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb and len(la) == 6  # W, b per stage, output W, b
    c = jax.tree_util.tree_unflatten(ta, lb)
    x = np.random.default_rng(0).normal(size=(4, 2))
    assert np.array_equal(c.forward(x)[0], b.forward(x)[0])
    assert la[0] is a.stages[0].weights[0] and la[-1] is a.out_bias  # the leaves are the net's own arrays
    assert not any(np.any(st.bias) for st in a.stages) and not np.any(a.out_bias)  # He init: zero biases
    scaled = jax.tree_util.tree_map(lambda w: 3.0 * np.asarray(w), a)  # every leaf x 3: relu is homogeneous
    assert np.allclose(scaled.forward(x)[0], 27.0 * a.forward(x)[0], rtol=1e-12, atol=0)
    assert skeleton(a) == skeleton(b) and hash(skeleton(a)) == hash(skeleton(b))
    g = _cnn(0)
    lg, tg = jax.tree_util.tree_flatten(g)
    assert all(np.asarray(v).dtype.kind == "f" for v in lg)
    assert tg == jax.tree_util.tree_structure(_cnn(1)) != jax.tree_util.tree_structure(_cnn(0, ch=5))


def test_structure_compares_arrays_by_content_not_by_digest_alone():
    i = np.arange(12).reshape(3, 4)
    assert _pytree.Frozen(i) == _pytree.Frozen(i.copy())
    j = i.copy()
    j[1, 2] = -1
    assert _pytree.Frozen(i) != _pytree.Frozen(j)
    assert _pytree.Frozen({"g": i, "k": (1, 2.0)}) == _pytree.Frozen({"k": (1, 2.0), "g": i.copy()})
    assert _pytree.Frozen(i) != _pytree.Frozen(i.astype(np.int32))
    with pytest.raises(TypeError):
        _pytree.Frozen([{1, 2}, {"a": set()}])  # an unhashable static value is refused, not guessed

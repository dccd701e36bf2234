import numpy as np
import pytest

import jax.numpy as jnp

import piecewise as pw
from piecewise.activations import get_activation


@pytest.mark.parametrize("name,z,states", [
    ("relu", [-1.0, 0.0, 2.0], [0, 0, 1]),
    ("leaky_relu:0.1", [-1.0, 0.0, 2.0], [0, 0, 1]),
    ("abs", [-1.0, 0.0, 2.0], [0, 0, 1]),
    ("hardtanh", [-2.0, -1.0, 0.0, 1.0, 3.0], [0, 1, 1, 1, 2]),
])
def test_states(name, z, states):
    act = get_activation(name)
    assert np.asarray(act.states(np.asarray(z), np)).tolist() == states


@pytest.mark.parametrize("name,z,out", [
    ("relu", [-1.0, 2.0], [0.0, 2.0]),
    ("leaky_relu:0.1", [-1.0, 2.0], [-0.1, 2.0]),
    ("abs", [-1.0, 2.0], [1.0, 2.0]),
    ("hardtanh", [-3.0, 0.5, 3.0], [-1.0, 0.5, 1.0]),
    ("softplus", [0.0], [np.log(2.0)]),
    ("sigmoid", [0.0], [0.5]),
    ("tanh", [0.0], [0.0]),
])
def test_values(name, z, out):
    np.testing.assert_allclose(np.asarray(get_activation(name)(np.asarray(z, np.float32))), out, rtol=1e-6)


def test_maxout_state_is_argmax():
    act = get_activation("maxout:3")
    z = np.array([[1.0, 3.0, 2.0], [5.0, -1.0, 0.0]])
    assert act.states(z, np).tolist() == [1, 0]
    assert np.asarray(act(z)).tolist() == [3.0, 5.0]
    assert act.n_states == 3 and act.bits == 2


@pytest.mark.parametrize("name,pl,mono,n_states", [
    ("relu", True, False, 2), ("leaky_relu:0.2", True, True, 2), ("leaky_relu:-0.5", True, False, 2),
    ("abs", True, False, 2), ("hardtanh", True, False, 3), ("maxout:4", True, False, 4),
    ("tanh", False, True, None), ("sigmoid", False, True, None), ("softplus", False, True, None),
])
def test_properties(name, pl, mono, n_states):
    act = get_activation(name)
    assert act.piecewise_linear == pl
    assert act.strictly_monotone == mono
    assert act.continuous
    if n_states is None:
        assert act.breakpoints is None
        with pytest.raises(pw.PiecewiseError):
            act.n_states
    else:
        assert act.n_states == n_states


def test_slopes_match_function():
    for name in ("relu", "leaky_relu:0.3", "abs", "hardtanh"):
        act = get_activation(name)
        edges = [-10.0, *act.breakpoints, 10.0]
        for (a, b), slope in zip(zip(edges[:-1], edges[1:]), act.slopes):
            za, zb = a + 0.25 * (b - a), a + 0.75 * (b - a)
            got = (float(act(np.float32(zb))) - float(act(np.float32(za)))) / (zb - za)
            assert got == pytest.approx(slope, abs=1e-5)


@pytest.mark.parametrize("bad", ["swish", "relu:2", "leaky_relu:abc", "maxout", "maxout:1", "", "maxout:x"])
def test_bad_names(bad):
    with pytest.raises(pw.PiecewiseError):
        get_activation(bad)


def test_hashable_and_rank_from_weights():
    assert get_activation("maxout", rank=3) == get_activation("maxout:3")
    assert hash(get_activation("leaky_relu:0.1")) == hash(get_activation("leaky_relu:0.1"))
    with pytest.raises(pw.PiecewiseError):
        get_activation("maxout:2", rank=3)


@pytest.mark.parametrize("name", ["relu", "leaky_relu:0.1", "abs", "hardtanh"])
def test_derivative_is_the_slope_of_the_state_at_every_breakpoint(name):
    act = pw.get_activation(name)
    bps = np.asarray(act.breakpoints)
    z = np.concatenate([bps, bps - 0.25, bps + 0.25])
    st = np.asarray(act.states(jnp.asarray(z)))
    np.testing.assert_allclose(np.asarray(act.derivative(jnp.asarray(z))), np.asarray(act.slopes)[st], rtol=1e-7)

import jax
import numpy as np
import pytest

import piecewise as pw


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_round_trip(tmp_path):
    for act in ["relu", "maxout:3", "hardtanh"]:
        net = pw.mlp(3, (4, 5), 2, act)
        params = net.init(key=jax.random.key(0), bias_std=0.2)
        pw.save_npz(tmp_path / "w.npz", params)
        net2, params2 = pw.load_npz(tmp_path / "w.npz", None if act.startswith("maxout") else act)
        assert net2 == net
        for (W, b), (W2, b2) in zip(params, params2):
            np.testing.assert_array_equal(np.asarray(W, np.float64), W2)
            np.testing.assert_array_equal(np.asarray(b, np.float64), b2)
            assert W2.dtype == np.float64


def _good():
    r = np.random.default_rng(0)
    return dict(W0=r.normal(size=(2, 3)), b0=r.normal(size=3), W1=r.normal(size=(3, 1)), b1=r.normal(size=1))


@pytest.mark.parametrize("mutate,msg", [
    (lambda a: a.pop("b1"), "missing array b1"),
    (lambda a: a.pop("W0"), "missing array W0"),
    (lambda a: a.update(W1=np.ones((4, 1))), "shape mismatch"),
    (lambda a: a.update(b0=np.ones(4)), "b0 has shape"),
    (lambda a: a.update(W0=np.full((2, 3), np.nan)), "NaN or inf"),
    (lambda a: a.update(b1=np.array([np.inf])), "NaN or inf"),
    (lambda a: a.update(x=np.ones(2)), "unexpected array"),
    (lambda a: a.update(W0=np.ones((2, 3, 2)), b0=np.ones((3, 2))), "need --activation maxout"),
    (lambda a: a.update(W0=np.array([["a", "b", "c"]] * 2)), "dtype"),
])
def test_validation_errors(tmp_path, mutate, msg):
    a = _good()
    mutate(a)
    path = _write(tmp_path / "w.npz", **a)
    with pytest.raises(pw.PiecewiseError, match=msg):
        pw.load_npz(path, "relu")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(pw.PiecewiseError, match="not found"):
        pw.load_npz(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(pw.PiecewiseError, match="cannot read"):
        pw.load_npz(bad)


def test_maxout_needs_3d(tmp_path):
    path = _write(tmp_path / "w.npz", **_good())
    with pytest.raises(pw.PiecewiseError, match="3-D"):
        pw.load_npz(path, "maxout:2")


def test_no_hidden_layer(tmp_path):
    path = _write(tmp_path / "w.npz", W0=np.ones((2, 1)), b0=np.zeros(1))
    net, _ = pw.load_npz(path)
    assert net.widths == ()


@pytest.mark.parametrize("act", ["tanh", "leaky_relu:0.123456789", "maxout:3", "hardtanh", "softplus"])
def test_stored_activation_is_used_and_enforced(tmp_path, act):
    net = pw.mlp(2, (3, 4), 2, act)
    params = net.init(key=jax.random.key(1))
    path = tmp_path / "w.npz"
    pw.save_npz(path, params, net)
    with np.load(path) as f:  # the contract: a 0-d string array named 'activation'
        assert f["activation"].shape == () and f["activation"].dtype.kind == "U"
    net2, _ = pw.load_npz(path)  # no activation given: the stored one, not relu
    assert net2.activation == net.activation and net2 == net
    assert pw.load_npz(path, act)[0] == net  # asking for the same one is fine
    with pytest.raises(pw.PiecewiseError, match="stores activation"):
        pw.load_npz(path, "relu")


def test_files_without_activation_keep_the_default(tmp_path):
    np.savez(tmp_path / "w.npz", **_good())
    assert pw.load_npz(tmp_path / "w.npz")[0].activation.name == "relu"
    assert pw.load_npz(tmp_path / "w.npz", "abs")[0].activation.name == "abs"


@pytest.mark.parametrize("bad", [np.array(["relu", "tanh"]), np.array(3.0), np.array("swish")])
def test_bad_stored_activation(tmp_path, bad):
    np.savez(tmp_path / "w.npz", activation=bad, **_good())
    with pytest.raises(pw.PiecewiseError, match="activation"):
        pw.load_npz(tmp_path / "w.npz")

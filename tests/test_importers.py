"""Importers: ONNX (exported from PyTorch, and built with onnx.helper), PyTorch, Flax, Equinox.

References: the framework's own forward pass (round trips to 1e-5 in float32), and an independent exact
count on planes through three inputs (tests/bruteforce.py: PyTorch's functional ops + LPs, no piecewise code).
"""
import io
import json
import warnings

import jax
import numpy as np
import pytest

import piecewise as pw
from piecewise.errors import PiecewiseError
from piecewise.io import load_network, load_onnx

from bruteforce import TorchRef, count_plane

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
nn = torch.nn


class Res(nn.Module):
    """A simple residual block x + body(x)."""

    def __init__(self, *layers):
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)


def _bn(c, seed):
    bn = nn.BatchNorm2d(c)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(0.3 * torch.randn(c, generator=g))
        bn.running_var.copy_(0.5 + torch.rand(c, generator=g))
        bn.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
        bn.bias.copy_(0.2 * torch.randn(c, generator=g))
    return bn


def cnn(seed=0):
    """conv -> BN -> relu -> overlapping max-pool with padding -> conv -> relu -> avg-pool -> dense -> relu -> dense."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), _bn(2, seed), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2, stride=1), nn.Flatten(),
        nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


def res_mlp(seed=0, act=nn.ReLU):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), act(), Res(nn.Linear(8, 6), act(), nn.Linear(6, 8)),
                         Res(nn.Linear(8, 5), act(), nn.Linear(5, 8)), nn.Linear(8, 2)).eval()


MODELS = {
    "cnn": (cnn, (1, 6, 6)),
    "res_mlp": (res_mlp, (5,)),
    "res_mlp_leaky": (lambda s=0: res_mlp(s, lambda: nn.LeakyReLU(0.2)), (5,)),
    "res_mlp_hardtanh": (lambda s=0: res_mlp(s, lambda: nn.Hardtanh(-0.5, 1.5)), (5,)),
}


def export(model, shape, path, dynamo=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros((1, *shape)),), str(path), dynamo=dynamo)
    return path


def torch_forward(model, X, shape):
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32).reshape(-1, *shape)).reshape(len(X), -1).numpy()


def _rel_err(a, b):
    return np.abs(a - b).max() / max(1.0, np.abs(b).max())


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_and_torch_round_trip(tmp_path, name):
    make, shape = MODELS[name]
    model = make()
    X = np.random.default_rng(0).normal(size=(32, int(np.prod(shape)))).astype(np.float32)
    y = torch_forward(model, X, shape)
    for g in (load_onnx(export(model, shape, tmp_path / "m.onnx")), pw.io.from_torch(model, shape)):
        assert g.n_in == X.shape[1] and g.n_out == y.shape[1]
        assert _rel_err(g.forward(X), y) < 1e-5  # float64 graph vs float32 torch
        assert _rel_err(np.asarray(g.apply(X)), y) < 1e-5  # float32 JAX vs float32 torch
        with jax.enable_x64(True):  # Stage.apply evaluates activations with jax.numpy
            assert _rel_err(g.to_staged()(X.astype(np.float64)), y) < 1e-5


@pytest.mark.slow
def test_onnx_dynamo_exporter(tmp_path):
    pytest.importorskip("onnxscript")
    for name in ("cnn", "res_mlp"):
        make, shape = MODELS[name]
        model = make(1)
        X = np.random.default_rng(1).normal(size=(16, int(np.prod(shape)))).astype(np.float32)
        g = load_onnx(export(model, shape, tmp_path / f"{name}.onnx", dynamo=True))
        assert _rel_err(g.forward(X), torch_forward(model, X, shape)) < 1e-5


@pytest.mark.parametrize("name", list(MODELS))
def test_lowering_patterns_match_torch(tmp_path, name):
    """The staged net's states at points equal the states PyTorch's own ops give (relu signs, max-pool winners,
    clip pieces): an exact check of the lowering, independent of any region counting."""
    make, shape = MODELS[name]
    model = make()
    g = load_onnx(export(model, shape, tmp_path / "m.onnx"))
    ref = TorchRef(make(), shape)
    S = g.to_staged()
    X = np.random.default_rng(2).normal(size=(200, S.n_in))
    with jax.enable_x64(True):
        mine = S.states(X)
        out = S(X)
    theirs = ref.states(ref.pre(X))
    assert len(mine) == len(theirs) == len(ref.units)
    for st, (kind, *info), a, b in zip(S.stages, ref.units, mine, theirs):
        if kind == "max":
            np.testing.assert_array_equal(st.groups[np.arange(st.width)[None], a], info[0][np.arange(b.shape[1])[None], b])
        else:
            np.testing.assert_array_equal(a, b)
    # the exporter stores float32 attributes (leaky slope) and folds batch-norm into the conv in float32
    np.testing.assert_allclose(out, ref.forward(X), rtol=1e-6, atol=1e-6)


def _plane_through_inputs(n_in, seed, spread=1.0):
    """A plane through three inputs: a random base point plus ``spread`` times noise each (the CNN's max-pool
    ties make planes through far-apart inputs hold thousands of regions: too slow for the brute force)."""
    r = np.random.default_rng(seed)
    return pw.plane(r.normal(size=(1, n_in)) + spread * r.normal(size=(3, n_in)))


@pytest.mark.parametrize("name,seed,spread", [pytest.param("cnn", 0, 0.3, marks=pytest.mark.slow), ("cnn", 1, 0.12),
                                              ("res_mlp", 0, 1.0),
                                              ("res_mlp_leaky", 1, 1.0), ("res_mlp_hardtanh", 2, 1.0)])
@pytest.mark.slow
def test_exact_count_matches_bruteforce(tmp_path, name, seed, spread):
    make, shape = MODELS[name]
    model = make(seed)
    g = load_onnx(export(model, shape, tmp_path / "m.onnx"))
    dom = _plane_through_inputs(g.n_in, seed, spread)
    expected, _ = count_plane(TorchRef(make(seed), shape), dom.origin, dom.axes, seeds=16)
    grid = pw.count_grid(g, None, dom, 257)
    assert 0 < grid.regions <= expected
    cx = pw.regions.enumerate_cells(g.to_staged(), None, dom)
    assert cx.regions == expected
    assert expected > 5  # a real test: several regions


def test_from_torch_functional_residual():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(12, 2)

        def forward(self, x):
            h = torch.relu(self.a(x))
            r = h + nn.functional.leaky_relu(self.b(h), 0.1) * 0.5 - 1.0
            return self.c(torch.cat([h, torch.clamp(r, min=-0.5)], dim=1))

    torch.manual_seed(3)
    model = Net().eval()
    g = pw.io.from_torch(model)
    X = np.random.default_rng(3).normal(size=(20, 4)).astype(np.float32)
    assert _rel_err(g.forward(X), torch_forward(model, X, (4,))) < 1e-5


def test_from_torch_conv1d_prelu_and_view():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 3, 3, padding=1)
            self.act = nn.PReLU(3)
            self.pool = nn.MaxPool1d(2)
            self.fc = nn.Linear(12, 2)

        def forward(self, x):
            h = self.pool(self.act(self.conv(x)))
            return self.fc(h.view(h.size(0), -1))

    torch.manual_seed(4)
    model = Net().eval()
    with torch.no_grad():
        model.act.weight.copy_(torch.tensor([0.1, -0.3, 0.5]))
    g = pw.io.from_torch(model, (2, 8))
    X = np.random.default_rng(4).normal(size=(20, 16)).astype(np.float32)
    y = torch_forward(model, X, (2, 8))
    assert _rel_err(g.forward(X), y) < 1e-5
    assert _rel_err(np.asarray(g.apply(X)), y) < 1e-5


def test_from_torch_errors():
    with pytest.raises(PiecewiseError, match="Sigmoid.*torch.onnx.export"):
        pw.io.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()))
    with pytest.raises(PiecewiseError, match="input_shape"):
        pw.io.from_torch(nn.Sequential(nn.Conv2d(1, 1, 3)))
    bn = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).train()
    with pytest.raises(PiecewiseError, match="eval"):
        pw.io.from_torch(bn)


# -- ONNX built by hand ------------------------------------------------------------------------------------
def _model(nodes, inits, in_shape, out_shape, opset=17):
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _save(m, path):
    onnx.save(m, str(path))
    return path


def test_onnx_unsupported_operator_one_line(tmp_path):
    from onnx import helper

    m = _model([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Sigmoid", ["h"], ["y"], name="sig")],
               {"W": np.ones((3, 2))}, [1, 3], [1, 2])
    with pytest.raises(PiecewiseError) as e:
        load_onnx(_save(m, tmp_path / "m.onnx"))
    msg = str(e.value)
    assert "unsupported ONNX operator Sigmoid" in msg and "\n" not in msg


@pytest.mark.parametrize("content,msg", [(b"not a model", "cannot read"), (None, "not found")])
def test_onnx_bad_files(tmp_path, content, msg):
    p = tmp_path / "bad.onnx"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(PiecewiseError, match=msg):
        load_onnx(p)


def test_onnx_hand_built_ops(tmp_path):
    """Sub, Mul/Div by constants, Clip (one- and two-sided), Abs, PRelu, Concat, GlobalAveragePool, Reshape,
    Max, against a NumPy forward written here."""
    from onnx import helper

    r = np.random.default_rng(5)
    W = r.normal(size=(3, 2, 3, 3))
    slope = np.array([0.1, -0.2, 0.3]).reshape(3, 1, 1)
    D = r.normal(size=(6, 2))
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c", "slope"], ["p"]),
        helper.make_node("Sub", ["p", "k"], ["s"]),
        helper.make_node("Clip", ["s", "lo", ""], ["cl"]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["ht"]),
        helper.make_node("Abs", ["c"], ["ab"]),
        helper.make_node("Max", ["ab", "ht"], ["mx"]),
        helper.make_node("Concat", ["cl", "mx"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"]),
        helper.make_node("Reshape", ["gap", "shape"], ["flat"]),
        helper.make_node("Div", ["flat", "two"], ["half"]),
        helper.make_node("Gemm", ["half", "D"], ["y"]),
    ]
    inits = {"W": W, "slope": slope, "k": 0.3, "lo": -0.2, "hi": 0.4, "shape": np.array([1, -1]), "two": 2.0, "D": D}
    m = _model(nodes, inits, [1, 2, 5, 5], [1, 2])
    m.graph.initializer[5].CopyFrom(onnx.numpy_helper.from_array(np.array([1, -1], np.int64), "shape"))
    g = load_onnx(_save(m, tmp_path / "m.onnx"))
    X = r.normal(size=(7, 50)).astype(np.float32)
    W32, D32 = W.astype(np.float32).astype(np.float64), D.astype(np.float32).astype(np.float64)
    sl = slope.astype(np.float32).astype(np.float64)

    def ref(x):
        x = x.reshape(2, 5, 5)
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
        c = np.zeros((3, 5, 5))
        for o in range(3):
            for i in range(5):
                for j in range(5):
                    c[o, i, j] = np.sum(xp[:, i:i + 3, j:j + 3] * W32[o])
        p = np.where(c > 0, c, sl * c)
        cl = np.maximum(p - np.float32(0.3), np.float32(-0.2))
        mx = np.maximum(np.abs(c), np.clip(c, np.float32(-0.2), np.float32(0.4)))
        cat = np.concatenate([cl, mx])
        return (cat.mean((1, 2)) / 2) @ D32

    expect = np.stack([ref(x) for x in X.astype(np.float64)])
    np.testing.assert_allclose(g.forward(X), expect, rtol=1e-9, atol=1e-9)
    with jax.enable_x64(True):
        np.testing.assert_allclose(g.to_staged()(X.astype(np.float64)), expect, rtol=1e-9, atol=1e-9)


def test_load_network_dispatch(tmp_path):
    net = pw.mlp(3, (4,), 2, "leaky_relu:0.1")
    params = net.init(key=jax.random.key(0))
    pw.save_npz(tmp_path / "w.npz", params, net)
    n2, p2 = load_network(tmp_path / "w.npz")
    assert n2 == net and len(p2) == 2
    model = res_mlp()
    path = export(model, (5,), tmp_path / "m.onnx")
    g, p = load_network(path)
    assert p is None and isinstance(g, pw.graph.Graph)
    with pytest.raises(PiecewiseError, match="own activations"):
        load_network(path, "relu")
    with pytest.raises(PiecewiseError, match="unknown weights file type"):
        load_network(tmp_path / "w.pt")


# -- Flax and Equinox ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_from_flax_linen_cnn():
    flax = pytest.importorskip("flax")
    import flax.linen as fnn

    class CNN(fnn.Module):
        @fnn.compact
        def __call__(self, x):  # NHWC
            x = fnn.relu(fnn.Conv(4, (3, 3), padding="SAME")(x))
            x = fnn.max_pool(x, (2, 2), strides=(2, 2))
            x = x.reshape((x.shape[0], -1))
            return fnn.Dense(3)(fnn.relu(fnn.Dense(8)(x)))

    model = CNN()
    params = model.init(jax.random.key(0), np.zeros((1, 8, 8, 1), np.float32))
    g = pw.io.from_flax(model, params, (8, 8, 1))
    X = np.random.default_rng(6).normal(size=(10, 64)).astype(np.float32)
    y = np.asarray(model.apply(params, X.reshape(-1, 8, 8, 1)))
    assert _rel_err(g.forward(X), y) < 1e-5


@pytest.mark.slow
def test_from_equinox_mlp_and_cnn():
    eqx = pytest.importorskip("equinox")
    key = jax.random.key(7)
    mlp = eqx.nn.MLP(4, 2, 8, 2, activation=jax.nn.relu, key=key)
    g = pw.io.from_equinox(mlp)
    X = np.random.default_rng(7).normal(size=(10, 4)).astype(np.float32)
    assert _rel_err(g.forward(X), np.asarray(jax.vmap(mlp)(X))) < 1e-5
    k1, k2 = jax.random.split(key)
    cnn_ = eqx.nn.Sequential([eqx.nn.Conv2d(1, 3, 3, padding=1, key=k1), eqx.nn.Lambda(jax.nn.relu),
                              eqx.nn.MaxPool2d(2, 2), eqx.nn.Lambda(jax.numpy.ravel),
                              eqx.nn.Linear(48, 2, key=k2)])
    g = pw.io.from_equinox(cnn_, (1, 8, 8))
    X = np.random.default_rng(8).normal(size=(10, 64)).astype(np.float32)
    y = np.asarray(jax.vmap(lambda x: cnn_(x.reshape(1, 8, 8)))(X))
    assert _rel_err(g.forward(X), y) < 1e-5


def test_cli_counts_onnx_on_a_plane(tmp_path, capsys):
    """The contract: `--weights model.onnx` with `--plane P.npy` (flattened inputs), against the brute force."""
    from piecewise.cli import main

    make, shape = MODELS["res_mlp"]
    path = export(make(0), shape, tmp_path / "m.onnx")
    g = load_onnx(path)
    dom = _plane_through_inputs(g.n_in, 0, 1.0)
    P = np.stack([dom.origin, dom.origin + dom.axes[0], dom.origin + dom.axes[1]])
    np.save(tmp_path / "p.npy", P)
    expected, _ = count_plane(TorchRef(make(0), shape), dom.origin, dom.axes, seeds=16)
    assert main(["count", "--weights", str(path), "--plane", str(tmp_path / "p.npy"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "exact" and d["regions"] == expected and d["network"]["kind"] == "graph"
    assert main(["count", "--weights", str(path), "--activation", "relu"]) == 2
    assert "carries its own activations" in capsys.readouterr().err


class _Abs(nn.Module):
    def forward(self, x):
        return torch.abs(x)


def test_cli_homeo_on_onnx(tmp_path, capsys):
    """x + V relu(W x + b) with Lip < 1 is a homeomorphism (i-ResNet); folding one coordinate with |.| is not,
    and the collision must hold under PyTorch's own forward pass."""
    from piecewise.cli import main

    torch.manual_seed(0)
    W, V = nn.Linear(2, 6), nn.Linear(6, 2)
    with torch.no_grad():
        W.weight *= 0.5 / torch.linalg.matrix_norm(W.weight, 2)
        V.weight *= 0.5 / torch.linalg.matrix_norm(V.weight, 2)
    lip = Res(W, nn.ReLU(), V).eval()
    assert main(["homeo", "--weights", str(export(lip, (1, 2), tmp_path / "lip.onnx")), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["homeomorphism"] is True and "proven" in d["certificate"]

    shift, unshift = nn.Linear(2, 2), nn.Linear(2, 2)
    with torch.no_grad():  # (|x1 - 0.2|, |x2 + 5| - 5): folds x1 at 0.2, leaves x2 alone on the box
        shift.weight.copy_(torch.eye(2)), shift.bias.copy_(torch.tensor([-0.2, 5.0]))
        unshift.weight.copy_(torch.eye(2)), unshift.bias.copy_(torch.tensor([0.0, -5.0]))
    fold = nn.Sequential(shift, _Abs(), unshift).eval()
    path = export(fold, (1, 2), tmp_path / "fold.onnx")
    assert main(["homeo", "--weights", str(path), "--box", "-1", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["homeomorphism"] is False
    with torch.no_grad():
        y = fold.double()(torch.tensor([d["witness"]["x1"], d["witness"]["x2"]], dtype=torch.float64)).numpy()
    assert np.abs(np.array(d["witness"]["x1"]) - d["witness"]["x2"]).max() > 1e-6
    np.testing.assert_allclose(y[0], y[1], atol=1e-9)


def test_cli_tiles_an_onnx_graph(tmp_path, capsys):
    from piecewise.cli import main

    make, shape = MODELS["res_mlp"]
    path = export(make(0), shape, tmp_path / "m.onnx")
    g = load_onnx(path)
    dom = _plane_through_inputs(g.n_in, 0, 1.0)
    np.save(tmp_path / "p.npy", np.stack([dom.origin, dom.origin + dom.axes[0], dom.origin + dom.axes[1]]))
    expected, _ = count_plane(TorchRef(make(0), shape), dom.origin, dom.axes, seeds=16)
    assert main(["count", "--weights", str(path), "--plane", str(tmp_path / "p.npy"), "--tiles", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["tiles"] == 4 and d["regions"] == expected


class _ViewHead(nn.Module):
    """conv -> relu -> x.view(x.size(0), -1) -> dense: a static-batch export writes the batch into a Reshape."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(h.view(h.size(0), -1))


def _export_batch(model, shape, path, batch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros((batch, *shape)),), str(path), dynamo=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn", "view"])
def test_onnx_static_batch_is_read_per_sample(tmp_path, name):
    """A model exported with a static batch of 4 is the same network per sample: read as batch 1, its forward
    pass is PyTorch's on each sample, and (the CNN) its exact count on a plane is the brute force's."""
    make, shape = (lambda s=0: _ViewHead(s).eval(), (1, 6, 6)) if name == "view" else MODELS["cnn"]
    path = _export_batch(make(1), shape, tmp_path / "b4.onnx", 4)
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4  # the export is really static, B = 4
    if name == "view":  # the batch is written into the Reshape's constant shape: [4, -1]
        from onnx import numpy_helper

        consts = [numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node if n.op_type == "Constant"]
        assert any(c.ndim == 1 and c.size == 2 and c[0] == 4 for c in consts)
    g = load_onnx(path)
    assert g.input_shape == shape and g.n_in == int(np.prod(shape))
    X = np.random.default_rng(3).normal(size=(9, g.n_in)).astype(np.float32)
    with torch.no_grad():  # one sample at a time: batch 1 through PyTorch
        ref = np.concatenate([make(1)(torch.as_tensor(x).reshape(1, *shape)).numpy() for x in X])
    assert _rel_err(g.forward(X), ref) < 1e-5
    if name == "cnn":
        dom = _plane_through_inputs(g.n_in, 1, 0.12)
        expected, _ = count_plane(TorchRef(make(1), shape), dom.origin, dom.axes, seeds=16)
        assert expected > 5 and pw.enumerate_cells(g, None, dom).regions == expected


def test_onnx_static_batch_through_the_cli(tmp_path, capsys):
    """`piecewise count` takes the batch-4 export of a residual MLP and gives the brute force's count."""
    from piecewise.cli import main

    make, shape = MODELS["res_mlp"]
    p4 = _export_batch(make(0), shape, tmp_path / "b4.onnx", 4)
    dom = _plane_through_inputs(5, 0, 1.0)
    np.save(tmp_path / "p.npy", np.stack([dom.origin, dom.origin + dom.axes[0], dom.origin + dom.axes[1]]))
    expected, _ = count_plane(TorchRef(make(0), shape), dom.origin, dom.axes, seeds=16)
    assert main(["count", "--weights", str(p4), "--plane", str(tmp_path / "p.npy"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["regions"] == expected and d["network"]["n_in"] == 5

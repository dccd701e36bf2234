import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import piecewise as pw
from piecewise.cli import main
from conftest import assert_png
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


def exact_forward(params, x, slope=0.0):
    """Independent forward pass in exact rationals (ReLU / leaky ReLU hidden layers): a list of Fractions."""
    h = [Fraction(v) if isinstance(v, (int, Fraction)) else Fraction(float(v)) for v in x]
    for i, (W, b) in enumerate(params):
        W, b = np.asarray(W, float), np.asarray(b, float)
        z = [sum(h[k] * Fraction(float(W[k, j])) for k in range(len(h))) + Fraction(float(b[j]))
             for j in range(W.shape[1])]
        h = z if i == len(params) - 1 else [v if v > 0 else Fraction(float(slope)) * v for v in z]
    return h


def assert_exact_collision(params, w, slope=0.0):
    """The witness is a collision in exact arithmetic: f(x1) = f(x2*) for the rationals x2* it gives, x1 != x2*,
    and x2 is x2* rounded."""
    x1 = np.array(w["x1"])
    x2e = [Fraction(v) for v in w["x2_exact"]]
    assert [Fraction(float(v)) for v in x1] != x2e
    assert exact_forward(params, x1, slope) == exact_forward(params, x2e, slope)
    np.testing.assert_array_equal(np.array(w["x2"]), np.array([float(v) for v in x2e]))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("where", ["box", "whole"])
def test_pl_verdicts_and_witnesses(name, where):
    params, expected = CASES[name]
    net = pw.mlp(2, (4,), 2)
    res = pl_homeomorphism(net, params, None if where == "box" else "whole")
    assert res.homeomorphism is expected
    if not expected:
        w = res.witness
        x1, x2 = np.array(w["x1"]), np.array(w["x2"])
        assert np.linalg.norm(x1 - x2) > 1e-6
        if where == "box":
            assert np.all(np.abs(np.r_[x1, x2]) <= 1 + 1e-12)
        np.testing.assert_allclose(forward(params, x1), forward(params, x2), atol=1e-9)
        assert_exact_collision(params, w)
    elif where == "box":
        assert "proven on the box" in res.certificate and res.scope == "box"
        assert res.answer() == "yes on the box [-1, 1]^2 (outside not decided)"
    else:
        assert "proven on the whole input space" in res.certificate and res.scope == "R^n"
        assert res.answer() == "yes (proven on the whole input space)"


@pytest.mark.parametrize("where", [None, "whole"])
def test_coherently_oriented_but_not_injective(where):
    net, params = angle_doubling()
    res = pl_homeomorphism(net, params, where)
    assert res.coherently_oriented is True and res.det_sign_counts["negative"] == 0
    assert res.homeomorphism is False
    x1, x2 = np.array(res.witness["x1"]), np.array(res.witness["x2"])
    assert np.linalg.norm(x1 - x2) > 1e-3
    np.testing.assert_allclose(forward(params, x1), forward(params, x2), atol=1e-9)
    assert_exact_collision(params, res.witness)


def test_whole_space_degree_count(monkeypatch):
    """On R^n a coherently oriented map is decided by the exact preimage count of a generic point: 1 for the
    shear (a homeomorphism), 2 for the angle doubling (degree 2), with the other routes switched off."""
    import piecewise.invertibility.pl as pl

    monkeypatch.setattr(pl, "_find_collision", lambda *a, **k: None)
    res = pl_homeomorphism(pw.mlp(2, (4,), 2), CASES["shear via a 4-wide relu layer"][0], "whole")
    assert res.homeomorphism is True and res.scope == "R^n" and "exactly one preimage" in res.certificate
    net, params = angle_doubling()
    res = pl_homeomorphism(net, params, "whole")
    assert res.homeomorphism is False and "2 preimages" in res.certificate
    assert_exact_collision(params, res.witness)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), slope=st.floats(0.05, 0.9))
def test_exact_check_agrees_with_layer_theorem(seed, slope):
    """Square nonsingular leaky-ReLU nets are homeomorphisms (layer theorem); the exact PL check must say so."""
    r = np.random.default_rng(seed)
    params = tuple((r.normal(size=(2, 2)), r.normal(size=2) * 0.3) for _ in range(3))
    net = pw.mlp(2, (2, 2), 2, f"leaky_relu:{slope}")
    assert check_layers(net, params).certified
    res = pl_homeomorphism(net, params)
    assert res.homeomorphism is True and res.coherently_oriented is True


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_every_no_has_a_valid_witness(seed):
    r = np.random.default_rng(seed)
    params = ((r.normal(size=(2, 3)), r.normal(size=3) * 0.3), (r.normal(size=(3, 2)), r.normal(size=2)))
    net = pw.mlp(2, (3,), 2)
    res = pl_homeomorphism(net, params)
    # a hidden layer of 3 ReLUs on R^2: every verdict is decided, and every "no" carries a verified collision
    assert res.homeomorphism in (True, False)
    if res.homeomorphism is False:
        x1, x2 = np.array(res.witness["x1"]), np.array(res.witness["x2"])
        assert np.linalg.norm(x1 - x2) > 1e-9
        np.testing.assert_allclose(forward(params, x1), forward(params, x2), atol=1e-8)
    else:  # injective => coherently oriented, and no two grid points share an image
        assert res.coherently_oriented and "proven" in res.certificate
        g = np.stack(np.meshgrid(*[np.linspace(-1, 1, 41)] * 2), -1).reshape(-1, 2)
        y = forward(params, g)
        d = np.linalg.norm(y[:, None] - y[None], axis=-1) + np.eye(len(g))
        assert d.min() > 1e-9


def test_one_and_three_dimensions():
    net1 = pw.mlp(1, (2,), 1)
    mono = ((np.array([[1.0, -1.0]]), np.zeros(2)), (np.array([[2.0], [-0.5]]), np.zeros(1)))  # slopes 2, 0.5
    assert pl_homeomorphism(net1, mono).homeomorphism is True
    vee = ((np.array([[1.0, -1.0]]), np.zeros(2)), (np.array([[1.0], [1.0]]), np.zeros(1)))  # |x|
    res = pl_homeomorphism(net1, vee)
    assert res.homeomorphism is False and abs(res.witness["x1"][0] + res.witness["x2"][0]) < 1e-9
    W = np.c_[np.eye(3), -np.eye(3)]
    net3 = pw.mlp(3, (6,), 3)
    ident = ((W, np.full(6, 0.1)), (np.r_[np.eye(3), -np.eye(3)], np.zeros(3)))
    res = pl_homeomorphism(net3, ident)
    # on a 3-D box only sampled targets: sampling never certifies (SCIENCE.md), so undecided, saying what was seen
    assert res.homeomorphism is None and "sampled, not proven" in res.certificate and res.scope == "box, sampled"
    assert res.answer().startswith("undecided")
    res = pl_homeomorphism(net3, ident, "whole")  # on R^3 it is proven: the exact degree count
    assert res.homeomorphism is True and res.answer() == "yes (proven on the whole input space)"
    fold = ((W, np.zeros(6)), (np.r_[np.eye(3), np.diag([1.0, -1.0, -1.0])], np.zeros(3)))  # |x1|
    assert pl_homeomorphism(net3, fold).homeomorphism is False


def test_layer_theorem_reports():
    r = np.random.default_rng(0)
    sq = tuple((r.normal(size=(3, 3)), r.normal(size=3)) for _ in range(3))
    assert check_layers(pw.mlp(3, (3, 3), 3, "tanh"), sq).certified
    rep = check_layers(pw.mlp(3, (3, 3), 3, "relu"), sq)
    assert not rep.certified and "monotone" in rep.first_failure["reason"]
    sing = ((np.array([[1.0, 2.0], [2.0, 4.0]]), np.zeros(2)), (np.eye(2), np.zeros(2)))
    rep = check_layers(pw.mlp(2, (2,), 2, "leaky_relu:0.1"), sing)
    assert rep.first_failure["layer"] == 0 and "singular" in rep.first_failure["reason"]
    res = homeomorphism(pw.mlp(3, (3, 3), 3, "tanh"), sq)
    assert res.homeomorphism is True and res.certificate.startswith("layerwise")


def tanh_forward(params, x):
    """Independent NumPy forward pass of a tanh net."""
    h = np.asarray(x, float)
    for W, b in params[:-1]:
        h = np.tanh(h @ W + b)
    return h @ params[-1][0] + params[-1][1]


def _assert_collision(res, fwd, params):
    assert res.homeomorphism is False, res.certificate
    x1, x2 = np.array(res.witness["x1"]), np.array(res.witness["x2"])
    assert np.abs(x1 - x2).max() > 1e-6
    np.testing.assert_allclose(fwd(params, x1), fwd(params, x2), rtol=1e-9, atol=1e-9)


def test_smooth_singular_first_layer_has_a_collision():
    r = np.random.default_rng(3)
    u = r.normal(size=(2, 1))
    params = ((u @ r.normal(size=(1, 2)), r.normal(size=2)), (r.normal(size=(2, 2)), np.zeros(2)))  # rank 1
    res = homeomorphism(pw.mlp(2, (2,), 2, "tanh"), params)
    _assert_collision(res, tanh_forward, params)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus"])
def test_smooth_narrowing_layer_after_homeomorphic_layers(act):
    # 2 -> 2 (square, nonsingular) -> 1 (narrowing) -> 2: the collision is built by inverting layer 0
    r = np.random.default_rng(4)
    params = ((np.eye(2) + 0.3 * r.normal(size=(2, 2)), 0.2 * r.normal(size=2)), (r.normal(size=(2, 1)), np.zeros(1)),
              (r.normal(size=(1, 2)), np.zeros(2)))
    net = pw.mlp(2, (2, 1), 2, act)
    res = homeomorphism(net, params)
    from piecewise.invertibility.witness import apply64

    _assert_collision(res, lambda p, x: apply64(net, p, np.asarray(x)[None])[0], params)
    assert "layer 1" in res.certificate


def test_smooth_wide_layer_collision_found_by_search():
    # y1 = tanh(x1 + 1) + tanh(1 - x1) is even in x1: (x1, x2) and (-x1, x2) collide; the hidden layer is 2 -> 4
    W0 = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    params = ((W0, np.array([1.0, 1.0, 0.0, 0.0])), (np.array([[1.0, 0], [1.0, 0], [0, 1.0], [0, 0]]), np.zeros(2)))
    res = homeomorphism(pw.mlp(2, (4,), 2, "tanh"), params)
    _assert_collision(res, tanh_forward, params)
    assert "search" in res.certificate


TANH_WIDE = ((np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.zeros(3)),
             (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), np.zeros(2)))  # (tanh x1, tanh x2) via 3 units
TANH_DEEP = ((TANH_WIDE[0][0], np.zeros(3)), (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), np.zeros(2)),
             (np.eye(2), np.zeros(2)))  # (tanh tanh x1, tanh tanh x2): injective, two hidden layers


def test_smooth_undecided_when_nothing_is_found():
    # 2 -> 3 -> 2 -> 2 tanh that is injective: no collision exists and no proof applies (layer 0 is not square,
    # Gale-Nikaido needs one hidden layer), so the answer must stay undecided with the failing layer named,
    # never a guessed "yes" or "no"
    res = homeomorphism(pw.mlp(2, (3, 2), 2, "tanh"), TANH_DEEP)
    assert res.homeomorphism is None and res.witness == {"layer": 0, "reason": "layer 0 is not square (2 -> 3)"}
    assert res.to_json()["witness"]["layer"] == 0 and res.answer().startswith("undecided (")


def test_gale_nikaido_proves_one_hidden_layer():
    """The injective-looking tanh 2-3-2 net of the report, and (tanh x1, tanh x2) through 3 units, are
    proven homeomorphisms onto their images: the Jacobian W1^T D W0^T is a P-matrix for every positive D.
    Independently: the principal minors at random points are positive (this is what the proof asserts)."""
    W0 = np.array([[1.0, 0, 1], [0, 1, 1]])
    W1 = np.array([[1.0, 0], [0, 1], [0.3, 0.2]])
    for params in (((W0, np.zeros(3)), (W1, np.zeros(2))), TANH_WIDE):
        res = homeomorphism(pw.mlp(2, (3,), 2, "tanh"), params)
        assert res.homeomorphism is True and res.scope == "R^n" and "Gale-Nikaido" in res.certificate
        x = np.random.default_rng(0).normal(size=(200, 2)) * 3
        for xi in x:
            d = 1 - np.tanh(xi @ params[0][0]) ** 2
            J = (params[0][0] * d) @ params[1][0]  # dy/dx (row convention)
            assert J[0, 0] > 0 and J[1, 1] > 0 and np.linalg.det(J) > 0
    # not proven where the map is not injective: the even map of the search test below
    W0 = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    even = ((W0, np.array([1.0, 1.0, 0.0, 0.0])), (np.array([[1.0, 0], [1.0, 0], [0, 1.0], [0, 0]]), np.zeros(2)))
    from piecewise.invertibility.smooth import gale_nikaido

    assert gale_nikaido(pw.mlp(2, (4,), 2, "tanh"), even) is None


def test_every_no_is_verified_or_undecided(monkeypatch):
    """With the float64 check made to fail, no route may answer "no": the answer is undecided with a reason."""
    import piecewise.invertibility.pl as pl

    monkeypatch.setattr(pl.ExactPL, "collision", lambda self, *a, **k: None)
    for name in ["fold |x1|", "collapse relu(x1)"]:
        res = pl_homeomorphism(pw.mlp(2, (4,), 2), CASES[name][0])
        assert res.homeomorphism is None and set(res.witness) == {"layer", "reason"}, name
    net, params = angle_doubling()
    res = pl_homeomorphism(net, params)  # coherent; the boundary path finds candidates it cannot verify
    assert res.homeomorphism is None and "boundary" in res.certificate


def test_fold_and_boundary_paths_give_verified_witnesses(monkeypatch):
    import piecewise.invertibility.pl as pl

    monkeypatch.setattr(pl, "_find_collision", lambda *a, **k: None)  # leave only the fold / boundary routes
    res = pl_homeomorphism(pw.mlp(2, (4,), 2), CASES["fold |x1|"][0])
    _assert_collision(res, forward, CASES["fold |x1|"][0])
    assert "fold" in res.certificate
    net, params = angle_doubling()
    res = pl_homeomorphism(net, params)
    _assert_collision(res, forward, params)
    assert "boundary" in res.certificate


def test_auto_box_holds_every_vertex(tmp_path, capsys):
    from piecewise.invertibility import auto_box

    # lines x1 = 0.75 * 4^k (k = 0..7) cross x2 = 0: the farthest vertex is (0.75 * 4^7, 0); growing the box by 4
    # each round found a vertex outside the inner half every time, the bound finds them all at once
    c = 0.75 * 4.0 ** np.arange(8)
    W0 = np.c_[np.tile([[1.0], [0.0]], 8), [[0.0], [1.0]]]
    params = ((W0, np.r_[-c, 0.0]), (np.ones((9, 2)) * np.r_[1.0, 0.5], np.zeros(2)))
    net = pw.mlp(2, (9,), 2)
    dom, found = auto_box(net, params)
    hi = dom.describe()["hi"][0]
    assert found and c[-1] <= hi / 2 < 2 * c[-1]
    W0b = np.c_[np.eye(2), -np.eye(2)]
    dom, found = auto_box(pw.mlp(2, (4,), 2), ((W0b, np.array([0.3, -0.2, 0.1, 0.5])), (np.r_[np.eye(2), -np.eye(2)], np.zeros(2))))
    assert found and dom.describe()["hi"][0] >= 2 * 0.5
    pw.save_npz(tmp_path / "far.npz", params)
    assert main(["homeo", "--weights", str(tmp_path / "far.npz"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["homeomorphism"] is False and d["domain"]["hi"][0] == hi
    assert_exact_collision(params, d["witness"])


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_box_meets_every_region_of_the_plane(seed):
    """Every region of R^2 meets the automatic box: its exact count equals an independent whole-space count (a
    breadth-first search over the region graph by LPs, tests/whole_space.py)."""
    ws = pytest.importorskip("whole_space")
    from piecewise.invertibility import auto_box

    r = np.random.default_rng(seed)
    net = pw.mlp(2, (5, 4), 2)
    params = ((r.normal(size=(2, 5)), r.normal(size=5)), (r.normal(size=(5, 4)), r.normal(size=4)),
              (r.normal(size=(4, 2)), r.normal(size=2)))
    dom, found = auto_box(net, params)
    total = ws.count_whole_space([params[0][0], params[1][0]], [params[0][1], params[1][1]])
    assert found and pw.enumerate_cells(net, params, dom).regions == total
    assert pw.enumerate_cells(net, params, pw.box(-1, 1, 2)).regions < total  # the unit box misses some


def test_auto_box_says_when_it_gave_up(tmp_path, capsys):
    """hardtanh has breakpoints at +-1, so the charts of the outside are not exact: no bound, and the verdict is
    about the box only, which the certificate and the answer say."""
    from piecewise.invertibility import auto_box

    params = ((np.array([[1.0, 0.5], [0.0, 1.0]]), np.array([0.0, 3.0])), (np.eye(2), np.zeros(2)))
    net = pw.mlp(2, (2,), 2, "hardtanh")
    dom, found = auto_box(net, params)
    assert not found
    pw.save_npz(tmp_path / "ht.npz", params, net)
    assert main(["homeo", "--weights", str(tmp_path / "ht.npz"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "only, not on the whole input space" in d["certificate"] and d["scope"] == "box"


def fold_far(n, c=-6.6):
    """f(x) = (g(x1), x2, ..., xn) with g(t) = relu(t - c) + relu(c - t) / 2: a fold at x1 = c (g decreases left
    of c, increases right of it), every other coordinate passed through relu(x) - relu(-x)."""
    W = np.zeros((n, 2 * n))
    b = np.zeros(2 * n)
    W[0, :2] = [1.0, -1.0]
    b[:2] = [-c, c]
    W1 = np.zeros((2 * n, n))
    W1[0, 0], W1[1, 0] = 1.0, 0.5
    for i in range(1, n):
        W[i, 2 * i], W[i, 2 * i + 1] = 1.0, -1.0
        W1[2 * i, i], W1[2 * i + 1, i] = 1.0, -1.0
    return pw.mlp(n, (2 * n,), n), ((W, b), (W1, np.zeros(n)))


@pytest.mark.parametrize("n", [2, 3])
def test_default_box_finds_a_far_fold(tmp_path, capsys, n):
    """The fold at x1 = -6.6 lies outside [-1, 1]^n, where no vertex is (the only vertex is
    (-6.6, 0, ...)); the default verdict must still be "no", with a real collision across the fold."""
    net, params = fold_far(n)
    x = np.zeros(n)
    x[0] = -6.6
    # the construction: g(-6.6 - 1) = g(-6.6 + 0.5)
    assert np.allclose(forward(params, x - np.eye(n)[0]), forward(params, x + 0.5 * np.eye(n)[0]))
    # on [-1, 1]^n it is injective: proven in 2-D; in 3-D only sampled, so undecided there
    assert pl_homeomorphism(net, params).homeomorphism is (True if n == 2 else None)
    pw.save_npz(tmp_path / "fold.npz", params)
    assert main(["homeo", "--weights", str(tmp_path / "fold.npz"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["homeomorphism"] is False and d["coherently_oriented"] is False
    assert d["domain"]["hi"][0] >= 2 * 6.6
    assert_exact_collision(params, d["witness"])
    assert main(["homeo", "--weights", str(tmp_path / "fold.npz")]) == 0
    assert capsys.readouterr().out.startswith("homeomorphism: no (collision witness x1=")


def test_cli_honours_the_stored_activation(tmp_path, capsys):
    r = np.random.default_rng(3)
    u = r.normal(size=(2, 1))
    params = ((u @ r.normal(size=(1, 2)), r.normal(size=2)), (r.normal(size=(2, 2)), np.zeros(2)))
    net = pw.mlp(2, (2,), 2, "tanh")
    pw.save_npz(tmp_path / "t.npz", params, net)
    assert main(["homeo", "--weights", str(tmp_path / "t.npz"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["network"]["activation"] == "tanh" and d["homeomorphism"] is False
    x1, x2 = np.array(d["witness"]["x1"]), np.array(d["witness"]["x2"])
    np.testing.assert_allclose(tanh_forward(params, x1), tanh_forward(params, x2), rtol=1e-9, atol=1e-9)
    assert main(["homeo", "--weights", str(tmp_path / "t.npz"), "--activation", "relu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stores activation tanh" in err


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


def touching_corners():
    """A coherently oriented ReLU map whose image of the box [-1, 1]^2's boundary touches itself at one point.

    Rays from p = (0, -2) in the unimodular directions v = (1,1), (1,2), (0,1), (-1,2), (-1,1) cut the box's angle
    (45 to 135 degrees) into 4 cones; cone i goes linearly onto the cone between w_i and w_{i+1}, w = (1,1),
    (-1,1), (-1,-1), (1,-1), (1,1): a quarter turn each (det 2), so the box wraps once around p and its two
    bottom corners p + (1, 1) and p + (-1, 1), the only points of the box on the extreme rays, both land on
    p + w_0. Hinges: relu(n_j . (x - p)), n_j = perp(v_j); the linear part through relu(x) - relu(-x)."""
    p = np.array([0.0, -2.0])
    V = np.array([(1, 1), (1, 2), (0, 1), (-1, 2), (-1, 1)], float)
    Wi = np.array([(1, 1), (-1, 1), (-1, -1), (1, -1), (1, 1)], float)
    L = [np.c_[Wi[i], Wi[i + 1]] @ np.linalg.inv(np.c_[V[i], V[i + 1]]) for i in range(4)]
    L = [np.round(m) for m in L]  # integer matrices (the fan is unimodular)
    W0, b0, W1 = np.zeros((2, 7)), np.zeros(7), np.zeros((7, 2))
    W0[:, :4] = np.c_[np.eye(2)[:, [0]], -np.eye(2)[:, [0]], np.eye(2)[:, [1]], -np.eye(2)[:, [1]]]
    W1[:4] = [L[0].T[0], -L[0].T[0], L[0].T[1], -L[0].T[1]]
    for j in (1, 2, 3):
        nj = np.array([-V[j][1], V[j][0]])
        W0[:, 3 + j], b0[3 + j] = nj, -nj @ p
        W1[3 + j] = (L[j] - L[j - 1]) @ V[j + 1] / (nj @ V[j + 1])
    return ((W0, b0), (W1, -(p @ L[0].T)))


def test_boundary_touching_at_a_vertex_is_not_simple():
    """the image of the box's boundary touches itself at one point (two corners meet); the 2-D proof
    must not take it for a simple curve."""
    params = touching_corners()
    corners = np.array([[1.0, -1.0], [-1.0, -1.0]])
    assert exact_forward(params, corners[0]) == exact_forward(params, corners[1])  # the touch, exactly
    # coherently oriented (checked by the determinant of every cell's affine map, sampled on a fine grid) and
    # injective inside: no two grid points of the open box share an image
    g = np.stack(np.meshgrid(*[np.linspace(-0.999, 0.999, 41)] * 2), -1).reshape(-1, 2)
    eps = 1e-6
    J = np.stack([(forward(params, g + eps * e) - forward(params, g - eps * e)) / (2 * eps) for e in np.eye(2)], -1)
    assert np.all(np.linalg.det(J) > 0)
    y = forward(params, g)
    assert (np.linalg.norm(y[:, None] - y[None], axis=-1) + np.eye(len(g))).min() > 1e-6
    res = pl_homeomorphism(pw.mlp(2, (7,), 2), params, pw.box(-1, 1, 2))
    assert res.coherently_oriented is True and res.homeomorphism is False, res.certificate
    assert "boundary" in res.certificate
    assert sorted(map(tuple, [res.witness["x1"], res.witness["x2"]])) == [(-1.0, -1.0), (1.0, -1.0)]
    assert_exact_collision(params, res.witness)


def test_cli_box_works_for_smooth_nets(tmp_path, capsys):
    """--box with a tanh net is decided on the box (it exited 2 before), and the certificate says so."""
    r = np.random.default_rng(3)
    u = r.normal(size=(2, 1))
    params = ((u @ r.normal(size=(1, 2)), r.normal(size=2)), (r.normal(size=(2, 2)), np.zeros(2)))
    pw.save_npz(tmp_path / "singular_tanh.npz", params)
    argv = ["homeo", "--weights", str(tmp_path / "singular_tanh.npz"), "--box", "-1", "1", "--activation", "tanh"]
    assert main(argv + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["homeomorphism"] is False and "inside the box [-1, 1]^2" in d["certificate"]
    x1, x2 = np.array(d["witness"]["x1"]), np.array(d["witness"]["x2"])
    assert np.all(np.abs(np.r_[x1, x2]) <= 1) and np.abs(x1 - x2).max() > 1e-6
    np.testing.assert_allclose(tanh_forward(params, x1), tanh_forward(params, x2), rtol=1e-9, atol=1e-12)
    pw.save_npz(tmp_path / "deep.npz", TANH_DEEP, pw.mlp(2, (3, 2), 2, "tanh"))
    assert main(["homeo", "--weights", str(tmp_path / "deep.npz"), "--box", "-2", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("homeomorphism: undecided on the box [-2, 2]^2 (") and "inside the box" in out
    assert main(["homeo", "--weights", str(tmp_path / "deep.npz"), "--box", "2", "-2"]) == 2  # still an error
    assert capsys.readouterr().err.count("\n") == 1


def _leaky_onnx(path, params, alpha):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    (W0, b0), (W1, b1) = params
    nodes = [helper.make_node("Gemm", ["x", "W0", "b0"], ["z"]),
             helper.make_node("LeakyRelu", ["z"], ["h"], alpha=alpha), helper.make_node("Gemm", ["h", "W1", "b1"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, W0.shape[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, W1.shape[1]])],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k)
                           for k, v in {"W0": W0, "b0": b0, "W1": W1, "b1": b1}.items()])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_cli_answer_says_what_was_proven(tmp_path, capsys):
    """the one-word answer says where it was proven, and a leaky net gets the same certificate from
    .npz and from .onnx."""
    def run(*argv):
        assert main(["homeo", *argv]) == 0
        return capsys.readouterr().out.splitlines()[0]

    leaky = ((np.array([[1.0, 0.5], [-0.25, 1.0]]), np.array([0.5, -0.25])),
             (np.array([[1.0, 0], [0.5, 1]]), np.zeros(2)))
    slope = float(np.float32(0.1))  # what an ONNX model stores
    pw.save_npz(tmp_path / "l.npz", leaky, pw.mlp(2, (2,), 2, f"leaky_relu:{slope!r}"))
    _leaky_onnx(tmp_path / "l.onnx", leaky, 0.1)
    outs = []
    for f in ("l.npz", "l.onnx"):
        assert main(["homeo", "--weights", str(tmp_path / f), "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0]["certificate"] == outs[1]["certificate"] and outs[0]["scope"] == outs[1]["scope"] == "R^n"
    assert outs[0]["answer"] == outs[1]["answer"] == "yes (proven on the whole input space)"
    assert run("--weights", str(tmp_path / "l.onnx")) == "homeomorphism: yes (proven on the whole input space)"
    pw.save_npz(tmp_path / "shear.npz", CASES["shear via a 4-wide relu layer"][0])
    assert run("--weights", str(tmp_path / "shear.npz"), "--box", "-1", "1") == \
        "homeomorphism: yes on the box [-1, 1]^2 (outside not decided)"
    assert run("--weights", str(tmp_path / "shear.npz")) == "homeomorphism: yes (proven on the whole input space)"
    pw.save_npz(tmp_path / "fold.npz", CASES["fold |x1|"][0])
    assert run("--weights", str(tmp_path / "fold.npz")).startswith("homeomorphism: no (collision witness x1=[")
    pw.save_npz(tmp_path / "deep.npz", TANH_DEEP, pw.mlp(2, (3, 2), 2, "tanh"))
    assert run("--weights", str(tmp_path / "deep.npz")).startswith("homeomorphism: undecided (")


# -- ReLU layer injectivity -----------------------------------------------------------------------------------
from piecewise.invertibility import injective_relu_layer, relu_layer_injective, relu_preimage_is_point  # noqa: E402


def _check_witness(W, b, w):
    x1, x2 = np.array(w["x1"]), np.array(w["x2"])
    assert np.linalg.norm(x1 - x2) > 1e-9
    np.testing.assert_allclose(np.maximum(x1 @ W + b, 0), np.maximum(x2 @ W + b, 0), atol=1e-9)


def test_identity_pair_is_injective():
    W = np.c_[np.eye(3), -np.eye(3)]  # relu(x), relu(-x): injective thanks to ">=" in the spanning criterion
    assert relu_layer_injective(W).injective


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_sufficient_construction_is_injective(n):
    r = np.random.default_rng(n)
    W = injective_relu_layer(r.normal(size=(n, n)), r.uniform(0.2, 3, n))
    assert relu_layer_injective(W).injective
    assert all(relu_preimage_is_point(W, np.zeros(2 * n), x) for x in r.normal(size=(20, n)))


@pytest.mark.parametrize("n,m", [(2, 3), (3, 5), (4, 7), (2, 2)])
def test_fewer_than_2n_rows_is_never_injective(n, m):
    r = np.random.default_rng(m)
    W, b = r.normal(size=(n, m)), r.normal(size=m)
    res = relu_layer_injective(W, b)
    assert not res.injective
    _check_witness(W, b, res.witness)
    x = np.array(res.witness["x1"])
    assert not relu_preimage_is_point(W, b, x)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), extra=st.integers(0, 3), seed=st.integers(0, 10**6))
def test_random_layers_verdicts_are_consistent(n, extra, seed):
    r = np.random.default_rng(seed)
    m = 2 * n + extra
    W, b = r.normal(size=(n, m)), r.normal(size=m) * 0.5
    res = relu_layer_injective(W, b)
    assert res.injective in (True, False)  # well-conditioned random layers are always decided
    if not res.injective:
        _check_witness(W, b, res.witness)
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


@pytest.mark.slow
def test_det_map_figure(tmp_path):
    from piecewise import plot

    params, _ = CASES["fold |x1|"]
    field = jacobian_field(pw.mlp(2, (4,), 2), params, pw.box(-1, 1, 2), 41)
    path = plot.save(plot.det_map(field), tmp_path / "det.png")
    assert path.endswith("det.png")
    assert_png(tmp_path / "det.png", min_colours=8)
    assert np.isinf(field["condition"][np.nan_to_num(field["det"], nan=1.0) == 0]).all()


@pytest.mark.slow
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
    assert_png(tmp_path / "deform.png", min_colours=4)


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

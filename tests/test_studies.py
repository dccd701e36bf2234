"""The seed-article studies: the measures against closed forms, and each effect on the quick settings (those of
the studies the notebooks run in tests/study_checks.py, checked on the notebooks' results)."""
import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from piecewise.errors import PiecewiseError
from piecewise.studies import STUDIES, run_study
from piecewise.studies import condensation as cond
from piecewise.studies import multiscale as ms
from piecewise.studies import spectral, transforms, vector_field
from piecewise.studies.cli import add_run_parser, run_command


def _run(name, tmp_path):
    out = tmp_path / name
    res = run_study(name, quick=True, out=str(out), progress=False)
    on_disk = json.loads((out / f"{name}.json").read_text())
    assert on_disk["study"] == name
    assert any(f.endswith(".png") and (out / f).stat().st_size > 0 for f in res["figures"])
    return on_disk


# -- measures against closed forms ------------------------------------------------------------------------
def test_dft_relative_error_on_a_known_signal():
    n = 64
    j = np.arange(n)
    f = 2.0 * np.sin(2 * np.pi * 3 * j / n) + np.cos(2 * np.pi * 5 * j / n) + 0.1 * np.sin(2 * np.pi * 11 * j / n)
    # h misses 15% of the k=3 sine, has the k=5 part exact, and adds a k=7 part (which no peak sees)
    h = 1.7 * np.sin(2 * np.pi * 3 * j / n) + np.cos(2 * np.pi * 5 * j / n) + 0.5 * np.sin(2 * np.pi * 7 * j / n)
    assert spectral.peak_frequencies(f, 2).tolist() == [3, 5]
    assert spectral.peak_frequencies(f, 3).tolist() == [3, 5, 11]
    d = spectral.relative_error(h, f, [3, 5, 11])
    np.testing.assert_allclose(d, [0.3 / 2.0, 0.0, 1.0], atol=1e-12)
    # leading axes: one row per recorded step
    d2 = spectral.relative_error(np.stack([np.zeros(n), h, f]), f, [3, 5])
    np.testing.assert_allclose(d2, [[1, 1], [0.15, 0], [0, 0]], atol=1e-12)


def test_converged_step_table():
    steps = np.array([0, 10, 20, 30])
    deltas = np.array([[1.0, 1.0, 1.0], [0.09, 0.5, 1.0], [0.2, 0.05, 1.0], [0.01, 0.01, 0.1]])
    assert spectral.converged_step(steps, deltas) == [10, 20, None]


def test_fp_grid_puts_peaks_on_1_3_5():
    s = spectral.frequency_principle_setup(quick=True)
    assert spectral.peak_frequencies(s["target"], 3).tolist() == [1, 3, 5]
    assert spectral.relative_error(s["target"], s["target"], [1, 3, 5]).max() == 0


def _unit(theta, amp):
    """(w, b, a) with orientation theta and amplitude amp."""
    return np.cos(theta), np.sin(theta), amp


def test_orientation_amplitude_closed_form():
    w = np.array([1.0, -1.0, 0.0, 3.0])
    b = np.array([-1 / 3, -1 / 3, 2.0, 4.0])
    a = np.array([0.2, -0.2, 1.0, 0.5])
    th, am = cond.orientation_amplitude(w, b, a)
    r = np.hypot(1, 1 / 3)
    np.testing.assert_allclose(th, [-np.arccos(1 / r), -np.arccos(-1 / r), np.pi / 2, np.arctan2(4, 3)], atol=1e-12)
    np.testing.assert_allclose(am, [0.2 * r, 0.2 * r, 2.0, 2.5], atol=1e-12)


def test_condensed_fraction_on_constructed_units():
    units = [_unit(0.5, 1.0)] * 6 + [_unit(0.53, 1.0)]  # 7 units within +-0.05 of 0.5
    units += [_unit(-2.0, 2.0)] * 3  # amplitude 6 at -2.0
    units += [_unit(0.60, 1.0), _unit(1.5, 1.0), _unit(2.5, 1.0), _unit(-0.7, 1.0)]  # 4 outside every window
    w, b, a = map(np.array, zip(*units))
    th, am = cond.orientation_amplitude(w, b, a)
    c = cond.condensed_fraction(th, am)
    assert c["fraction"] == pytest.approx((7 + 6) / (7 + 6 + 4))
    assert sorted(round(d, 2) for d in c["directions"]) == [-2.0, 0.5] or sorted(round(d, 2) for d in c["directions"]) == [-2.0, 0.53]
    # a single direction; and units spread evenly: about 2 windows' share of the circle
    assert cond.condensed_fraction(th, am, n_directions=1)["fraction"] == pytest.approx(7 / 17)
    spread = np.linspace(-np.pi, np.pi, 2000, endpoint=False)
    f = cond.condensed_fraction(spread, np.ones_like(spread))["fraction"]
    assert f == pytest.approx(2 * 0.1 / (2 * np.pi), abs=2e-3)
    # the window is circular: units at +-pi are one orientation
    edge = np.array([np.pi - 0.01, -np.pi + 0.01, 0.0])
    assert cond.condensed_fraction(edge, np.ones(3), n_directions=1)["fraction"] == pytest.approx(2 / 3)


def test_band_error_closed_form():
    n = 128
    j = np.arange(n)
    f = np.sin(2 * np.pi * 2 * j / n) + np.sin(2 * np.pi * 20 * j / n)
    h = np.sin(2 * np.pi * 2 * j / n) + 0.25 * np.sin(2 * np.pi * 20 * j / n)
    assert ms.band_error(h, f, np.arange(8, 65)) == pytest.approx(0.75)
    assert ms.band_error(h, f, np.arange(1, 8)) == pytest.approx(0.0, abs=1e-12)


def test_multiscale_scales():
    assert ms.scales(12, 3).tolist() == [1.0] * 4 + [2.0] * 4 + [4.0] * 4


def test_svd_stages_compose_to_the_layer(rng):
    W = rng.normal(size=(2, 2))
    b = rng.normal(size=2)
    X = rng.normal(size=(50, 2))
    P = transforms.stages(W, b, X)
    np.testing.assert_allclose(P[-1], np.tanh(X @ W + b), atol=1e-12)
    d = transforms.decompose(W)
    np.testing.assert_allclose(d["U"] @ np.diag(d["S"]) @ d["Vt"], W, atol=1e-12)
    dist = lambda A: np.linalg.norm(A[:, None] - A[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(P[1]), dist(P[0]), atol=1e-12)  # U: a rotation/reflection keeps distances
    np.testing.assert_allclose(dist(P[3]), dist(P[2]), atol=1e-12)  # V^T too
    np.testing.assert_allclose(dist(P[4]), dist(P[3]), atol=1e-12)  # translation


@pytest.mark.slow
def test_vector_field_jacobian_and_lipschitz():
    C, sigma = vector_field.anchors(5)
    C = jnp.asarray(C)
    V = 0.05 * jax.random.normal(jax.random.key(0), (25, 2))
    X = jax.random.uniform(jax.random.key(1), (20, 2), minval=-1, maxval=1)
    J = vector_field.field_jacobian(V, C, sigma, X)
    ref = jax.vmap(jax.jacfwd(lambda x: vector_field.field(V, C, sigma, x)))(X)
    np.testing.assert_allclose(J, ref, atol=1e-5)
    np.testing.assert_allclose(vector_field.spectral_norm_2x2(J), np.linalg.svd(np.asarray(J), compute_uv=False)[:, 0],
                               atol=1e-5)
    L = vector_field.lipschitz(V, C, sigma)
    assert L["sampled"] <= L["bound"] + 1e-6


def test_knn_accuracy_hand_made():
    Rtr = np.array([[0, 0], [0, 0.1], [0.1, 0], [5, 5], [5, 5.1], [5.1, 5]])
    ytr = np.array([0, 0, 0, 1, 1, 1])
    Rte = np.array([[0.05, 0.05], [4.9, 5.0], [0.2, 0.0]])
    assert vector_field.knn_accuracy(Rtr, ytr, Rte, np.array([0, 1, 0]), k=3) == 1.0
    assert vector_field.knn_accuracy(Rtr, ytr, Rte, np.array([1, 1, 0]), k=3) == pytest.approx(2 / 3)


# -- the registry and the command ---------------------------------------------------------------------------
def test_unknown_study_is_a_one_line_error(tmp_path):
    with pytest.raises(PiecewiseError, match="unknown study 'nope'") as e:
        run_study("nope", out=str(tmp_path))
    assert "\n" not in str(e.value)
    with pytest.raises(PiecewiseError):
        run_command(argparse.Namespace(list=False, name="nope", quick=True, out=None))
    with pytest.raises(PiecewiseError):
        run_command(argparse.Namespace(list=False, name=None, quick=True, out=None))


def test_run_list(capsys):
    p = argparse.ArgumentParser()
    add_run_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["run", "--list"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == list(STUDIES)
    assert len(STUDIES) == 9


# -- the effects, quick settings (the studies the notebooks run are checked on their results: study_checks.py) --
@pytest.mark.slow
def test_contraction_penalty_shrinks_jacobians(tmp_path):
    r = _run("contraction", tmp_path)
    free, pen = r["2-2-2"]["lam=0.0"], r["2-2-2"]["lam=0.01"]
    assert pen["median_jacobian_mean"] < 0.7 * free["median_jacobian_mean"]
    assert pen["median_jacobian_max"] < free["median_jacobian_max"]
    assert r["3"]["lam=0.0"]["mean_accuracy"] > 0.95  # one 3-wide layer separates the classes

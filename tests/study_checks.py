"""The effects of the seed-article studies that the notebooks run (quick settings), checked on the results
the notebooks write (tests/test_notebooks.py sets PIECEWISE_NOTEBOOK_OUT): each study runs once in the test
suite. ``CHECKS`` maps a study to its check and NOTEBOOK_DIRS the notebook's results folder to the study."""
import itertools

import numpy as np
import pytest


def check_frequency_principle(r):
    assert r["frequencies"] == [1, 3, 5]
    cs = r["converged_step"]
    assert all(c is not None for c in cs), cs
    assert cs[0] < cs[1] < cs[2], cs


def check_spectral_bias(r):
    assert r["frequencies"] == list(range(5, 55, 5))
    cs = [np.inf if c is None else c for c in r["converged_step"]]
    assert np.isfinite(cs[0])
    assert cs == sorted(cs), cs
    d = np.array(r["final_delta"])
    assert d[0] < d[-1] and d[:5].mean() < d[5:].mean()  # even though the high frequencies carry more amplitude


def check_condensation(r):
    small, large = r["small_init"], r["large_init"]
    assert small["condensed_fraction"] > 0.9
    assert large["condensed_fraction"] < 0.3
    assert small["condensed_fraction"] > large["condensed_fraction"] + 0.5
    assert small["condensed_fraction_before"] < 0.2  # condensation comes from training, not from the init
    # the condensed directions are the target's two units (w, b) = (+-1, -1/3)
    assert sorted(small["directions"]) == pytest.approx(sorted(r["target_orientations"]), abs=0.05)


def check_multiscale(r):
    assert r["multiscale"]["high_freq_error"] < 0.8 * r["single_scale"]["high_freq_error"]


def _box_arrangement_regions(W, b, lo=-1.0, hi=1.0):
    """Independent count: regions of lines w.x + b = 0 (general position) in the open square: 1 + (lines that
    cross the square) + (crossings of two lines inside the square)."""
    corners = np.array(list(itertools.product([lo, hi], repeat=2)))
    crossing = []
    for w, c in zip(W.T, b):
        v = corners @ w + c
        if v.min() < 0 < v.max():
            crossing.append((w, c))
    inside = 0
    for (w1, c1), (w2, c2) in itertools.combinations(crossing, 2):
        A = np.array([w1, w2])
        p = np.linalg.solve(A, -np.array([c1, c2]))
        inside += bool(np.all((p > lo) & (p < hi)))
    return 1 + len(crossing) + inside


def check_tower(r):
    assert r["units"] == [2, 3, 4, 5, 6]
    assert r["mse"][-1] < 0.1 * r["mse"][0]  # more units, more facets, a better bowl
    g = np.linspace(-1, 1, 401)
    XX = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    for k, wts, n_lin, n_act in zip(r["units"], r["weights"], r["linear_regions"], r["activation_regions"]):
        W0, b0, W1 = np.array(wts["W0"]), np.array(wts["b0"]), np.array(wts["W1"])
        assert np.all(np.abs(W1) > 1e-6)  # every unit carries weight: no two cells share an affine map
        ref = _box_arrangement_regions(W0, b0)
        assert n_act == ref and n_lin == ref, (k, n_act, n_lin, ref)
        # sampled: distinct gradients on a dense grid can only miss regions
        grads = (((XX @ W0 + b0) > 0) * W1[:, 0]) @ W0.T
        assert len(np.unique(np.round(grads, 6), axis=0)) <= n_lin


def check_templates(r):
    C = np.array(r["confusion"])
    assert C.shape == (10, 10) and C.dtype.kind == "i"
    assert C.sum() == r["n_test"] == 539
    assert np.trace(C) / r["n_test"] == pytest.approx(r["test_accuracy"])
    assert r["test_accuracy"] >= 0.9
    assert r["hidden"]["test_accuracy"] >= 0.9
    sk = pytest.importorskip("sklearn.linear_model")
    from piecewise.studies.templates import split

    Xtr, ytr, Xte, yte = split()
    ref = sk.LogisticRegression(max_iter=2000).fit(Xtr, ytr).score(Xte, yte)
    assert abs(r["test_accuracy"] - ref) < 0.04, (r["test_accuracy"], ref)


def check_transforms(r):
    assert r["reconstruction_error"] < 1e-9
    assert {(x["optimizer"], x["init"]) for x in r["runs"]} >= {("sgd", "glorot"), ("momentum", "glorot"),
                                                                 ("adam", "glorot")}
    for x in r["runs"]:
        assert x["accuracy"] >= 0.9, x
        assert x["distance_moved"] > 0


def check_vector_field(r):
    vf, th = r["vector_field"], r["tanh"]
    assert vf["test_accuracy"] >= 0.95
    assert vf["test_accuracy"] > th["test_accuracy"]
    assert vf["homeomorphism"] is True
    for L in vf["layers"]:
        assert L["sampled"] < 1 and L["min_det_layer"] > 0
    assert th["layer_theorem"]["certified"] is True  # square nonsingular tanh layers: homeomorphisms
    assert 0.5 <= th["knn_test_accuracy"] <= 1 and 0.5 <= vf["knn_test_accuracy"] <= 1


CHECKS = {name: globals()[f"check_{name}"] for name in (
    "frequency_principle", "spectral_bias", "condensation", "multiscale", "tower", "templates", "transforms",
    "vector_field")}
NOTEBOOK_DIRS = {"fp": "frequency_principle", "sb": "spectral_bias", "cd": "condensation", "ms": "multiscale",
                 "tower": "tower", "templates": "templates", "transforms": "transforms", "vf": "vector_field"}

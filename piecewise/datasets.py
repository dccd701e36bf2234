"""Toy data sets, generated (or bundled with scikit-learn: the 8x8 digits). Every function returns
float32 inputs ``X`` (m, n) and labels ``y`` (m,), int 0/1 for two classes (digits: 0..9), from a seed.

Setups follow shared/SCIENCE.md (TensorFlow Playground, Olah's topology examples).
"""
from __future__ import annotations

import numpy as np

from .errors import PiecewiseError


def _rng(seed):
    return np.random.default_rng(seed)


def playground(name: str, n: int = 500, *, noise: float = 0.0, seed: int = 0):
    """TensorFlow Playground data (labels 0/1): ``circle`` (r ~ U(0, 2.5) inside, U(3.5, 5) outside),
    ``xor`` (U(-5, 5), pushed 0.3 off the axes, label sign(xy)), ``gauss`` (two Gaussians at (2, 2) and
    (-2, -2), variance 0.5), ``spiral`` (r = 5 i / n, t = 1.75 2 pi i / n, + pi for the second class)."""
    r = _rng(seed)
    half = n // 2
    if name == "circle":
        rad = np.r_[r.uniform(0, 2.5, half), r.uniform(3.5, 5.0, n - half)]
        ang = r.uniform(0, 2 * np.pi, n)
        X = np.c_[rad * np.cos(ang), rad * np.sin(ang)]
        y = np.r_[np.ones(half), np.zeros(n - half)]
    elif name == "xor":
        X = r.uniform(-5, 5, (n, 2))
        X += np.where(X > 0, 0.3, -0.3)
        y = (X[:, 0] * X[:, 1] > 0).astype(float)
    elif name == "gauss":
        X = np.r_[r.normal(2, np.sqrt(0.5), (half, 2)), r.normal(-2, np.sqrt(0.5), (n - half, 2))]
        y = np.r_[np.ones(half), np.zeros(n - half)]
    elif name == "spiral":
        i = np.arange(half)
        rad = 5 * i / half
        t = 1.75 * 2 * np.pi * i / half
        X = np.r_[np.c_[rad * np.sin(t), rad * np.cos(t)], np.c_[rad * np.sin(t + np.pi), rad * np.cos(t + np.pi)]]
        y = np.r_[np.ones(half), np.zeros(half)]
    else:
        raise PiecewiseError(f"unknown playground data set {name!r}: circle, xor, gauss, spiral")
    X = X + noise * r.normal(size=X.shape)
    return X.astype(np.float32), y.astype(np.int32)


def disk_annulus(n: int = 1000, *, seed: int = 0):
    """Olah's disk inside an annulus: class 1 is |x| < 1/3, class 0 is 2/3 < |x| < 1 (uniform in area)."""
    r = _rng(seed)
    half = n // 2
    rad = np.r_[np.sqrt(r.uniform(0, (1 / 3) ** 2, half)), np.sqrt(r.uniform((2 / 3) ** 2, 1.0, n - half))]
    ang = r.uniform(0, 2 * np.pi, n)
    X = np.c_[rad * np.cos(ang), rad * np.sin(ang)]
    return X.astype(np.float32), np.r_[np.ones(half), np.zeros(n - half)].astype(np.int32)


def digits(*, scale: bool = True):
    """scikit-learn's bundled 8x8 handwritten digits (1797 x 64, labels 0..9), pixels scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise PiecewiseError("the digits data set needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    X = d.data / 16.0 if scale else d.data
    return X.astype(np.float32), d.target.astype(np.int32)

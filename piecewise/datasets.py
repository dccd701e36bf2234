"""Toy data sets, generated (or bundled with scikit-learn: the 8x8 digits). Every function returns
float32 inputs ``X`` (m, n) and labels ``y`` (m,), int 0/1 for two classes (digits: 0..9), from a seed.

Setups follow the TensorFlow Playground data sets and the examples of Olah (2014), "Neural networks,
manifolds, and topology".
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


def interval_1d(n: int = 300, *, seed: int = 0):
    """Olah's 1D example: class 1 is [-1/3, 1/3], class 0 is [-1, -2/3] U [2/3, 1]. X (n, 1)."""
    r = _rng(seed)
    half = n // 2
    inner = r.uniform(-1 / 3, 1 / 3, half)
    outer = r.uniform(2 / 3, 1.0, n - half) * r.choice([-1.0, 1.0], n - half)
    return np.r_[inner, outer][:, None].astype(np.float32), np.r_[np.ones(half), np.zeros(n - half)].astype(np.int32)


def spirals(n: int = 400, *, turns: float = 1.0, noise: float = 0.0, seed: int = 0):
    """Two interleaved spirals in the plane (``turns`` sets how entangled they are), labels 0/1, radius <= 1."""
    r = _rng(seed)
    half = n // 2
    t = np.sqrt(r.uniform(0.02, 1.0, half))
    ang = 2 * np.pi * turns * t
    a = np.c_[t * np.cos(ang), t * np.sin(ang)]
    X = np.r_[a, -a] + noise * r.normal(size=(2 * half, 2))
    return X.astype(np.float32), np.r_[np.ones(half), np.zeros(half)].astype(np.int32)


def linked_tori(n: int = 800, *, R: float = 1.0, r_tube: float = 0.25, seed: int = 0):
    """Two linked solid tori in R^3 (a torus in the xy-plane and one in the xz-plane shifted by R along x),
    labels 0/1: no homeomorphism of R^3 separates them; a 4th dimension is needed."""
    rng = _rng(seed)
    half = n // 2

    def solid_torus(m):
        u = rng.uniform(0, 2 * np.pi, m)
        v = rng.uniform(0, 2 * np.pi, m)
        rho = r_tube * np.sqrt(rng.uniform(0, 1, m))
        return np.c_[(R + rho * np.cos(v)) * np.cos(u), (R + rho * np.cos(v)) * np.sin(u), rho * np.sin(v)]

    a = solid_torus(half)
    b = solid_torus(n - half)
    b = np.c_[b[:, 0] + R, b[:, 2], b[:, 1]]  # rotate into the xz-plane and shift: the tori link
    return np.r_[a, b].astype(np.float32), np.r_[np.zeros(half), np.ones(n - half)].astype(np.int32)

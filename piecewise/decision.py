"""The one rule for a network's decision, used by training, accuracy, plots and statistics alike.

Several outputs: the class is the argmax (lowest index on ties). One output: nets here fit 0/1 labels by mean
squared error (:func:`piecewise.train.fit`), so the class is 1 where the output exceeds :data:`THRESHOLD`
(0.5), and the decision boundary is the level set ``y = THRESHOLD`` (not ``y = 0``). A one-output net
trained with other targets passes its own ``threshold``.
"""
from __future__ import annotations

import numpy as np

THRESHOLD = 0.5  # one-output nets: class 1 where y > THRESHOLD


def predict(out, threshold: float = THRESHOLD) -> np.ndarray:
    """Classes (int, (m,)) of outputs ``out`` (m, n_out): argmax, or ``out > threshold`` for one output."""
    out = np.asarray(out)
    if out.shape[-1] > 1:
        return out.argmax(-1)
    return (out[..., 0] > threshold).astype(int)


def logits(J, c, threshold: float = THRESHOLD):
    """Affine per-cell outputs (J (C, d, n_out), c (C, n_out)) as the scores whose argmax is the class of
    :func:`predict`: for one output, ``(threshold, y)`` (class 1 iff y > threshold), else the outputs."""
    if J.shape[-1] != 1:
        return J, c
    return np.concatenate([np.zeros_like(J), J], -1), np.concatenate([np.full_like(c, threshold), c], -1)

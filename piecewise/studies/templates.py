"""Weight templates (seed 003): a single-layer softmax classifier on scikit-learn's bundled 8x8 digits.
Each class score is a dot product of the image with one 8x8 weight image, so the ten weight images are
"templates" (they look like blurred digits, with negative weight where other digits put ink). The test
confusion matrix shows which digits are confused. With one hidden ReLU layer the first-layer weights are no
longer class templates but parts (strokes) shared between classes, and the accuracy rises.
"""
from __future__ import annotations

import jax
import numpy as np
import optax

from ..datasets import digits
from ..nets import mlp
from ..train import fit

N_CLASSES = 10


def split(test_fraction: float = 0.3, seed: int = 0):
    """Fixed random train/test split of the digits: (Xtr, ytr, Xte, yte)."""
    X, y = digits()
    idx = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    te, tr = idx[:n_test], idx[n_test:]
    return X[tr], y[tr], X[te], y[te]


def confusion(y_true, y_pred, n: int = N_CLASSES) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted: (n, n) int."""
    C = np.zeros((n, n), int)
    np.add.at(C, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return C


def setup(quick: bool = False) -> dict:
    return {"hidden": 32, "lr": 1e-2, "steps": 300 if quick else 2000, "weight_decay": 1e-4}


def train_classifier(widths, s, data, *, seed: int = 0) -> dict:
    Xtr, ytr, Xte, yte = data
    net = mlp(64, widths, N_CLASSES, "relu")
    p0 = net.init(key=jax.random.key(seed), scheme="he")
    run = fit(net, p0, Xtr, ytr, optax.adamw(s["lr"], weight_decay=s["weight_decay"]), steps=s["steps"],
              checkpoints=1, loss="xent")
    p = run[-1]["params"]
    pred = np.asarray(net.apply(p, Xte)).argmax(-1)
    train_acc = float(np.mean(np.asarray(net.apply(p, Xtr)).argmax(-1) == ytr))
    return {"net": net, "params": p, "test_accuracy": float(np.mean(pred == yte)), "train_accuracy": train_acc,
            "confusion": confusion(yte, pred), "n_test": int(len(yte)), "loss": run[-1]["loss"],
            "templates": np.asarray(p[0][0]).T.reshape(-1, 8, 8)}

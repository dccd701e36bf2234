import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_params(net, seed=0, bias_std=0.3):
    """Params of ``net`` as float64 NumPy arrays (a fixed-seed He init with biases)."""
    p = net.init(key=jax.random.key(seed), bias_std=bias_std)
    return tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in p)

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


def assert_png(path, min_colours: int = 3):
    """A figure file that shows something: a PNG of reasonable size whose pixels take at least
    ``min_colours`` distinct colours and are not all one colour but a few specks."""
    import matplotlib.image as mpimg

    img = mpimg.imread(str(path))
    assert img.ndim == 3 and img.shape[0] >= 100 and img.shape[1] >= 100, img.shape
    px = np.round(img[..., :3].reshape(-1, 3) * 255).astype(np.int32)
    colours, counts = np.unique(px, axis=0, return_counts=True)
    assert len(colours) >= min_colours, f"{path}: only {len(colours)} colours"
    assert counts.max() < 0.995 * len(px), f"{path}: nearly blank"

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


def pool_cnn(seed, s_in=1.0, s_out=1.0):
    """conv -> relu (biases pushed down: many whole pool windows off, their pieces tied at 0) -> max-pool 2 ->
    conv -> relu -> overlapping max-pool 3/1 -> dense, on (2, 6, 6) inputs; ``s_in`` divides the first conv's
    weights (for inputs s_in times larger), ``s_out`` multiplies the output."""
    from piecewise.graph import GraphBuilder

    r = np.random.default_rng(seed)
    gb = GraphBuilder((2, 6, 6))
    h = gb.relu(gb.conv(gb.input, r.normal(size=(3, 2, 3, 3)) / s_in, r.normal(size=3) - 1.0, padding=1))
    h = gb.max_pool(h, 2)
    h = gb.relu(gb.conv(h, r.normal(size=(3, 3, 2, 2)), r.normal(size=3) * 0.3, padding=1))
    h = gb.max_pool(h, 3, stride=1)
    return gb.build(gb.dense(gb.flatten(h), r.normal(size=(12, 2)) * s_out))


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

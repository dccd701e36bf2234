"""Linear regions against an independent counter (tests/linear_reference.py shares no code with the engine)."""
import jax
import numpy as np
import pytest

import piecewise as pw
from geometry import lines_of_shallow, montufar_params, regions_in_box
from linear_reference import linear_regions_2d


def _net(widths, n_out, act, seed, bias_std=0.3):
    net = pw.mlp(2, widths, n_out, act)
    params = net.init(key=jax.random.key(seed), bias_std=bias_std)
    return net, tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params)


def _engine(net, params, lo=-1.0, hi=1.0):
    cx = pw.enumerate_cells(net, params, pw.box(lo, hi, 2))
    return cx.regions, cx.linear_regions()[0]


def _scaled(params, w=1.0, b=0.0):
    *hidden, (W, c) = params
    return (*hidden, (W * w, c + b))


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_on_shallow_nets_against_closed_form(seed):
    # one hidden layer: crossing unit j's line changes the gradient by a_j w_j, so with a_j != 0 every line
    # separates linear regions; with a_j = 0 (a dead output weight) line j separates nothing
    net, params = _net((7,), 1, "relu", seed)
    (W0, b0), (W1, b1) = params
    lines = lines_of_shallow(W0, b0)
    assert linear_regions_2d(params, -1, 1) == (regions_in_box(lines, (-1, -1), (1, 1)),) * 2
    W1 = W1.copy()
    W1[[2, 5]] = 0.0
    act_regions, lin = linear_regions_2d(((W0, b0), (W1, b1)), -1, 1)
    assert act_regions == regions_in_box(lines, (-1, -1), (1, 1))
    assert lin == regions_in_box(np.delete(lines, [2, 5], 0), (-1, -1), (1, 1))


@pytest.mark.parametrize("w, b", [(1.0, 0.0), (1.0, 1e9), (1e-12, 0.0), (1e12, 0.0), (1e-12, 1e9), (-3.0, -1e6)])
def test_output_scale_and_bias_do_not_change_linear_regions(w, b):
    # a 2-12-12-1 net: scaling the output by a nonzero constant or shifting it changes no linear region
    net, params = _net((12, 12), 1, "relu", 3, bias_std=0.2)
    ref = linear_regions_2d(params, -1, 1)
    assert linear_regions_2d(_scaled(params, w, b), -1, 1) == ref  # the reference itself is scale-free
    assert _engine(net, _scaled(params, w, b)) == ref


@pytest.mark.parametrize("act, slope", [("relu", 0.0), ("leaky_relu", 0.1), ("abs", 0.0), ("hardtanh", 0.0)])
def test_deep_nets_every_activation(act, slope):
    spec = f"leaky_relu:{slope}" if act == "leaky_relu" else act
    net, params = _net((8, 8, 6), 1, spec, 5, bias_std=0.4)
    assert _engine(net, params) == linear_regions_2d(params, -1, 1, act, slope)


def test_multi_output_and_dead_output():
    net, params = _net((10, 10), 3, "relu", 7)
    ref = linear_regions_2d(params, -1, 1)
    assert _engine(net, params) == ref
    *hidden, (W, c) = params
    W = W.copy()
    W[:, 1] = 0.0  # a dead output: it changes nothing
    assert _engine(net, (*hidden, (W, c))) == linear_regions_2d((*hidden, (W, c)), -1, 1) == ref
    W[:] = 0.0  # every output dead: one linear region
    assert _engine(net, (*hidden, (W, c)))[1] == 1


def test_outputs_that_cancel():
    # units 0 and 1 are duplicates with output weights +a and -a: their line never bends the output
    net, params = _net((6, 5), 1, "relu", 11)
    (W0, b0), (W1, b1), (W2, b2) = params
    W1, W2 = W1.copy(), W2.copy()
    W1[:, 1] = W1[:, 0]
    b1 = b1.copy()
    b1[1] = b1[0]
    W2[1] = -W2[0]
    p = ((W0, b0), (W1, b1), (W2, b2))
    act_regions, lin = linear_regions_2d(p, -1, 1)
    assert _engine(net, p) == (act_regions, lin)
    # the same net without the pair has the same linear regions
    keep = [2, 3, 4]
    q = ((W0, b0), (W1[:, keep], b1[keep]), (W2[keep], b2))
    assert lin == linear_regions_2d(q, -1, 1)[1]


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 1e-9, 1e9])
def test_montufar_construction(scale):
    params = montufar_params((6, 6, 6))
    params = _scaled(params, scale, 0.0)
    net = pw.mlp(2, (6, 6, 6), 1)
    ref = linear_regions_2d(params, 0.0, 1.0)
    assert ref[0] == 1782  # SCIENCE.md: 3^2 * 3^2 * 22
    assert _engine(net, params, 0.0, 1.0) == ref


@pytest.mark.parametrize("w, b", [(1e-12, 1e9), (1e12, 0.0)])
def test_tiled_linear_regions_at_extreme_scales(w, b):
    # tiles merge across their borders by the same gradient rule: the output's scale and offset change nothing
    from piecewise.regions.tiles import tiled_count

    net, params = _net((12, 12), 1, "relu", 3, bias_std=0.2)
    ref = linear_regions_2d(params, -1, 1)
    out = tiled_count(net, _scaled(params, w, b), pw.box(-1, 1, 2), 9, linear=True, progress=False)
    assert (out["regions"], out["linear_regions"]) == ref

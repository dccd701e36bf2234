from itertools import product
from math import comb

import numpy as np
import pytest

import piecewise as pw
from piecewise import bounds
from conftest import random_params


def test_known_values():
    # SCIENCE.md: n0 = 2, widths (6, 6, 6) -> 3^2 3^2 22 = 1782; (4, 4, 4, 4) -> 704
    assert bounds.montufar2014_lower(2, (6, 6, 6)) == 1782
    assert bounds.montufar2014_lower(2, (4, 4, 4, 4)) == 704
    assert bounds.zaslavsky(3, 2) == 7 and bounds.zaslavsky(2, 5) == 4
    assert bounds.zaslavsky_bounded(4, 2) == 3
    assert bounds.zaslavsky_central(3, 2) == 6
    assert bounds.sawtooth_pieces(20) == 2**20
    assert bounds.maxout_lower(1, 2, 3) == 6 and bounds.maxout_lower(2, 3, 4) == 2**4 * 16


def _serra_brute(n0, widths):
    total = 0
    for js in product(*[range(n + 1) for n in widths]):
        cap, ok = n0, True
        for n, j in zip(widths, js):
            if j > min(cap, n):
                ok = False
                break
            cap = min(cap, n - j)
        if ok:
            total += np.prod([comb(n, j) for n, j in zip(widths, js)], dtype=object)
    return int(total)


@pytest.mark.parametrize("n0,widths", [(1, (3, 3)), (2, (4, 3, 5)), (3, (2, 6, 4)), (2, (1, 5)), (4, (3, 3, 3))])
def test_serra_dp_equals_brute_force(n0, widths):
    assert bounds.serra2018_upper(n0, widths) == _serra_brute(n0, widths)


@pytest.mark.parametrize("n0,widths", [(1, (3, 4, 5)), (2, (6, 6, 6)), (2, (8, 8)), (3, (9, 9, 9))])
def test_bounds_are_ordered(n0, widths):
    lo = bounds.montufar2014_lower(n0, widths)
    assert lo <= bounds.serra2018_lower(n0, widths) <= bounds.serra2018_upper(n0, widths)
    assert bounds.serra2018_upper(n0, widths) <= bounds.montufar2017_upper(n0, widths)


def test_single_layer_bounds_equal_zaslavsky():
    for n0, n in [(1, 5), (2, 7), (3, 4), (4, 9)]:
        assert bounds.serra2018_upper(n0, (n,)) == bounds.zaslavsky(n, n0) == bounds.montufar2017_upper(n0, (n,))


def test_no_float_overflow_for_deep_nets():
    v = bounds.serra2018_upper(2, (64,) * 40)
    assert isinstance(v, int) and v > 10**100


@pytest.mark.slow
@pytest.mark.parametrize("widths", [(8, 8), (6, 6, 6), (12, 8, 4), (16, 16)])
def test_exact_counts_of_random_nets_never_exceed_upper_bounds(widths):
    net = pw.mlp(2, widths, 1)
    for seed in range(3):
        cx = pw.enumerate_cells(net, random_params(net, seed, bias_std=0.5), pw.box(-4, 4, 2))
        assert cx.regions <= bounds.serra2018_upper(2, widths)


@pytest.mark.parametrize("k,n", [(3, 4), (4, 3), (5, 2)])
def test_shallow_maxout_maximum(k, n):
    # 1D: a random rank-k layer of n units has n (k - 1) kinks in general position -> the maximum is attained
    net = pw.mlp(1, (n,), 1, f"maxout:{k}")
    best = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        # convex units with k pieces all meeting [0, 1]: slopes sorted, kinks at sorted random points
        W = np.sort(rng.normal(size=(1, n, k)), axis=-1)
        kinks = np.sort(rng.uniform(0, 1, size=(n, k - 1)), axis=-1)
        b = np.zeros((n, k))
        for i in range(1, k):
            b[:, i] = b[:, i - 1] + (W[0, :, i - 1] - W[0, :, i]) * kinks[:, i - 1]
        params = ((W, b), (np.ones((n, 1)), np.zeros(1)))
        best = max(best, pw.enumerate_cells(net, params, pw.segment([0.0], [1.0])).regions)
    assert best == bounds.shallow_maxout_max(1, n, k)


@pytest.mark.slow
def test_quoted_maxout_theorem_fails_for_width_one_rank_three():
    """k^(L-1) k^n0 = 9 for n0 = 1, k = 3, L = 2; width-1 maxout nets reach only 3k - 2 = 7."""
    k, quoted = 3, 3 ** (2 - 1) * 3 ** 1
    net = pw.mlp(1, (1, 1), 1, "maxout:3")
    rng = np.random.default_rng(0)
    best = 0
    for _ in range(300):
        params = ((rng.normal(size=(1, 1, k)) * 3, rng.normal(size=(1, k))),
                  (rng.normal(size=(1, 1, k)) * 3, rng.normal(size=(1, k))), (np.ones((1, 1)), np.zeros(1)))
        best = max(best, pw.enumerate_cells(net, params, pw.segment([-20.0], [20.0])).linear_regions()[0])
    assert best <= 3 * k - 2 < quoted
    # the bound 3k - 2 is attained: f(x) = max(-x, 0, x - 1) (3 pieces) composed with g(y) = max(-y, y - 1, 2y - 3)
    # (breakpoints y = 1/2, 2, each reached twice): 2 + 2 + 2 kinks of g(f) plus f's 2 kinks -> 7 pieces
    W1, b1 = np.array([[[-1.0, 0.0, 1.0]]]), np.array([[0.0, 0.0, -1.0]])
    W2, b2 = np.array([[[-1.0, 1.0, 2.0]]]), np.array([[0.0, -1.0, -3.0]])
    cx = pw.enumerate_cells(net, ((W1, b1), (W2, b2), (np.ones((1, 1)), np.zeros(1))), pw.segment([-20.0], [20.0]))
    assert cx.linear_regions()[0] == 3 * k - 2

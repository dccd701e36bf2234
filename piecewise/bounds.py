"""Closed-form region counts and bounds, as exact Python integers (no float overflow for deep nets).

Notation: ``n0`` inputs, hidden ``widths = (n1, ..., nL)``. Every function names its source. Counts are of
linear regions of R^n0 unless said otherwise (for the constructions in :mod:`piecewise.constructions` the
activation and linear regions coincide and the counts are inside the unit cube).
"""
from __future__ import annotations

from math import comb, factorial, prod
from typing import Sequence


def _check(n0: int, widths: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    widths = tuple(int(w) for w in widths)
    if int(n0) < 1 or not widths or any(w < 1 for w in widths):
        raise ValueError(f"need n0 >= 1 and positive widths, got n0={n0}, widths={widths}")
    return int(n0), widths


def zaslavsky(n_hyperplanes: int, dim: int) -> int:
    """Regions of R^dim cut by ``n`` affine hyperplanes in general position (Zaslavsky 1975):
    ``sum_{j=0}^{dim} C(n, j)`` (= 2^n when n <= dim). The maximum for a one-hidden-layer ReLU net."""
    if n_hyperplanes < 0 or dim < 0:
        raise ValueError("n_hyperplanes and dim must be >= 0")
    return sum(comb(n_hyperplanes, j) for j in range(dim + 1))


def zaslavsky_bounded(n_hyperplanes: int, dim: int) -> int:
    """Bounded regions of ``n`` hyperplanes in general position in R^dim: ``C(n - 1, dim)`` (Zaslavsky)."""
    return comb(n_hyperplanes - 1, dim) if n_hyperplanes >= 1 else 0


def zaslavsky_central(n_hyperplanes: int, dim: int) -> int:
    """Regions of ``n`` hyperplanes through the origin in general position (a bias-free shallow net):
    ``2 sum_{j=0}^{dim-1} C(n - 1, j)`` (Zaslavsky; = 2^n when n <= dim)."""
    if n_hyperplanes == 0:
        return 1
    return 2 * sum(comb(n_hyperplanes - 1, j) for j in range(dim))


def montufar2014_lower(n0: int, widths: Sequence[int]) -> int:
    """Montufar, Pascanu, Cho, Bengio (NeurIPS 2014), lower bound for n_l >= n0: a ReLU net with these widths
    can have ``prod_{l<L} floor(n_l / n0)^n0 * sum_{j=0}^{n0} C(n_L, j)`` linear regions. Attained by
    :func:`piecewise.constructions.montufar_folding` (inside the unit cube)."""
    n0, w = _check(n0, widths)
    return prod((n // n0) ** n0 for n in w[:-1]) * zaslavsky(w[-1], n0)


def serra2018_upper(n0: int, widths: Sequence[int]) -> int:
    """Serra, Tjandraatmadja, Ramalingam (ICML 2018), Theorem 1: linear regions of a ReLU net are at most
    ``sum over (j_1..j_L) in J of prod_l C(n_l, j_l)`` with
    ``J = {0 <= j_l <= min(n0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)}`` (computed by dynamic programming
    over the running minimum)."""
    n0, w = _check(n0, widths)
    ways = {n0: 1}  # running minimum d_l -> number of weighted choices so far
    for n in w:
        nxt: dict[int, int] = {}
        for d, count in ways.items():
            for j in range(min(d, n) + 1):
                d2 = min(d, n - j)
                nxt[d2] = nxt.get(d2, 0) + count * comb(n, j)
        ways = nxt
    return sum(ways.values())


def serra2018_lower(n0: int, widths: Sequence[int]) -> int:
    """Serra et al. (2018), Theorem 6 (for n_l >= 3 n0): ``prod_{l<L} (floor(n_l / n0) + 1)^n0 *
    sum_{j=0}^{n0} C(n_L, j)``. For n0 = 1 it equals :func:`serra2018_upper` (both ``prod (n_l + 1)``).

    Confirmed by computation: :func:`piecewise.constructions.serra_folding` attains it exactly (tests, n0 =
    1, 2, 3). The hypothesis is needed: p = floor(n_l / n0) units can fold a coordinate into p + 1 pieces
    each onto [0, 1] only if p >= 3 (some unit must face left to cover the start, and with p = 2 the slope
    condition S_0 = -sum_{left} c_k has no solution with alternating slopes)."""
    n0, w = _check(n0, widths)
    if any(n < 3 * n0 for n in w[:-1]):
        raise ValueError(f"serra2018_lower needs every n_l >= 3 n0 = {3 * n0} before the last layer, got {w}")
    return prod((n // n0 + 1) ** n0 for n in w[:-1]) * zaslavsky(w[-1], n0)


def montufar2017_upper(n0: int, widths: Sequence[int]) -> int:
    """Montufar (SampTA 2017): ``prod_l sum_{j=0}^{d_l} C(n_l, j)`` with ``d_l = min(n0, n_1, ..., n_l)``
    (looser than :func:`serra2018_upper`)."""
    n0, w = _check(n0, widths)
    out, d = 1, n0
    for n in w:
        d = min(d, n)
        out *= sum(comb(n, j) for j in range(d + 1))
    return out


def sawtooth_pieces(L: int) -> int:
    """Telgarsky's sawtooth composed L times (width 2, depth L) has exactly 2^L pieces on [0, 1]."""
    return 2 ** int(L)


def shallow_maxout_max(n0: int, n: int, k: int) -> int:
    """Maximal linear regions of one layer of n rank-k maxout units on R^n0:
    ``sum_{j=0}^{n0} C(n, j) (k - 1)^j`` (Montufar et al. 2014, Prop. 7; for k = 2 it is Zaslavsky's count;
    the tests confirm it on random rank-k layers in 1D and 2D, where it is attained)."""
    return sum(comb(n, j) * (k - 1) ** j for j in range(n0 + 1))


def maxout_lower(n0: int, L: int, k: int) -> int:
    """Regions attained by a rank-k maxout net with L layers of width n0 (see
    :func:`piecewise.constructions.maxout_folding`): ``2^(n0 (L-1)) * k^n0`` inside [0, 1]^n0.

    **The form usually quoted from Montufar et al. 2014 (Thm 8), ``k^(L-1) * k^n0``, is false in general.**
    For n0 = 1 and k >= 3 a width-1 maxout unit is a convex function with at most k pieces, and
    ``max_i (c_i f(x) + d_i)`` of a convex f with k pieces has at most ``3k - 2`` pieces (each of the k - 1
    breakpoints of the outer max is reached at most twice by a convex f, plus f's own k - 1 breakpoints):
    7 < 9 for k = 3, L = 2 (the test suite computes this counterexample). What does hold: each layer
    but the last can fold every coordinate once with ``max(2y - 1, 1 - 2y)`` (rank 2 suffices, extra pieces
    are padded with -1), doubling the count per coordinate per layer, and the last layer adds k pieces per
    coordinate; for k = 2 the two forms agree."""
    return 2 ** (int(n0) * (int(L) - 1)) * int(k) ** int(n0)


def hanin_rolnick_density(n_neurons: int, n0: int, T: float = 1.0) -> float:
    """Hanin & Rolnick (ICML 2019), Theorem 3 (random init, not a worst case): the expected number of regions
    per unit volume is at most ``(T N)^n0 / n0!`` for a constant T that depends on the weight and bias
    distributions (not on depth). Returns that expression; use it for the shape (N^n0, flat in depth)."""
    return (T * n_neurons) ** n0 / factorial(n0)

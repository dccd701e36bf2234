"""The one place where "zero" is defined: rounding-error bounds of the values actually computed.

**Exact enumeration** decides, for an affine function ``f(c) = g.c + e`` of the domain's centred coordinates
``c`` (``x = center + c @ axes``, ``c`` in [-1/2, 1/2]^d) and a vertex ``v`` of a cell, whether ``f(v)`` is
positive, negative or zero. The float64 value ``f^ = fl(e + v_0 g_0 + ...)`` differs from the exact one by at
most (:func:`vertex_tolerance`)

    (gamma_{d+3} |e^| + De)  +  |v|_inf (gamma_{d+1} |g^|_1 + Dg)  +  delta_v (|g^|_1 + Dg)

where ``gamma_n = n u / (1 - n u)``, ``u = 2^-53`` (Higham's bound for a sum of n terms, in any order),
``Dg``, ``De`` bound the errors of the computed coefficients (:func:`propagate`, from the magnitudes of the
terms summed through the network) and ``delta_v`` bounds the error of the computed vertex (max-norm;
:func:`interpolation_error`). A sign is taken from float64 only when ``|f^|`` exceeds this bound; otherwise
it is decided exactly (:mod:`piecewise.regions.rational`). The bound depends on the sizes of the numbers that
were summed, never on the size of the domain or of the function's range, so rescaling the box, the inputs
or a layer changes no decision.

Centred coordinates make the bound small where the features are: a vertex near the box's centre has small
``|v|`` and is known to many digits whatever the size of the box.

**Grid counts** (sampled) use a relative test per point, :func:`rtol` of the dtype times the magnitudes of the
terms of that point's pre-activation: float32 ``2**-19`` (a point this close to a boundary is re-checked in
float64), float64 ``1e-10`` (closer points are dropped: a grid reports only patterns it is sure of).
"""
from __future__ import annotations

import numpy as np

from ._shared import SAFETY, U  # noqa: F401 (unit roundoff of float64, the bounds' own rounding: shared with C)

_RTOL = {np.dtype(np.float32): 2.0**-19, np.dtype(np.float64): 1e-10}


def rtol(dtype) -> float:
    """Relative tolerance of the grid path's per-point boundary test (see the module docstring)."""
    dt = np.dtype(dtype)
    if dt not in _RTOL:
        raise ValueError(f"unsupported dtype {dt}: use float32 or float64")
    return _RTOL[dt]


def gamma(n: int) -> float:
    """Higham's gamma_n = n u / (1 - n u): a float64 sum of n + 1 terms (any order) errs by at most
    gamma_n times the sum of the terms' magnitudes."""
    return n * U / (1.0 - n * U)


# -- exact enumeration: values at vertices ----------------------------------------------------------------
def vertex_tolerance(absg1, abse, Dg, De, d: int):
    """Per-unit coefficients (A, B, C) of the error bound of a value at a vertex: ``A + B |v|_inf + C delta_v``.

    absg1: ``|g^|_1`` of the computed gradients, abse: ``|e^|`` of the computed offsets (after subtracting the
    breakpoint), Dg, De: bounds of the coefficients' own errors (broadcasting shapes)."""
    A = (gamma(d + 3) * abse + De) * SAFETY
    B = (gamma(d + 1) * absg1 + Dg) * SAFETY
    C = (absg1 + Dg) * SAFETY
    return A, B, C


def vertex_values(V, g, e):
    """Values at the vertices V (c, K, d) of u -> u.g + e, g (c, d), e (c,) -> (c, K), evaluated as
    ``e + v_0 g_0 + v_1 g_1 + ...`` (the order the compiled kernel uses too)."""
    f = e[:, None] + V[..., 0] * g[:, 0, None]
    for i in range(1, V.shape[-1]):
        f = f + V[..., i] * g[:, i, None]
    return f


def classify(f, tol, valid):
    """Sign of every value, as far as float64 knows it: int8 (c, K) with 1 (f > tol), -1 (f < -tol),
    0 (undecided: |f| <= tol, to be decided exactly); invalid slots are 0 too."""
    out = np.zeros(f.shape, np.int8)
    out[valid & (f > tol)] = 1
    out[valid & (f < -tol)] = -1
    return out


def residual_bound(V, G, e, dg, de, valid):
    """Max-norm error bounds (m,) of computed points V (m, d) from the hyperplanes that define them exactly:
    for point t the rows ``valid[t]`` of G (m, R, d), e (m, R) (float64 coefficients with error bounds dg,
    de (m, R)), all of which pass through the exact point. With N the rows scaled to unit ``|.|_1`` and rho
    the bounds of their exact values at V (the float64 residuals plus their error bounds, scaled alike), d
    well-conditioned rows S (complete pivoting) give ``|V - V*|_inf <= ||N_S^-1|| max rho_S / (1 - ||N_S^-1||
    max eta_S)`` (eta: the rows' own errors, scaled). The bound does not grow with the number of splits a
    point went through: it only asks how well the point satisfies its equations. ``inf`` where the rows do
    not determine the point within float64."""
    m, R, d = G.shape
    vinf = np.abs(V).max(-1)
    f = e + V[:, None, 0] * G[:, :, 0]
    nrm = np.abs(G[:, :, 0])
    for i in range(1, d):
        f = f + V[:, None, i] * G[:, :, i]
        nrm = nrm + np.abs(G[:, :, i])
    ok = valid & (nrm > 0.0)
    nz = np.where(ok, nrm, 1.0)
    rho = (np.abs(f) + (gamma(d + 1) * (np.abs(e) + vinf[:, None] * nrm) + de + vinf[:, None] * dg) * SAFETY) / nz
    eta = dg / nz
    N = np.where(ok[..., None], G / nz[..., None], 0.0)
    # complete pivoting: the d rows (and their order) that determine the point best
    A = N.copy()
    rows = np.zeros((m, d), np.intp)
    used_r = ~ok
    used_c = np.zeros((m, d), bool)
    bad = np.zeros(m, bool)
    ar = np.arange(m)
    for step in range(d):
        Am = np.where(used_r[..., None] | used_c[:, None, :], 0.0, np.abs(A))
        flat = Am.reshape(m, -1).argmax(1)
        r, c = np.divmod(flat, d)
        piv = A[ar, r, c]
        bad |= Am[ar, r, c] == 0.0
        rows[:, step] = r
        used_r[ar, r] = True
        used_c[ar, c] = True
        fac = np.where(used_r, 0.0, A[ar, :, c]) / np.where(piv == 0.0, 1.0, piv)[:, None]
        A = A - fac[..., None] * A[ar, r][:, None, :]
    exact_d = ok.sum(1) == d  # exactly d rows: they are the ones, in order (the kernel does the same)
    if exact_d.any():
        rows[exact_d] = np.argsort(~ok[exact_d], axis=1, kind="stable")[:, :d]
        bad[exact_d] = False
    S = np.take_along_axis(N, rows[..., None], 1)  # (m, d, d)
    kappa, singular = inverse_norm(S)
    bad |= singular
    r_S = np.take_along_axis(rho, rows, 1).max(1)
    e_S = np.take_along_axis(eta, rows, 1).max(1)
    den = 1.0 - kappa * e_S
    bad |= (den <= 0.0) | (4 * d * kappa * U > 1e-6)
    out = kappa * r_S / np.where(den > 0.0, den, 1.0) * (1.0 + 8 * d * kappa * U) * SAFETY
    return np.where(bad, np.inf, out)


def inverse_norm(S):
    """A bound of ``||S^-1||_inf`` for a batch of d x d matrices (m, d, d) whose rows have ``|.|_1 = 1``, and
    whether each is singular in float64. d = 2: the exact value ``max(|s11| + |s01|, |s10| + |s00|) / |det|``;
    d > 2: ``d / |det|`` (every cofactor is at most the product of the other rows' 2-norms, each <= 1:
    Hadamard), the determinant by Gaussian elimination with partial pivoting. 1-D: ``1 / |s|``."""
    m, d, _ = S.shape
    if d == 1:
        a = np.abs(S[:, 0, 0])
        return 1.0 / np.where(a == 0.0, 1.0, a), a == 0.0
    if d == 2:
        det = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
        num = np.maximum(np.abs(S[:, 1, 1]) + np.abs(S[:, 0, 1]), np.abs(S[:, 1, 0]) + np.abs(S[:, 0, 0]))
        sing = det == 0.0
        return num / np.where(sing, 1.0, np.abs(det)), sing
    A = S.copy()
    ar = np.arange(m)
    det = np.ones(m)
    for c in range(d):
        p = c + np.abs(A[:, c:, c]).argmax(1)
        swap = p != c
        if swap.any():
            i = ar[swap]
            A[i, c], A[i, p[swap]] = A[i, p[swap]].copy(), A[i, c].copy()
        piv = A[:, c, c]
        det = det * np.abs(piv)
        pz = np.where(piv == 0.0, 1.0, piv)
        for r in range(c + 1, d):
            fr = A[:, r, c] / pz
            A[:, r] = A[:, r] - fr[:, None] * A[:, c]
    sing = det == 0.0
    return d / np.where(sing, 1.0, det), sing


def rounding_error(x_inf):
    """Error bound of a point rounded once from its exact value (half an ulp, doubled): ``2^-52 |x|_inf``."""
    return 2.0**-52 * x_inf


# -- exact enumeration: maps through the network ----------------------------------------------------------
def propagate(sources, absb, n_terms: int):
    """Error bounds (Dg, De), (m,) each, of the coefficients of ``z = bias + sum_j h_j @ A_j`` computed in
    float64 (any summation order, BLAS included), from per source ``(|A_j|, Hg, He, Eg, Ee)``: bounds of the
    magnitudes (``|.|_1`` of the gradient, ``|.|`` of the offset) and of the errors of the source's computed
    coefficients, per source unit, over all cells. ``n_terms``: terms per sum (fan-in over all sources + 1).
    Rounding of the products with the source's slopes and constants is included (gamma_{n + 3})."""
    c = gamma(n_terms + 3)
    Dg = De = None
    for absA, Hg, He, Eg, Ee in sources:
        dg = (c * Hg + Eg) @ absA
        de = (c * He + Ee) @ absA
        Dg = dg if Dg is None else Dg + dg
        De = de if De is None else De + de
    De = De + c * absb
    return Dg * SAFETY, De * SAFETY


def gradients_differ(Ja, Jb, Da, Db):
    """Pairs of cells whose float64 gradients prove that their exact gradients differ: Ja, Jb (P, d, n_out),
    Da, Db (n_out,) or (P, n_out) error bounds (``|.|_1`` over the d coordinates) -> bool (P,). A pair that is
    not proven different may be equal: decide it exactly."""
    diff = np.abs(Ja - Jb).sum(1)
    return np.any(diff * (1.0 - 2 * (Ja.shape[1] + 1) * U) > (Da + Db) * SAFETY, axis=-1)

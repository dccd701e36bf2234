"""``adjacency_nd`` (facet adjacency of n-D cells, used by linear regions): the memory-bounded candidate
generation against the previous implementation (kept below as ``_adjacency_reference``), on large label
groups, and linear regions against an independent LP brute force."""
import numpy as np
import pytest
from scipy.optimize import linprog

import piecewise as pw
import piecewise.regions.polytopes as E
from conftest import random_params
from geometry import lp_region_count
from piecewise.regions.polytopes import U_ATOL
from piecewise.regions.polytopes import _bits


def _adjacency_reference(X, n, inc, flab, events, keep=None) -> np.ndarray:
    """The previous ``adjacency_nd``, verbatim but for ``E._facets_overlap`` (looked up on the module, so
    that a test can share its answers between both versions): all (-, +) pairs of a label at once, and
    (pairs, K, d) arrays for their bounding boxes (quadratic memory on labels cut into many pieces)."""
    C, K, d = X.shape
    valid = np.arange(K)[None, :] < n[:, None]
    bits = _bits(np.where(valid, inc, np.uint64(0)))  # (C, K, 64)
    facet = (bits.sum(1) >= d) & (flab >= 0)
    ci, si = np.nonzero(facet)
    if not len(ci):
        return np.zeros((0, 2), np.int64)
    lab = flab[ci, si].astype(np.int64)
    g, e = events.plane(lab)
    cen = (X * valid[..., None]).sum(1) / n[:, None]
    side = np.einsum("pd,pd->p", cen[ci], g) + e > 0
    order = np.lexsort((side, lab))
    ci, si, lab, side = ci[order], si[order], lab[order], side[order]
    # all (-, +) pairs within a label
    bounds = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1], True])
    pa, pb, pl, sa, sb = [], [], [], [], []
    for s0, s1 in zip(bounds[:-1], bounds[1:]):
        sd = side[s0:s1]
        m = s0 + int(np.count_nonzero(~sd))
        if m == s0 or m == s1:
            continue
        a = np.repeat(np.arange(s0, m), s1 - m)
        b = np.tile(np.arange(m, s1), m - s0)
        pa.append(ci[a]); pb.append(ci[b]); pl.append(lab[a]); sa.append(si[a]); sb.append(si[b])
    if not pa:
        return np.zeros((0, 2), np.int64)
    pa, pb, pl, sa, sb = map(np.concatenate, (pa, pb, pl, sa, sb))
    # bounding boxes of the two facets must overlap
    fa = bits[pa, :, sa] & valid[pa]
    fb = bits[pb, :, sb] & valid[pb]
    big = np.inf
    lo_a = np.where(fa[..., None], X[pa], big).min(1)
    hi_a = np.where(fa[..., None], X[pa], -big).max(1)
    lo_b = np.where(fb[..., None], X[pb], big).min(1)
    hi_b = np.where(fb[..., None], X[pb], -big).max(1)
    ok = np.all((np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)) > -U_ATOL, 1)
    pa, pb, pl, sa, sb, fa, fb = pa[ok], pb[ok], pl[ok], sa[ok], sb[ok], fa[ok], fb[ok]
    pairs = np.stack([pa, pb], 1)
    if keep is not None:
        k = keep(pairs)
        pairs, pl, sa, sb, fa, fb = pairs[k], pl[k], sa[k], sb[k], fa[k], fb[k]
    share = np.array([E._facets_overlap(X, n, inc, flab, events, a, b, L, fa_, fb_)
                      for (a, b), L, fa_, fb_ in zip(pairs, pl, fa, fb)], bool)
    pairs = np.sort(pairs[share], 1) if len(pairs) else pairs
    return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)


# -- helpers ----------------------------------------------------------------------------------------------
def _args(cx):
    """The arguments ``CellComplex._pairs`` passes to ``adjacency_nd``."""
    return cx.vertices_c, cx.n_vertices, cx.facets[0], cx.facets[1], cx.events


@pytest.fixture
def shared_lps(monkeypatch):
    """Memoise ``_facets_overlap`` (unchanged by the rewrite) so that the two versions share the LPs."""
    memo, orig = {}, E._facets_overlap

    def cached(X, n, inc, flab, events, a, b, L, fa, fb):
        key = (int(a), int(b), int(L), np.asarray(fa).tobytes(), np.asarray(fb).tobytes())
        if key not in memo:
            memo[key] = orig(X, n, inc, flab, events, a, b, L, fa, fb)
        return memo[key]

    monkeypatch.setattr(E, "_facets_overlap", cached)
    return memo


def _tiny_chunks(monkeypatch):
    """Chunks so small that every path runs on small nets: groups of more than 4 pairs go through the
    sweep, 4 rows per block, chunks of 16 pairs, one facet or cell at a time in the per-facet passes."""
    monkeypatch.setattr(E, "_PAIR_CHUNK", 16)
    monkeypatch.setattr(E, "_SWEEP_ROWS", 4)
    monkeypatch.setattr(E, "_ELEM_CHUNK", 1)


def _hash_keep(pairs):
    """A symmetric pseudo-random filter keeping about a third of the candidate pairs."""
    lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    return (lo * 7919 + hi * 104729) % 3 == 0


def _set(pairs):
    return {tuple(p) for p in np.asarray(pairs).tolist()}


def _compare(cx, monkeypatch, keeps):
    """Both versions give the same pairs with each filter (also with tiny chunks), and the candidates are
    those of a dense box test of every (-, +) pair; returns the pairs with the first filter."""
    args, out = _args(cx), []
    X, n, inc, _, _ = args
    ci, si, lab, side, s0, m, s1 = _label_groups(cx)
    dense, lo, hi = _dense_candidates(X, n, inc, ci, s0, m, s1, si)
    for tiny in (False, True):
        with monkeypatch.context() as mp:
            if tiny:
                _tiny_chunks(mp)
            got = [(a, b) for x, y in E._candidate_pairs(lab, side, lo, hi) for a, b in zip(x.tolist(), y.tolist())]
        assert len(got) == len(set(got)) and set(got) == dense
    for keep in keeps:
        ref = _adjacency_reference(*args, keep=keep)
        new = E.adjacency_nd(*args, keep=keep)
        assert new.dtype == np.int64 and new.shape[1:] == (2,)
        assert np.all(new[:, 0] < new[:, 1])
        np.testing.assert_array_equal(new, ref)  # both sorted and unique
        with monkeypatch.context() as mp:
            _tiny_chunks(mp)
            np.testing.assert_array_equal(E.adjacency_nd(*args, keep=keep), ref)
        out.append(ref)
    return out[0]


# -- the same pairs as the previous implementation ------------------------------------------------------------
@pytest.mark.parametrize("n_in,widths,act,seed,full", [
    (3, (4, 4), "relu", 6, True),
    (4, (3, 3, 3), "relu", 7, True),
    (3, (5, 5), "leaky_relu:0.2", 4, True),
    (3, (5, 5), "hardtanh", 5, True),
    (3, (6, 6, 6), "relu", 1, False),
    (4, (4, 4, 4), "relu", 2, False),
    (4, (5, 5), "relu", 3, False),
])
@pytest.mark.slow
def test_same_pairs_as_previous_implementation(n_in, widths, act, seed, full, shared_lps, monkeypatch):
    """Random nets in 3-D and 4-D boxes: the same pairs as the previous implementation with the gradient
    filter of linear regions, and on the smaller nets also without a filter (every candidate reaches the
    LP) and with an arbitrary filter; also with chunks small enough to send every label group through the
    sweep."""
    net = pw.mlp(n_in, widths, 1, act)
    cx = pw.enumerate_cells(net, random_params(net, seed, bias_std=0.3), pw.box(-1, 1, n_in), progress=False)
    keeps = [None, cx.same_map, _hash_keep] if full else [cx.same_map]
    ref = _compare(cx, monkeypatch, keeps)
    if full:
        assert len(ref) >= cx.regions - 1  # connected
        assert cx.adjacency.shape == ref.shape


@pytest.mark.slow
@pytest.mark.parametrize("n_in", [3, 4])
def test_same_pairs_on_degenerate_integer_net(n_in, shared_lps, monkeypatch):
    """Integer weights: every first-layer plane through the origin (several through one point, and
    through box corners and edges), a duplicated unit, axis-parallel planes; the same pairs as before."""
    W0 = np.array([[1, 0, 1, -1, 1], [0, 1, 1, 1, 1], [1, 1, 0, 1, 1], [0, 0, 0, 1, 0]][:n_in], float)
    W0 = np.c_[W0, W0[:, 2]]  # a duplicated unit
    b0 = np.zeros(W0.shape[1])
    W1 = np.array([[1, -1, 0], [1, 1, 1], [-1, 0, 1], [0, 1, -1], [1, 0, 0], [1, 0, 0]], float)
    b1 = np.array([0.5, -1.0, 0.0])
    params = ((W0, b0), (W1, b1), (np.array([[1.0], [1.0], [0.0]]), np.zeros(1)))
    net = pw.mlp(n_in, (W0.shape[1], 3), 1)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, n_in), progress=False)
    assert cx.regions == lp_region_count([W0, W1], [b0, b1], -1.0, 1.0)
    ref = _compare(cx, monkeypatch, [None, cx.same_map, _hash_keep])
    assert len(ref) >= cx.regions - 1
    assert 1 <= cx.linear_regions()[0] < cx.regions


# -- large label groups ------------------------------------------------------------------------------------------
def _label_groups(cx):
    """The facet list as ``adjacency_nd`` sorts it, and its (-, +) group sizes."""
    X, n, inc, flab, events = _args(cx)
    ci, si, cen = E._facet_entries(X, n, inc, flab)
    lab = flab[ci, si].astype(np.int64)
    g, e = events.plane(lab)
    side = np.einsum("pd,pd->p", cen[ci], g) + e > 0
    order = np.lexsort((side, lab))
    ci, si, lab, side = ci[order], si[order], lab[order], side[order]
    bounds = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1], True])
    s0, s1 = bounds[:-1], bounds[1:]
    m = s0 + np.add.reduceat((~side).astype(np.int64), s0)
    return ci, si, lab, side, s0, m, s1


def _dense_candidates(X, n, inc, ci, s0, m, s1, si):
    """Every (-, +) pair of every label group whose boxes meet, one minus facet at a time against its
    whole plus side, boxes as the previous implementation computed them (masked min / max over K)."""
    K = X.shape[1]
    valid = np.arange(K)[None, :] < n[:, None]
    f = _bits(np.where(valid, inc, np.uint64(0)))[ci, :, si] & valid[ci]  # (E, K)
    lo = np.where(f[..., None], X[ci], np.inf).min(1)
    hi = np.where(f[..., None], X[ci], -np.inf).max(1)
    out = set()
    for g0, g1, g2 in zip(s0, m, s1):
        for a in range(g0, g1):
            ok = np.all((np.minimum(hi[a], hi[g1:g2]) - np.maximum(lo[a], lo[g1:g2])) > -U_ATOL, 1)
            out.update((a, int(b)) for b in np.flatnonzero(ok) + g1)
    return out, lo, hi


@pytest.mark.slow
def test_large_label_groups_4d(monkeypatch):
    """4-D box, MLP 4-(8,8,8)-1 (9,424 cells): the previous version formed all 8 million (-, +) pairs of
    equal labels and (pairs, K, d) arrays for their boxes (16 GiB). Now: the boxes are the previous ones,
    the candidates after the box test are exactly those of a dense test of every pair (each once, same
    label, minus then plus side), the sweep tests far fewer than all pairs of the largest groups, and
    linear regions finish."""
    net = pw.mlp(4, (8, 8, 8), 1, activation="relu")
    params = random_params(net, 1, bias_std=0.1)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 4), progress=False)
    X, n, inc, flab, _ = _args(cx)
    ci, si, lab, side, s0, m, s1 = _label_groups(cx)
    cnt = (m - s0) * (s1 - m)
    print(f"{cx.regions} cells, {cnt.sum()} (-, +) pairs, largest group {cnt.max()} "
          f"({(m - s0)[cnt.argmax()]} x {(s1 - m)[cnt.argmax()]})")
    assert cnt.max() > 8 * E._PAIR_CHUNK  # groups far larger than a chunk
    dense, lo0, hi0 = _dense_candidates(X, n, inc, ci, s0, m, s1, si)
    lo, hi = E._facet_boxes(X, n, inc, ci, si)
    np.testing.assert_array_equal(lo, lo0)
    np.testing.assert_array_equal(hi, hi0)
    a, b = (np.concatenate(x) for x in zip(*E._candidate_pairs(lab, side, lo, hi)))
    got = set(zip(a.tolist(), b.tolist()))
    print(f"{len(got)} pairs after the box test")
    assert len(got) == len(a) and got == dense
    assert np.all(lab[a] == lab[b]) and not side[a].any() and side[b].all()
    # the sweep does not test every pair of the largest groups
    tested, meet = [0], E._boxes_meet

    def counting(lo_a, hi_a, lo_b, hi_b):
        r = meet(lo_a, hi_a, lo_b, hi_b)
        tested[0] += r.size
        return r

    big = np.argsort(-cnt)[:3]
    with monkeypatch.context() as mp:
        mp.setattr(E, "_boxes_meet", counting)
        for i in big:
            list(E._big_group_pairs(int(s0[i]), int(m[i]), int(s1[i]), lo, hi))
    print(f"largest 3 groups: {tested[0]} of {cnt[big].sum()} pairs box-tested")
    assert tested[0] < 0.75 * cnt[big].sum()
    nl, labels = cx.linear_regions()
    assert 1 <= nl <= cx.regions and len(labels) == cx.regions


@pytest.mark.slow
def test_keep_before_or_after_the_exact_test(shared_lps, monkeypatch):
    """Filtering the candidates with the gradient test before the exact test, or the adjacency after it,
    gives the same pairs (3-D 3-(5,5)-1, and again with label groups forced through the sweep)."""
    net = pw.mlp(3, (5, 5), 1)
    params = random_params(net, 3, bias_std=0.2)
    (W0, b0), (W1, b1), (W2, b2) = params
    W2 = W2.copy()
    W2[[1, 4]] = 0.0  # two units without effect on the output: cells to merge
    cx = pw.enumerate_cells(net, ((W0, b0), (W1, b1), (W2, b2)), pw.box(-1, 1, 3), progress=False)
    args = _args(cx)
    full = E.adjacency_nd(*args)
    after = full[cx.same_map(full)]
    before = E.adjacency_nd(*args, keep=cx.same_map)
    np.testing.assert_array_equal(before, after)
    assert 0 < len(before) < len(full)
    with monkeypatch.context() as mp:
        _tiny_chunks(mp)
        np.testing.assert_array_equal(E.adjacency_nd(*args, keep=cx.same_map), after)


# -- linear regions against an independent brute force ---------------------------------------------------------
def _relu_cell(params, x):
    """The ReLU cell containing the input point x: its units' affine functions, oriented to be >= 0 on
    the cell, (rows (r, n), offsets (r,)) and its gradient (n, n_out), from a NumPy forward pass."""
    n = len(x)
    A, c = np.eye(n), np.zeros(n)  # h = x @ A + c on the cell
    rows, offs, states = [], [], []
    for W, b in params[:-1]:
        G, e = A @ W, c @ W + b
        s = (x @ G + e > 0).astype(float)
        sign = 2 * s - 1
        rows.append((G * sign).T)
        offs.append(e * sign)
        states.append(s)
        A, c = G * s, e * s
    return np.concatenate(rows), np.concatenate(offs), A @ params[-1][0], np.concatenate(states)


def _share_facet(ca, cb, n):
    """Whether the closures of two cells (``_relu_cell``) in [-1, 1]^n share a piece of dimension n - 1:
    the first unit whose state differs is the same affine function on both cells, and the common piece
    lies on its plane H; one LP asks for a point of H at distance > 1e-9 from every other constraint of
    both cells and of the box."""
    (Ra, oa, _, sa), (Rb, ob, _, sb) = ca, cb
    diff = np.flatnonzero(sa != sb)
    j = diff[0]
    g, e = Ra[j], oa[j]
    keep_a = np.arange(len(oa)) != j
    keep_b = np.arange(len(ob)) != j
    R = np.r_[Ra[keep_a], Rb[keep_b], np.eye(n), -np.eye(n)]  # R x + o >= r |R|
    o = np.r_[oa[keep_a], ob[keep_b], np.ones(n), np.ones(n)]
    nrm = np.linalg.norm(R, axis=1)
    res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.c_[-R, nrm], b_ub=o, A_eq=np.r_[g, 0.0][None],
                  b_eq=[-e], bounds=[(None, None)] * n + [(None, 1.0)], method="highs")
    return res.status == 0 and -res.fun > 1e-9


@pytest.mark.parametrize("seed,dead", [(0, False), (1, True), (2, True)])
def test_linear_regions_against_lp_brute_force_3d(seed, dead):
    """3-D box, ReLU 3-(3,3)-1 (optionally with a second-layer unit cut from the output, so that cells
    merge). Independent of the engine's geometry: each cell's constraints and gradient come from a NumPy
    forward pass at its interior point; two cells are neighbours iff one LP finds a point on the plane of
    the first unit whose state differs, at distance > 1e-9 from every other constraint of both cells and
    of the box (for generic random weights, exactly a common facet piece). The engine's adjacency must be
    that set of pairs, and its linear regions the connected components of neighbours with equal
    gradients (np.allclose, relative 1e-9): the same partition of the cells."""
    net = pw.mlp(3, (3, 3), 1)
    params = random_params(net, seed, bias_std=0.4)
    if dead:
        (W0, b0), (W1, b1), (W2, b2) = params
        W2 = W2.copy()
        W2[seed % 3] = 0.0
        params = ((W0, b0), (W1, b1), (W2, b2))
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 3), progress=False)
    assert cx.regions == lp_region_count([params[0][0], params[1][0]], [params[0][1], params[1][1]], -1.0, 1.0)
    cells = [_relu_cell(params, x) for x in cx.interior_points()]
    assert len({c[3].tobytes() for c in cells}) == cx.regions
    adj = {(a, b) for a in range(cx.regions) for b in range(a + 1, cx.regions) if _share_facet(cells[a], cells[b], 3)}
    assert _set(cx.adjacency) == adj
    # components of neighbours with equal gradients (union-find)
    parent = list(range(cx.regions))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in adj:
        Ga, Gb = cells[a][2], cells[b][2]
        if np.allclose(Ga, Gb, rtol=1e-9, atol=1e-9 * (np.abs(Ga).max() + np.abs(Gb).max())):
            parent[root(a)] = root(b)
    comp = np.array([root(i) for i in range(cx.regions)])
    cx2 = pw.enumerate_cells(net, params, pw.box(-1, 1, 3), progress=False)  # fresh: the filtered path
    nl, labels = cx2.linear_regions()
    assert nl == len(set(comp.tolist()))
    # the same partition
    assert len({(int(x), int(y)) for x, y in zip(labels, comp)}) == nl
    if dead:
        assert nl < cx.regions


def test_a_failing_facet_lp_is_retried_then_refused(monkeypatch):
    """HiGHS failing (status 4) on the facet LP of linear regions: the other HiGHS methods are tried, then the
    count is refused with the solver's message (a failed LP used to count as "not adjacent", in silence)."""
    import scipy.optimize

    from piecewise.errors import PiecewiseError

    net = pw.mlp(3, (6, 6), 1)
    cx = pw.enumerate_cells(net, random_params(net, 2, bias_std=0.3), pw.box(-1, 1, 3), progress=False)
    methods = []

    class Res:
        status, message, fun, x = 4, "numerical difficulties (test)", 0.0, None

    def failing(*a, method=None, **k):
        methods.append(method)
        return Res()

    monkeypatch.setattr(scipy.optimize, "linprog", failing)
    monkeypatch.setattr(E, "_facets_overlap", E._facets_overlap)
    with pytest.raises(PiecewiseError, match="numerical difficulties"):
        cx.linear_regions()
    assert {"highs", "highs-ds", "highs-ipm"} <= set(methods)


def test_measure_total_is_the_cells_sum():
    net = pw.mlp(3, (6, 6), 1)
    cx = pw.enumerate_cells(net, random_params(net, 2, bias_std=0.3), pw.box(-1, 2, 3), progress=False)
    js = cx.to_json()
    assert js["measure_total"] == float(cx.measure.sum())
    assert abs(js["measure_total"] - 27.0) <= 1e-9 * 27

"""The compiled kernel of elementwise stages (piecewise/regions/_kernel.c) against the engine's NumPy path.

Every other exact test runs on the kernel when it is built (CI requires it: PIECEWISE_KERNEL=c); here the
two paths are run on the same nets and must give the same cells: the same patterns, the same vertices
(bit for bit: both evaluate the same float64 expressions), the same labels, so the same linear regions.
The NumPy path itself is checked against closed forms and LP brute force in test_exact.py (and CI runs that
file once more with PIECEWISE_KERNEL=numpy)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import piecewise as pw
from piecewise.errors import PiecewiseError
from piecewise.regions import _ckernel

pytestmark = pytest.mark.skipif(not _ckernel.available(), reason="the compiled kernel is not built here")


def _run(monkeypatch, mode, net, params, dom, **kw):
    monkeypatch.setenv("PIECEWISE_KERNEL", mode)
    return pw.enumerate_cells(net, params, dom, progress=False, **kw)


def _by_pattern(cx):
    keys = np.ascontiguousarray(cx.patterns).view(np.dtype((np.void, 4 * cx.patterns.shape[1]))).ravel()
    return np.argsort(keys), keys


def assert_same_cells(a, b, linear=True):
    assert a.regions == b.regions
    oa, ka = _by_pattern(a)
    ob, kb = _by_pattern(b)
    assert np.array_equal(ka[oa], kb[ob]), "different activation patterns"
    na, nb = a.n_vertices[oa], b.n_vertices[ob]
    assert np.array_equal(na, nb), "different vertex counts"
    K = int(na.max())
    valid = np.arange(K)[None, :] < na[:, None]
    assert np.array_equal(a.vertices[oa, :K][valid], b.vertices[ob, :K][valid]), "different vertices"
    np.testing.assert_array_equal(a.jacobian_u[oa], b.jacobian_u[ob])
    if linear:
        assert a.linear_regions()[0] == b.linear_regions()[0]
    if linear and a.dim <= 2:  # (n-D adjacency without the gradient filter is one LP per candidate pair: slow)
        # the same adjacency, cells named by their pattern's rank
        ranked = []
        for cx, o in ((a, oa), (b, ob)):
            rank = np.empty(len(o), np.int64)
            rank[o] = np.arange(len(o))
            ranked.append(np.unique(np.sort(rank[cx.adjacency], 1), axis=0))
        assert np.array_equal(*ranked), "different adjacency"


def _mlp(n_in, widths, act, seed, n_out=2, bias=0.1):
    net = pw.mlp(n_in, widths, n_out, act)
    params = net.init(key=__import__("jax").random.key(seed), bias_std=bias)
    return net, tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params)


@pytest.mark.parametrize("n_in,widths,act", [
    (2, (16, 16, 16), "relu"), (2, (12, 12), "hardtanh"), (2, (10, 10), "leaky_relu:0.2"), (2, (10, 10), "abs"),
    (3, (8, 8, 8), "relu"), (3, (6, 6), "hardtanh"), (4, (6, 6, 6), "relu"), (3, (7, 7), "abs"),
])
def test_kernel_equals_numpy_path(monkeypatch, n_in, widths, act):
    net, params = _mlp(n_in, widths, act, seed=len(widths) + n_in)
    dom = pw.box(-1, 1, n_in)
    assert_same_cells(_run(monkeypatch, "c", net, params, dom), _run(monkeypatch, "numpy", net, params, dom))


def test_kernel_plane_slice_and_threads(monkeypatch):
    net, params = _mlp(6, (20, 20), "relu", seed=3)
    dom = pw.plane(np.random.default_rng(0).normal(size=(3, 6)))
    ref = _run(monkeypatch, "numpy", net, params, dom)
    for threads in (1, 2):
        cx = _run(monkeypatch, "c", net, params, dom, threads=threads)
        assert_same_cells(cx, ref)
        # event labels are registered in chunk order: the same on one thread or two
        if threads == 1:
            first = cx
    assert np.array_equal(first.facets[0], cx.facets[0])


def _integer_net(r, n_in, widths):
    net = pw.mlp(n_in, widths, 1)
    params = tuple((r.integers(-2, 3, size=s).astype(float), r.integers(-1, 2, size=b).astype(float))
                   for s, b in net.param_shapes())
    return net, params


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), n_in=st.sampled_from([2, 3]), w1=st.integers(1, 6), w2=st.integers(1, 6))
def test_kernel_degenerate_integer_nets(monkeypatch, seed, n_in, w1, w2):
    # integer weights: hyperplanes through vertices and box corners, duplicates, dead units, flat units
    net, params = _integer_net(np.random.default_rng(seed), n_in, (w1, w2))
    dom = pw.box(-1, 1, n_in)
    assert_same_cells(_run(monkeypatch, "c", net, params, dom), _run(monkeypatch, "numpy", net, params, dom))


def test_kernel_mixed_with_max_stages(monkeypatch):
    # relu -> max-pool over overlapping windows -> relu -> PReLU: the kernel's ragged cells are padded for
    # the NumPy max stage and back
    from piecewise.activations import get_activation
    from piecewise.staged import Stage, StagedNet

    r = np.random.default_rng(4)
    for n_in in (2, 3):
        stages = (
            Stage(get_activation("relu"), {0: r.normal(size=(n_in, 6))}, r.normal(size=6) * 0.5),
            Stage(get_activation("maxout:3"), {1: np.eye(6)}, np.zeros(6), groups=np.array([[0, 1, 2], [2, 3, 4], [4, 5, 5]])),
            Stage(get_activation("relu"), {2: r.normal(size=(3, 5)), 0: r.normal(size=(n_in, 5))}, r.normal(size=5) * 0.3),
            Stage(get_activation("leaky_relu:0.1"), {3: r.normal(size=(5, 4))}, r.normal(size=4) * 0.3,
                  slopes=np.array([0.1, -0.3, 0.5, 2.0])),
        )
        net = StagedNet(n_in, stages, {4: r.normal(size=(4, 2)), 1: r.normal(size=(6, 2))}, np.zeros(2))
        dom = pw.box(-1, 1, n_in)
        assert_same_cells(_run(monkeypatch, "c", net, None, dom), _run(monkeypatch, "numpy", net, None, dom))


def test_kernel_max_cells_refuses_at_the_count(monkeypatch):
    net, params = _mlp(2, (12, 12), "relu", seed=1)
    dom = pw.box(-1, 1, 2)
    n = _run(monkeypatch, "c", net, params, dom).regions
    assert _run(monkeypatch, "c", net, params, dom, max_cells=n).regions == n
    with pytest.raises(PiecewiseError, match="max_cells"):
        _run(monkeypatch, "c", net, params, dom, max_cells=n - 1)


def test_kernel_switch(monkeypatch):
    monkeypatch.setenv("PIECEWISE_KERNEL", "numpy")
    assert not _ckernel.available()
    monkeypatch.setenv("PIECEWISE_KERNEL", "c")
    assert _ckernel.available()
    monkeypatch.setattr(_ckernel, "_load", lambda: None)
    with pytest.raises(PiecewiseError, match="not built"):
        _ckernel.available()


@pytest.mark.slow
def test_threads_split_large_stages_and_change_nothing(monkeypatch):
    """A net whose stages start from more cells than both paths' thresholds for threads (kernel: several
    chunks; NumPy path: PARALLEL_MIN_CELLS stage-start cells), counted on 1, 2 and 3 threads: the same cells,
    and the threads really ran (a chunked map over more than one item on more than one thread)."""
    from piecewise.regions import _engine, parallel

    net, params = _mlp(2, (64, 64, 16), "relu", seed=5)
    dom = pw.box(-1, 1, 2)
    calls = []
    real = parallel.pmap

    def spy(fn, items, threads):
        items = list(items)
        calls.append((len(items), threads))
        return real(fn, items, threads)

    stages = []
    real_stage = _engine._stage

    def stage_spy(cells, st, G, E, bar, frac, start, ctx):
        stages.append(frac)
        return real_stage(cells, st, G, E, bar, frac, start, ctx)

    monkeypatch.setattr(parallel, "pmap", spy)
    monkeypatch.setattr(_engine, "_stage", stage_spy)
    out = {}
    for mode in ("c", "numpy"):
        for threads in (1, 2, 3):
            calls.clear()
            stages.clear()
            out[mode, threads] = _run(monkeypatch, mode, net, params, dom, threads=threads)
            if threads > 1:
                assert any(n > 1 and t == threads for n, t in calls), (mode, calls)
                if mode == "numpy":  # a stage's cells split among the threads
                    assert any(f == 1.0 / threads for f in stages), stages
    # BLAS rounds a GEMM differently on one thread or several (the maps of the cells on the engine's worker
    # threads use one BLAS thread each): the same cells and patterns, vertices equal within their error bounds
    ref = out["numpy", 1]
    o_r, k_r = _by_pattern(ref)
    for key, cx in out.items():
        o, k = _by_pattern(cx)
        assert cx.regions == ref.regions and np.array_equal(k[o], k_r[o_r]), key
        n = cx.n_vertices[o]
        assert np.array_equal(n, ref.n_vertices[o_r]), key
        K = int(n.max())
        valid = np.arange(K)[None, :] < n[:, None]
        dv = np.abs(cx.vertices_c[o, :K] - ref.vertices_c[o_r, :K]).max(-1)[valid]
        bound = (cx.vertex_err[o, :K] + ref.vertex_err[o_r, :K])[valid]
        assert np.all(dv <= bound), key


def test_default_threads_follow_the_affinity_and_the_environment(monkeypatch):
    from piecewise.regions import parallel

    monkeypatch.delenv("PIECEWISE_THREADS", raising=False)
    import os

    assert parallel.default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("PIECEWISE_THREADS", "3")
    assert parallel.default_threads() == 3
    monkeypatch.setenv("PIECEWISE_THREADS", "zero")
    with pytest.raises(PiecewiseError, match="PIECEWISE_THREADS"):
        parallel.default_threads()


def test_compiled_max_winners_equal_the_numpy_rule(monkeypatch):
    """The compiled whole-cell winners of max stages (``pw_max_winners``) are the NumPy rule's, unit by unit,
    on every max stage of a pool CNN (known values of off relus and of vertices on a unit's boundary) and of
    maxout MLPs in 2-D and 3-D (polytopes: float64 signs only)."""
    from piecewise.regions import _engine

    import test_graph_engine as tge

    real = _engine._max_winners
    seen = []

    def both(cells, ctx, st, G, E):
        monkeypatch.setenv("PIECEWISE_KERNEL", "c")
        a = real(cells, ctx, st, G, E)
        monkeypatch.setenv("PIECEWISE_KERNEL", "numpy")
        b = real(cells, ctx, st, G, E)
        monkeypatch.setenv("PIECEWISE_KERNEL", "c")
        np.testing.assert_array_equal(a, b)
        seen.append(((a >= 0).sum(), (a < 0).sum(), ctx.maxsrc is not None))
        return a

    monkeypatch.setattr(_engine, "_max_winners", both)
    monkeypatch.setenv("PIECEWISE_KERNEL", "c")
    pw.enumerate_cells(tge._pool_cnn(0), None, tge._plane(72, seed=0, scale=1.0), progress=False, keep_cells=False)
    assert any(known for *_, known in seen)
    for n0 in (2, 3):
        net = pw.mlp(n0, (6, 6), 1, activation="maxout:3")
        pw.enumerate_cells(net, tge.random_params(net, 5), pw.box(-1, 1, n0), progress=False)
    named, left = sum(s[0] for s in seen), sum(s[1] for s in seen)
    assert named > 1000 and left > 10  # both outcomes occur


def test_a_map_inside_the_engines_threads_runs_in_place_and_cannot_deadlock():
    """A stage split among the threads whose compiled part (max-stage winners) splits again waited on the same
    pool from inside it: with every worker waiting, the slow dd-maps CNN test hung CI for 90 minutes."""
    import threading

    from piecewise.regions import parallel

    def outer(i):
        return (threading.current_thread().name, parallel.pmap(lambda j: (threading.current_thread().name, i * 10 + j),
                                                               range(3), 2))

    result = {}
    t = threading.Thread(target=lambda: result.update(out=parallel.pmap(outer, range(4), 2)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "a map nested in the engine's threads deadlocked"
    for name, inner in result["out"]:
        assert name.startswith("piecewise-exact")
        assert [n for n, _ in inner] == [name] * 3  # ran in the calling worker
    assert [v for _, inner in result["out"] for _, v in inner] == [i * 10 + j for i in range(4) for j in range(3)]

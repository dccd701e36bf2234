"""The operator engine's JAX path (regions/jaxmaps.py: the affine operators on batched cell maps jit-compiled,
the path a GPU takes) against the NumPy path, on this CPU: exactly equal where float64 sums are exact, within
the rounding bound elsewhere, and the same cells when a whole count runs through it."""
import numpy as np
import pytest

import piecewise as pw
from piecewise.graph import GraphBuilder
from piecewise.numerics import gamma
from piecewise.regions import jaxmaps, opmaps
from piecewise.regions.graph_engine import enumerate_graph


def _every_operator(r, integer: bool):
    """A graph with every affine node the engine knows (strided, dilated, grouped and 1x1 convs, avg and global
    pooling, batch-norm, residual add with coefficients, concat, transpose/select, reshape, dense), with
    integer weights when ``integer`` (so that every float64 sum of small integers is exact)."""
    def w(*shape):
        return r.integers(-3, 4, size=shape).astype(float) if integer else r.normal(size=shape)

    gb = GraphBuilder((4, 9, 9))
    a = gb.conv(gb.input, w(6, 2, 3, 3), w(6), stride=2, padding=(1, 2, 3, 2), dilation=2, groups=2)
    b = gb.conv(gb.input, w(6, 4, 1, 1), None, stride=2)
    b = gb.avg_pool(b, 3, stride=1, padding=1)
    s = gb.add(a, b, coefs=[1.0, -2.0] if integer else [0.5, -1.25])
    s = gb.scale_shift(s, w(6, 1, 1), w(6, 1, 1))
    c = gb.concat([s, gb.conv(s, w(3, 6, 3, 3), w(3), padding=1)], axis=0)
    t = gb.transpose(c, (0, 2, 1))
    g = gb.global_avg_pool(t)
    out = gb.dense(gb.concat([gb.flatten(g), gb.flatten(gb.select(t, [0, 5, 7], (3,)))]), w(12, 2), w(2))
    return gb.build(out)


def _check_nodes(graph, r, integer):
    from piecewise.graph import _eval

    vals = {0: (r.integers(-4, 5, size=(11, *graph.input_shape)).astype(float) if integer
                else r.normal(size=(11, *graph.input_shape)))}
    ops = set()
    for k, nd in enumerate(graph.nodes):
        if k == 0:
            continue
        # integer: fresh small integers at every node (a pool's 1/9 would make its readers' sums inexact)
        ins = [r.integers(-4, 5, size=vals[i].shape).astype(float) if integer else vals[i] for i in nd.inputs]
        want = opmaps.apply(nd, ins)
        got = jaxmaps.linear(nd, ins)
        assert got.shape == want.shape, nd.op
        if integer and nd.op != "global_avgpool":  # XLA's mean multiplies by a rounded 1 / n
            np.testing.assert_array_equal(got, want, err_msg=nd.op)
        else:
            t = opmaps.terms(nd, [v.shape[1:] for v in ins])
            bound = 2 * gamma(t + 3) * opmaps.apply(nd, [np.abs(v) for v in ins], absolute=True)
            assert np.all(np.abs(got - want) <= bound + 1e-300), nd.op
        ops.add(nd.op)
        vals[k] = _eval(nd, ins, np, False, 11)  # the graph's own forward (with constants) feeds the next node
    return ops


@pytest.mark.parametrize("integer", [True, False])
def test_jax_operators_equal_numpys(integer):
    r = np.random.default_rng(3)
    ops = _check_nodes(_every_operator(r, integer), r, integer)
    assert {"conv", "avgpool", "add", "scale_shift", "concat", "gather", "global_avgpool", "dense"} <= ops


def test_a_count_through_the_jax_maps_finds_the_numpy_counts_cells(monkeypatch):
    r = np.random.default_rng(0)
    gb = GraphBuilder((2, 6, 6))
    h = gb.relu(gb.conv(gb.input, r.normal(size=(3, 2, 3, 3)), r.normal(size=3) * 0.1, padding=1))
    h2 = gb.conv(h, r.normal(size=(3, 3, 3, 3)) * 0.5, r.normal(size=3) * 0.1, padding=1)
    h = gb.max_pool(gb.relu(gb.add(h, h2)), 2)
    h = gb.leaky_relu(gb.conv(h, r.normal(size=(4, 3, 2, 2)), None), 0.1)
    g = gb.build(gb.dense(gb.flatten(gb.avg_pool(h, 2)), r.normal(size=(4, 3))))
    x = r.normal(size=72)
    dom = pw.plane(np.stack([x, x + 0.5 * r.normal(size=72), x + 0.5 * r.normal(size=72)]))
    out = {}
    for maps in ("numpy", "jax"):
        monkeypatch.setenv("PIECEWISE_MAPS", maps)
        for budget in (None, 2e6):
            out[maps, budget] = enumerate_graph(g, dom, keep_cells=False, progress=False, memory_budget=budget)
    ref = out["numpy", None]
    assert ref.engine["maps"] == "numpy" and ref.regions > 20
    for (maps, budget), rc in out.items():
        assert rc.engine["maps"] == ("numpy" if maps == "numpy" else "jax (cpu)")
        assert sorted(bytes(w) for w in rc.patterns) == sorted(bytes(w) for w in ref.patterns), (maps, budget)
        assert rc.measure.sum() == pytest.approx(dom.measure(), rel=1e-9)
    assert out["jax", 2e6].engine["chunks"] > 5


def test_the_maps_path_is_chosen_by_name_and_a_bad_name_is_refused(monkeypatch):
    monkeypatch.setenv("PIECEWISE_MAPS", "numpy")
    assert jaxmaps.backend() == "numpy"
    monkeypatch.setenv("PIECEWISE_MAPS", "JAX ")
    assert jaxmaps.backend() == "jax"
    monkeypatch.setenv("PIECEWISE_MAPS", "cuda")
    with pytest.raises(pw.PiecewiseError, match="PIECEWISE_MAPS must be"):
        jaxmaps.backend()
    monkeypatch.setenv("PIECEWISE_MAPS", "auto")
    jaxmaps._accelerator.cache_clear()
    monkeypatch.setattr(jaxmaps, "ACCELERATOR_PLUGINS", ("no_such_plugin_here",))
    assert jaxmaps.backend() == "numpy"  # no accelerator plugin: the NumPy path, without asking JAX
    jaxmaps._accelerator.cache_clear()


def test_batches_are_padded_to_few_sizes():
    sizes = [jaxmaps.bucket(n) for n in range(1, 100_001)]
    assert all(b >= n for n, b in zip(range(1, 100_001), sizes))
    assert all(b <= max(8, 1.5 * n) for n, b in zip(range(1, 100_001), sizes))
    assert len(set(sizes)) <= 30

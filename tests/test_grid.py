import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import piecewise as pw
from conftest import pool_cnn, random_params
from geometry import breakpoints_on_segment, lines_of_shallow, regions_in_box

ACTS = [("relu", "relu"), ("leaky_relu:0.1", "relu"), ("abs", "relu"), ("hardtanh", "hardtanh"),
        ("maxout:2", "maxout2")]


@pytest.mark.parametrize("act,kind", ACTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_shallow_net_matches_closed_form(act, kind, seed):
    net = pw.mlp(2, (7,), 1, act)
    params = random_params(net, seed, bias_std=0.5)
    exact = regions_in_box(lines_of_shallow(*params[0], kind), (-1, -1), (1, 1))
    g = pw.count_grid(net, params, pw.box(-1, 1, 2), 1025)
    assert g.regions <= exact
    assert g.regions >= 0.9 * exact
    assert g.point_counts.sum() + g.n_boundary == g.n_points


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 10**6), bias=st.floats(0.0, 1.5),
       lo=st.integers(-300, 50).map(lambda i: i / 100), size=st.integers(10, 400).map(lambda i: i / 100))
@pytest.mark.slow
def test_never_more_than_closed_form(n, seed, bias, lo, size):
    net = pw.mlp(2, (n,), 1)
    params = random_params(net, seed, bias_std=bias)
    exact = regions_in_box(lines_of_shallow(*params[0]), (lo, lo), (lo + size, lo + size))
    g = pw.count_grid(net, params, pw.box(lo, lo + size, 2), 257)
    assert 1 <= g.regions <= exact


@pytest.mark.slow
def test_count_never_decreases_with_nested_resolution():
    net = pw.mlp(2, (16, 16), 1)
    params = random_params(net, 3, bias_std=0.2)
    counts = [pw.count_grid(net, params, pw.box(-1, 1, 2), 2**j + 1).regions for j in range(4, 11)]
    assert counts == sorted(counts)
    assert counts[-1] > counts[0]


def test_origin_of_bias_free_net_is_not_a_region():
    # three lines through 0 at 120 degrees: 6 wedges; the all-off pattern at the origin belongs to no region
    ang = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
    W0 = np.stack([np.cos(ang), np.sin(ang)])
    params = ((W0, np.zeros(3)), (np.ones((3, 1)), np.zeros(1)))
    net = pw.mlp(2, (3,), 1)
    g = pw.count_grid(net, params, pw.box(-1, 1, 2), 101, return_ids=True)  # 101 points: 0 is on the grid
    assert g.regions == 6
    assert g.n_boundary >= 1 and g.ids[50, 50] == -1
    g32 = pw.count_grid(net, params, pw.box(-1, 1, 2), 101, dtype=np.float32)
    assert g32.regions == 6


def test_breakpoint_on_box_edge_is_not_a_region():
    # relu(x1) breaks exactly on the left edge of [0, 1]^2: one region inside the box, not two
    params = ((np.array([[1.0], [0.0]]), np.zeros(1)), (np.ones((1, 1)), np.zeros(1)))
    g = pw.count_grid(pw.mlp(2, (1,), 1), params, pw.box(0, 1, 2), 65)
    assert g.regions == 1 and g.n_boundary == 65


def test_flat_unit_region_is_counted():
    # layer 2 copies relu(z1): identically zero on the half plane z1 < 0 (every point there is "on" its breakpoint)
    W0 = np.array([[1.0], [0.3]])
    params = ((W0, np.array([0.1])), (np.array([[1.0]]), np.zeros(1)), (np.ones((1, 1)), np.zeros(1)))
    net = pw.mlp(2, (1, 1), 1)
    for dtype in (np.float32, np.float64):
        g = pw.count_grid(net, params, pw.box(-1, 1, 2), 129, dtype=dtype)
        assert g.regions == 2


def test_dead_and_duplicate_units_do_not_add_regions():
    net = pw.mlp(2, (6,), 1)
    (W0, b0), out = random_params(net, 4, bias_std=0.3)
    base = pw.count_grid(net, ((W0, b0), out), pw.box(-1, 1, 2), 513).regions
    W0d = np.c_[W0, np.zeros(2), W0[:, :2]]  # a dead unit and two duplicates
    b0d = np.r_[b0, 0.0, b0[:2]]
    net_d = pw.mlp(2, (9,), 1)
    got = pw.count_grid(net_d, ((W0d, b0d), (np.ones((9, 1)), np.zeros(1))), pw.box(-1, 1, 2), 513).regions
    assert got == base


@pytest.mark.slow
def test_plane_slice_equals_composed_two_input_net():
    net = pw.mlp(5, (9, 6), 1)
    params = random_params(net, 5, bias_std=0.3)
    P = np.random.default_rng(0).normal(size=(3, 5))
    g = pw.count_grid(net, params, pw.plane(P), 513)
    A = P[1:] - P[0]
    (W0, b0), rest = params[0], params[1:]
    net2 = pw.mlp(2, (9, 6), 1)
    g2 = pw.count_grid(net2, ((A @ W0, b0 + P[0] @ W0), *rest), pw.box(0, 1, 2), 513)
    assert g.regions == g2.regions


def test_plane_slice_of_shallow_net_matches_closed_form():
    net = pw.mlp(6, (8,), 1)
    params = random_params(net, 6, bias_std=0.5)
    P = np.random.default_rng(1).normal(size=(3, 6)) * 0.5
    W0, b0 = params[0]
    A = P[1:] - P[0]
    exact = regions_in_box(np.c_[(A @ W0).T, b0 + P[0] @ W0], (0, 0), (1, 1))
    g = pw.count_grid(net, params, pw.plane(P), 1025)
    assert 0.9 * exact <= g.regions <= exact


def test_segment_matches_breakpoints():
    net = pw.mlp(3, (12,), 1)
    params = random_params(net, 8, bias_std=0.5)
    p0, p1 = np.array([-1.0, -0.5, 0.2]), np.array([1.0, 0.7, -0.4])
    exact = 1 + len(breakpoints_on_segment(*params[0], p0, p1))
    g = pw.count_grid(net, params, pw.segment(p0, p1), 2**16 + 1)
    assert g.regions == exact


def test_three_dim_box():
    net = pw.mlp(3, (4,), 1)
    params = random_params(net, 9, bias_std=0.2)
    g = pw.count_grid(net, params, pw.box(-1, 1, 3), 65)
    # 4 planes in R^3 in general position: at most 15 regions (Zaslavsky); all 4 cross a small neighbourhood of 0
    assert 8 <= g.regions <= 15


def test_ids_and_chunking_agree():
    net = pw.mlp(2, (10, 10), 1)
    params = random_params(net, 10, bias_std=0.2)
    a = pw.count_grid(net, params, pw.box(-1, 1, 2), 300, return_ids=True, chunk_size=2**16)
    b = pw.count_grid(net, params, pw.box(-1, 1, 2), 300, return_ids=True, chunk_size=2**10)
    assert a.regions == b.regions
    # same partition of the grid (ids may be numbered differently)
    pairs = set(zip(a.ids.ravel().tolist(), b.ids.ravel().tolist()))
    assert len(pairs) == a.regions + (1 if (a.ids < 0).any() else 0)
    # ids agree with pattern_words at the grid points
    X = pw.regions.grid_points(pw.box(-1, 1, 2), 300).reshape(-1, 2)
    words = np.asarray(pw.pattern_words(net, jax.tree_util.tree_map(lambda t: np.asarray(t, np.float32), params), X))
    ok = a.ids.ravel() >= 0
    np.testing.assert_array_equal(words[ok], a.patterns[a.ids.ravel()[ok]])


@pytest.mark.parametrize("bad", [
    lambda net, p: pw.count_grid(net, p, pw.box(-1, 1, 3), 10),
    lambda net, p: pw.count_grid(net, p, pw.box(-1, 1, 2), 1),
    lambda net, p: pw.box(1, 1, 2),
    lambda net, p: pw.box(0, np.nan, 2),
    lambda net, p: pw.plane(np.zeros((3, 2))),
    lambda net, p: pw.plane(np.zeros((2, 2))),
    lambda net, p: pw.count_grid(pw.mlp(2, (3,), 1, "tanh"), p, pw.box(-1, 1, 2), 10),
    lambda net, p: pw.count_grid(net, p, pw.box(-1, 1, 2), 10, chunk_size=1000),
])
def test_bad_input(bad):
    net = pw.mlp(2, (3,), 1)
    with pytest.raises(pw.PiecewiseError):
        bad(net, random_params(net))


# -- validation: the library checks what the CLI checks (issue #18) ------------------------------------
def _with(params, i, kind, value):
    """params with array kind ('W' or 'b') of layer i replaced by ``value(array)``."""
    out = [list(p) for p in params]
    out[i][0 if kind == "W" else 1] = value(np.array(out[i][0 if kind == "W" else 1]))
    return tuple(tuple(p) for p in out)


def _nan_at_0(a):
    a.flat[0] = np.nan
    return a


def _inf_at_0(a):
    a.flat[0] = np.inf
    return a


BIG = 1e20  # two layers of weights 1e20: pre-activations ~1e40 in layer 2, beyond float32, fine for float64


def _big(params):
    return tuple((np.full_like(W, BIG), b) for W, b in params[:-1]) + (params[-1],)


@pytest.mark.parametrize("case, needle", [
    (lambda net, p: (_with(p, 1, "W", _nan_at_0), pw.box(-1, 1, 2), np.float32), "W1 contains NaN"),
    (lambda net, p: (_with(p, 0, "b", _inf_at_0), pw.box(-1, 1, 2), np.float64), "b0 contains NaN or inf"),
    (lambda net, p: (_with(p, 0, "W", lambda a: a[:, :3]), pw.box(-1, 1, 2), np.float32), "W0 has shape"),
    (lambda net, p: (list(p)[:-1], pw.box(-1, 1, 2), np.float32), "(W, b) pairs"),
    (lambda net, p: ({"W0": p[0][0]}, pw.box(-1, 1, 2), np.float32), "tuple of (W, b) pairs"),
    (lambda net, p: (_with(p, 0, "W", lambda a: a.astype(complex)), pw.box(-1, 1, 2), np.float32), "complex"),
    (lambda net, p: (p, pw.box(-1e40, 1e40, 2), np.float32), "use float64"),
    (lambda net, p: (p, pw.plane([[0, 0], [2e38, 0], [0, 2e38]]), np.float32), "use float64"),
    (lambda net, p: (_big(p), pw.box(-1, 1, 2), np.float32), "stage 2's pre-activations"),
    (lambda net, p: (p, pw.box(-1e60, 1e60, 2), np.float64), "float64 arithmetic would overflow"),
    (lambda net, p: (p, pw.regions.Domain("box", np.array([np.nan, 0.0]), np.eye(2)), np.float64), "NaN"),
    (lambda net, p: (p, pw.box(-1, 1, 2), np.float16), "float32 or float64"),
])
def test_count_grid_refuses_bad_params_domains_and_overflow(case, needle):
    """Before issue #18 count_grid counted NaN weights (1 region) and a float32 grid of [-1e40, 1e40]^2
    (float32 infinity: 1-2 regions) without a word."""
    net = pw.mlp(2, (8, 8), 1)
    params, domain, dtype = case(net, random_params(net, 0))
    with pytest.raises(pw.PiecewiseError, match=needle.replace("(", r"\(").replace(")", r"\)")) as e:
        pw.count_grid(net, params, domain, 33, dtype=dtype)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_float64_counts_where_float32_is_refused():
    net = pw.mlp(2, (8, 8), 1)
    params = random_params(net, 0)
    huge = pw.count_grid(net, params, pw.box(-1e40, 1e40, 2), 65, dtype=np.float64)
    # the box holds every hyperplane: the count of a box 10^40 times larger than the features, i.e. of the
    # network's whole arrangement seen from afar, equals that of a box 10^6 times larger
    assert huge.regions == pw.count_grid(net, params, pw.box(-1e6, 1e6, 2), 65, dtype=np.float64).regions > 2
    big = _big(params)
    assert pw.count_grid(net, big, pw.box(-1, 1, 2), 33, dtype=np.float64).regions >= 1
    g = pw.graph.from_mlp(net, big)  # a graph (its own weights): the same bound
    with pytest.raises(pw.PiecewiseError, match="use float64"):
        pw.count_grid(g, None, pw.box(-1, 1, 2), 33)
    assert pw.count_grid(g, None, pw.box(-1, 1, 2), 33, dtype=np.float64).regions >= 1


# -- precision: every product whose sign is read is at HIGHEST (TF32 on GPUs, bf16 on TPUs otherwise) ------
def _dot_precisions(jaxpr):
    """The precision of every dot_general in a jaxpr, its sub-jaxprs included (jit, scan, cond, ...)."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(eqn.params["precision"])
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                if hasattr(sub, "eqns"):
                    out += _dot_precisions(sub)
                elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                    out += _dot_precisions(sub.jaxpr)
    return out


def assert_all_highest(closed):
    precs = _dot_precisions(closed.jaxpr)
    assert precs, "no matrix product found: the test looks at the wrong function"
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    assert all(p == highest for p in precs), precs


@pytest.mark.parametrize("act", ["relu", "hardtanh", "maxout:2"])
@pytest.mark.parametrize("graph", [False, True], ids=["mlp", "graph"])
def test_grid_kernel_products_are_at_highest_precision(act, graph):
    from piecewise.patterns import as_staged, staged_params
    from piecewise.regions.grid import _chunk_kernel

    net = pw.mlp(2, (5, 4), 1, act)
    params = tuple(jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), random_params(net, 1)))
    if graph:
        net = as_staged(pw.graph.from_mlp(net, random_params(net, 1)))
        params = staged_params(net)
    origin, axes = np.full(2, -1.0, np.float32), 2 * np.eye(2, dtype=np.float32)
    closed = jax.make_jaxpr(_chunk_kernel, static_argnums=(0, 1, 2))(net, (17, 17), 256, params, origin, axes,
                                                                      np.int32(0))
    assert_all_highest(closed)


@pytest.mark.parametrize("seed", [0, 1])
def test_pool_windows_of_off_relus_are_exact_ties_not_boundaries(seed):
    """A max-pool window whose relus are all off ties at exactly 0: an exact tie (the lowest index wins, as in
    the exact engine), not a point near a boundary, so the grid no longer re-checks every point in float64
    (all of them before: some window of a CNN is off almost everywhere). Every grid point's pattern is still
    the float64 classification's, and every grid pattern is an exact cell's."""
    from piecewise.patterns import _classify_points, unpack_states
    from piecewise.regions._resolve import unpack_row
    from piecewise.regions.graph_engine import Program

    g = pool_cnn(seed)
    r = np.random.default_rng(seed + 10)
    x = r.normal(size=72)
    d1, d2 = r.normal(size=72), r.normal(size=72)
    dom = pw.plane(np.stack([x, x + d1, x + d2]))
    res = 96
    gc = pw.count_grid(g, None, dom, res, return_ids=True)
    assert gc.n_rechecked < 0.25 * gc.n_points
    S = g.to_staged()
    s = np.arange(res) / (res - 1)
    U = np.stack(np.meshgrid(s, s, indexing="ij"), -1).reshape(-1, 2)
    w64, valid = _classify_points(S, None, dom.points(U), dom.axes)
    ids = gc.ids.reshape(-1)
    assert np.array_equal(ids >= 0, valid)
    np.testing.assert_array_equal(gc.patterns[ids[valid]], w64[valid])
    rc = pw.enumerate_cells(g, None, dom, keep_cells=False, progress=False)
    prog = Program(g)
    widths = [st.width for st in prog.stages]
    E = unpack_row(rc.patterns, prog.bits, widths, len(widths))
    exact = {np.concatenate([a[i] for a in E]).astype(np.int32).tobytes() for i in range(rc.regions)}
    grid = [np.concatenate(st).astype(np.int32) for st in zip(*unpack_states(S, gc.patterns))]
    assert gc.regions > 10 and all(p.tobytes() in exact for p in grid)
    # inputs 2^40 larger (the first conv's weights 2^40 smaller: every float product scales exactly), the
    # output 2^-60: the same points re-checked and the same pattern at every point
    big = pw.plane(np.stack([x, x + d1, x + d2]) * 2.0**40)
    gs = pw.count_grid(pool_cnn(seed, s_in=2.0**40, s_out=2.0**-60), None, big, res, return_ids=True)
    assert gs.n_rechecked == gc.n_rechecked
    np.testing.assert_array_equal(gs.ids, gc.ids)
    np.testing.assert_array_equal(gs.patterns, gc.patterns)

def test_only_ties_of_exact_zeros_are_decided_without_a_recheck():
    """forward_states on one 2x2 max-pool window, behind relus and directly on the inputs: a tie of pieces
    that are exactly 0 (relus off, inputs 0) is decided (the lowest index); a tie of nonzero pieces (-1 and
    -1 on the inputs), or exact zeros beside a piece within tolerance of them, is near a boundary. (Treating
    every piece as exact fails the first row on the inputs.)"""
    from piecewise.graph import GraphBuilder
    from piecewise.patterns import forward_states, staged_params
    from piecewise.staged import skeleton

    X = np.array([[-1.0, -2.0, -3.0, -1.0],    # all relus off: exact tie at 0
                  [0.5, 0.5, -1.0, -1.0],      # two pieces tie at 0.5
                  [-1.0, -2.0, 0.5, -1.0],     # one winner, no tie
                  [0.0, 0.0, 0.0, 0.0],        # relus on their breakpoint
                  [-1.0, 1e-9, -1.0, -1.0]])   # behind relus: a piece 1e-9 above three exact zeros
    for relu, want_near in [(True, [False, True, False, True, True]), (False, [True, True, False, False, False])]:
        gb = GraphBuilder((1, 2, 2))
        h = gb.relu(gb.input) if relu else gb.input
        g = gb.build(gb.dense(gb.flatten(gb.max_pool(h, 2)), np.ones((1, 1))))
        S = g.to_staged()
        with jax.enable_x64(True):
            states, near = forward_states(skeleton(S), staged_params(S), jnp.asarray(X), 1e-6)
        assert list(np.asarray(near)) == want_near, relu
        assert int(np.asarray(states[-1])[0, 0]) == 0  # the exact tie: the lowest index

"""Dask execution: tiled exact counts (against untiled counts and hand counts), spec sweeps (against the
serial run and direct counts), failures and resume, spec validation, Dask being optional."""
import argparse
import json
import sys

import jax
import numpy as np
import pytest

import piecewise as pw
from piecewise import distributed as dist
from piecewise import sweep as sw
from piecewise.regions.tiles import tile_domains, tile_grid, tiled_count

from conftest import random_params

dd = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def cluster():
    """A real Dask scheduler with two in-process workers (threads), shared by the module's tests."""
    with dd.LocalCluster(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        yield c


def untiled(net, params, domain, linear=True):
    cx = pw.enumerate_cells(net, params, domain, progress=False)
    return cx.regions, (cx.linear_regions()[0] if linear else None)


def net_from(Ws, bs, activation="relu"):
    """An MLP from explicit float64 layers (W (fan_in, fan_out), b (fan_out,))."""
    params = tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in zip(Ws, bs))
    sizes = [params[0][0].shape[0]] + [W.shape[1] for W, _ in params]
    return pw.mlp(sizes[0], sizes[1:-1], sizes[-1], activation), params


# -- the tiling ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("domain, tiles, grid", [
    (pw.box(-1, 1, 2), 9, (3, 3)),
    (pw.segment([0, 0], [1, 2]), 5, (5,)),
    (pw.box([0, 0, 0], [4, 1, 1]), 4, (4, 1, 1)),  # the longest axis is cut first
    (pw.box(-1, 1, 3), 4, (2, 2, 1)),
    (pw.box(-1, 1, 3), 12, (3, 2, 2)),
])
def test_tile_grid_and_tiles_cover_the_domain(domain, tiles, grid):
    assert tile_grid(domain, tiles) == grid
    parts = tile_domains(domain, tiles)
    assert len(parts) == tiles
    assert sum(t.measure() for _, t in parts) == pytest.approx(domain.measure(), rel=1e-12)
    lo = np.min([t.origin for _, t in parts], 0)
    hi = np.max([t.origin + t.axes.sum(0) for _, t in parts], 0)
    np.testing.assert_allclose(lo, np.minimum(domain.origin, domain.origin + domain.axes.sum(0)), atol=1e-12)
    np.testing.assert_allclose(hi, np.maximum(domain.origin, domain.origin + domain.axes.sum(0)), atol=1e-12)


def test_tiles_must_be_a_square_in_2d():
    with pytest.raises(pw.PiecewiseError, match="square number"):
        tile_grid(pw.box(-1, 1, 2), 8)
    with pytest.raises(pw.PiecewiseError, match="positive integer"):
        tile_grid(pw.box(-1, 1, 2), 0)


# -- tiled = untiled -------------------------------------------------------------------------------------
RANDOM_CASES = [  # (n_in, widths, n_out, activation, domain, tiles, seed)
    (2, (12, 12), 2, "relu", pw.box(-1, 1, 2), 4, 0),
    (2, (10, 10, 10), 1, "relu", pw.box(-2, 3, 2), 16, 1),
    (2, (8, 8), 1, "leaky_relu:0.1", pw.box(-1, 1, 2), 9, 2),
    (2, (6, 6), 1, "hardtanh", pw.box(-2, 2, 2), 4, 3),
    (5, (10, 10), 2, "relu", pw.plane(np.random.default_rng(5).normal(size=(3, 5))), 9, 4),
    (2, (8, 8, 8), 1, "relu", pw.segment([-1, -1], [2, 1]), 7, 5),
    (3, (4, 4), 1, "relu", pw.box(-1, 1, 3), 4, 6),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", RANDOM_CASES, ids=lambda c: f"{c[3]}-{c[4].kind}{c[4].dim}-K{c[5]}")
def test_tiled_counts_equal_untiled_on_random_nets(case):
    n_in, widths, n_out, act, domain, tiles, seed = case
    net = pw.mlp(n_in, widths, n_out, act)
    params = random_params(net, seed)
    regions, lin = untiled(net, params, domain)
    out = tiled_count(net, params, domain, tiles, linear=True, progress=False)
    assert (out["regions"], out["linear_regions"]) == (regions, lin)
    assert out["tiles"] == tiles and out["method"] == "exact"
    assert out["measure_total"] == pytest.approx(domain.measure(), rel=1e-9)
    assert set(out) >= {"regions", "method", "seconds", "domain", "measure_total", "linear_regions", "tiles"}


def test_tiled_linear_regions_merge_across_many_borders():
    # dead output weights: many activation regions, and linear regions spanning several tiles
    net = pw.mlp(2, (10, 10), 1)
    params = list(random_params(net, 7))
    W, b = params[-1]
    params[-1] = (np.where(np.arange(10)[:, None] < 6, 0.0, W), b)
    params = tuple(params)
    regions, lin = untiled(net, params, pw.box(-1, 1, 2))
    assert lin < regions  # merges happen
    out = tiled_count(net, params, pw.box(-1, 1, 2), 16, linear=True, progress=False)
    assert (out["regions"], out["linear_regions"]) == (regions, lin)
    # a zero output layer: one linear region over all 16 tiles
    flat = params[:-1] + ((np.zeros_like(W), b),)
    out = tiled_count(net, flat, pw.box(-1, 1, 2), 16, linear=True, progress=False)
    assert out["regions"] == regions and out["linear_regions"] == 1


# hand counts on [-1, 1]^2 with K = 16 tiles (borders at -0.5, 0, 0.5): integer weights put hyperplanes
# exactly on tile borders and through tile corners
DEGENERATE = [
    # four lines through the origin (a tile corner): x = 0 and y = 0 on borders, the diagonals through corners
    ("star", [[[1, 0, 1, 1], [0, 1, 1, -1]], [[1], [2], [3], [5]]], [[0, 0, 0, 0], [0]], 8, 8),
    # x = 0.5 and y = -0.5 on borders; the output ignores the second unit: 4 activation, 2 linear regions
    ("grid-lines", [[[1, 0], [0, 1]], [[1], [0]]], [[-0.5, 0.5], [0]], 4, 2),
    # a hat in x: slopes 0, 1, -1, 0 on the strips cut at -0.5, 0, 0.5 (all tile borders). The two outer
    # strips have the same map (zero) but do not touch: 4 linear regions, not 3
    ("hat", [[[1, 1, 1], [0, 0, 0]], [[1], [-2], [1]]], [[0.5, 0, -0.5], [0]], 4, 4),
    # one unit: two regions, each spanning many tiles
    ("one-unit", [[[1], [0.3]], [[2]]], [[-0.1], [0]], 2, 2),
    # a duplicated unit and a dead unit (never active on the box)
    ("duplicate-dead", [[[1, 1, 0], [1, 1, 1]], [[1], [1], [1]]], [[0, 0, -5], [0]], 2, 2),
]


@pytest.mark.parametrize("name, Ws, bs, regions, linear", DEGENERATE, ids=[c[0] for c in DEGENERATE])
@pytest.mark.parametrize("tiles", [4, 16])
def test_tiled_counts_on_degenerate_nets_match_hand_counts(name, Ws, bs, regions, linear, tiles):
    net, params = net_from(Ws, bs)
    assert untiled(net, params, pw.box(-1, 1, 2)) == (regions, linear)
    out = tiled_count(net, params, pw.box(-1, 1, 2), tiles, linear=True, progress=False)
    assert (out["regions"], out["linear_regions"]) == (regions, linear)


def test_tiled_segment_with_breakpoints_on_piece_ends():
    # a 1-D hat on the segment [-1, 1] x {0}, cut into 4 pieces at -0.5, 0, 0.5 (the breakpoints)
    net, params = net_from([[[1, 1, 1], [0, 0, 0]], [[1], [-2], [1]]], [[0.5, 0, -0.5], [0]])
    seg = pw.segment([-1, 0], [1, 0])
    out = tiled_count(net, params, seg, 4, linear=True, progress=False)
    assert (out["regions"], out["linear_regions"]) == (4, 4) == untiled(net, params, seg)


def test_tiled_count_on_a_dask_cluster_equals_in_process(cluster):
    net = pw.mlp(2, (16, 16, 16), 2)
    params = random_params(net, 11)
    ref = tiled_count(net, params, pw.box(-1, 1, 2), 9, linear=True, progress=False)
    for where in (cluster.scheduler_address, None):
        if where is None:
            with dd.Client(cluster, set_as_default=False) as client:
                out = tiled_count(net, params, pw.box(-1, 1, 2), 9, linear=True, scheduler=client, progress=False)
        else:
            out = tiled_count(net, params, pw.box(-1, 1, 2), 9, linear=True, scheduler=where, progress=False)
        assert (out["regions"], out["linear_regions"], out["tiles"]) == (ref["regions"], ref["linear_regions"], 9)
    assert (ref["regions"], ref["linear_regions"]) == untiled(net, params, pw.box(-1, 1, 2))


def test_tiled_count_reports_the_failing_tile():
    net = pw.mlp(2, (16, 16), 1)
    params = random_params(net, 0)
    with pytest.raises(dist.TasksFailed, match=r"tile \[\d+, \d+\] of grid \[2, 2\]: PiecewiseError: more than max"):
        tiled_count(net, params, pw.box(-1, 1, 2), 4, max_cells=5, progress=False)


# -- sweeps ----------------------------------------------------------------------------------------------
SPEC = {"n_in": 2, "widths": [[5], [5, 5], [8, 8, 8]], "seeds": [0, 1], "linear": True, "init": {"bias_std": 0.2}}
TRAIN_SPEC = {"n_in": 2, "widths": [[6, 6]], "seeds": [3, 4], "box": [-3, 3],
              "train": {"dataset": "gauss", "n": 100, "steps": 20, "checkpoints": 2}}


def strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_sweep_rows_match_direct_counts():
    rows = sw.run_sweep(SPEC, progress=False)
    assert len(rows) == 6 and all(r["step"] == 0 for r in rows)
    for r in rows:
        net = pw.mlp(2, r["widths"], 1)
        params = net.init(key=jax.random.key(r["seed"]), bias_std=0.2)
        assert (r["regions"], r["linear_regions"]) == untiled(net, params, pw.box(-1, 1, 2))
        assert r["depth"] == len(r["widths"]) and r["neurons"] == sum(r["widths"]) and r["seconds"] >= 0


@pytest.mark.slow
@pytest.mark.parametrize("spec", [SPEC, TRAIN_SPEC], ids=["init", "trained"])
def test_sweep_on_dask_is_identical_to_the_serial_run(spec, cluster, tmp_path):
    serial = sw.run_sweep(spec, progress=False)
    on_dask = sw.run_sweep(spec, str(tmp_path), scheduler=cluster.scheduler_address, progress=False)
    assert strip(on_dask) == strip(serial)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert strip(saved["results"]) == strip(serial)
    assert (tmp_path / "sweep.png").stat().st_size > 0
    lines = (tmp_path / "sweep.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + len(serial) and lines[0].startswith("widths,depth,width,neurons,seed,step,regions")
    if "train" in spec:
        assert [r["step"] for r in serial] == [0, 10, 20, 0, 10, 20]
        assert all(0 <= r["accuracy"] <= 1 and r["loss"] > 0 for r in serial)


def test_sweep_resumes_after_a_killed_run(tmp_path, monkeypatch):
    calls = []
    real = sw._count_cell

    def dies_on_third(cfg, domain, widths, seed, params, threads=None):
        calls.append((widths, seed))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed while the third cell is computed
        return real(cfg, domain, widths, seed, params, threads)

    monkeypatch.setattr(sw, "_count_cell", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        sw.run_sweep(SPEC, str(tmp_path), progress=False)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert {(tuple(r["widths"]), r["seed"]) for r in saved["results"]} == {((5,), 0), ((5,), 1)}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(pw.PiecewiseError, match="--resume"):
        sw.run_sweep(SPEC, str(tmp_path), progress=False)
    calls.clear()
    monkeypatch.setattr(sw, "_count_cell", lambda *a: calls.append(a[2:4]) or real(*a))
    rows = sw.run_sweep(SPEC, str(tmp_path), resume=True, progress=False)
    assert calls == [((5, 5), 0), ((5, 5), 1), ((8, 8, 8), 0), ((8, 8, 8), 1)]  # only the missing cells
    assert strip(rows) == strip(sw.run_sweep(SPEC, progress=False))
    with pytest.raises(pw.PiecewiseError, match="another configuration .*differs in: linear"):
        sw.run_sweep({**SPEC, "linear": False}, str(tmp_path), resume=True, progress=False)


def test_failing_cell_on_dask_is_named_and_the_rest_is_kept(cluster, tmp_path):
    # a natural failure: the widest net exceeds max_cells; the others finish and are saved
    spec = {**SPEC, "max_cells": 60}
    with pytest.raises(dist.TasksFailed, match=r"2 of 6 tasks failed; cell widths=\[8, 8, 8\] seed=0: "
                                               r"PiecewiseError: more than max_cells.*--resume") as e:
        sw.run_sweep(spec, str(tmp_path), scheduler=cluster.scheduler_address, progress=False)
    assert "\n" not in str(e.value)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert {tuple(r["widths"]) for r in saved["results"]} == {(5,), (5, 5)}
    rows = sw.run_sweep(SPEC, str(tmp_path), resume=True, scheduler=cluster.scheduler_address, progress=False)
    assert strip(rows) == strip(sw.run_sweep(SPEC, progress=False))


def _cli(argv):
    p = argparse.ArgumentParser()
    sw.add_sweep_parser(p.add_subparsers())
    args = p.parse_args(argv)
    return args.func(args)


def test_sweep_command_writes_results_and_reports_failures(tmp_path, capsys, cluster):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "widths": [[4], [4, 4]], "max_cells": 20}))
    out = tmp_path / "out"
    assert _cli(["sweep", str(spec), "--out", str(out), "--scheduler", cluster.scheduler_address]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("piecewise: error: ") and "cell widths=[4, 4]" in err and "\n" not in err
    spec.write_text(json.dumps({**SPEC, "widths": [[4], [4, 4]]}))
    assert _cli(["sweep", str(spec), "--out", str(out), "--resume"]) == 0
    text = capsys.readouterr().out
    assert "results:" in text and (out / "sweep.csv").exists()
    results = json.loads((out / "sweep.json").read_text())["results"]
    assert [(r["widths"], r["seed"]) for r in results] == [([4], 0), ([4], 1), ([4, 4], 0), ([4, 4], 1)]


# -- bad specs and options ---------------------------------------------------------------------------------
BAD = [
    ({"widths": [[4]]}, "n_in"),
    ({"n_in": 0, "widths": [[4]]}, "n_in"),
    ({"n_in": 2, "widths": [4, 4]}, "widths"),
    ({"n_in": 2, "widths": [[4, 0]]}, "widths"),
    ({"n_in": 2, "widths": [[4]], "activation": "tanh"}, "activation"),
    ({"n_in": 2, "widths": [[4]], "activation": "swish"}, "activation"),
    ({"n_in": 2, "widths": [[4]], "seeds": [0, 0]}, "seeds"),
    ({"n_in": 2, "widths": [[4]], "seeds": 3}, "seeds"),
    ({"n_in": 2, "widths": [[4]], "box": [1, -1]}, "box"),
    ({"n_in": 2, "widths": [[4]], "box": [0, 1], "plane": [[0, 0], [1, 0], [0, 1]]}, "box"),
    ({"n_in": 3, "widths": [[4]], "plane": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]}, "plane"),
    ({"n_in": 2, "widths": [[4]], "plane": "missing.npy"}, "plane"),
    ({"n_in": 2, "widths": [[4]], "method": "sampling"}, "method"),
    ({"n_in": 2, "widths": [[4]], "resolution": 64}, "resolution"),
    ({"n_in": 2, "widths": [[4]], "method": "grid", "linear": True}, "linear"),
    ({"n_in": 2, "widths": [[4]], "init": {"scheme": "xavier"}}, "init.scheme"),
    ({"n_in": 2, "widths": [[4]], "init": {"bias_std": -1}}, "init.bias_std"),
    ({"n_in": 2, "widths": [[4]], "train": {"dataset": "mnist"}}, "train.dataset"),
    ({"n_in": 2, "widths": [[4]], "train": {"dataset": "digits"}}, "train.dataset"),
    ({"n_in": 2, "widths": [[4]], "train": {"dataset": "xor", "steps": 10, "checkpoints": 3}}, "train.steps"),
    ({"n_in": 2, "widths": [[4]], "train": {"dataset": "xor", "optimiser": "adam"}}, "train.optimiser"),
    ({"n_in": 2, "widhts": [[4]]}, "widhts"),
]


@pytest.mark.parametrize("spec, field", BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_bad_spec_fields_give_one_line_errors(spec, field):
    with pytest.raises(pw.PiecewiseError) as e:
        sw.run_sweep(spec, progress=False)
    msg = str(e.value)
    assert msg.startswith("sweep spec: ") and field in msg.split(":")[1] and "\n" not in msg


def test_spec_file_errors(tmp_path):
    with pytest.raises(pw.PiecewiseError, match="spec file not found"):
        _cli(["sweep", str(tmp_path / "nope.json")])
    bad = tmp_path / "bad.json"
    bad.write_text('{"n_in": 2,\n "widths": [[4]],}')
    with pytest.raises(pw.PiecewiseError, match=r"not valid JSON: .* line 2"):
        _cli(["sweep", str(bad)])


def test_bad_execution_options(monkeypatch):
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(pw.PiecewiseError, match="positive integer"):
        sw.run_sweep(SPEC, workers=0)
    with pytest.raises(pw.PiecewiseError, match="not both"):
        sw.run_sweep(SPEC, workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(pw.PiecewiseError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:1"):
        dist.run_tasks(lambda item, shared: item, [1], scheduler="tcp://127.0.0.1:1", progress=False)


def test_without_dask_workers_and_scheduler_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails as if Dask were not installed
    assert not dist.have_dask()
    for kw in ({"workers": 2}, {"scheduler": "tcp://127.0.0.1:8786"}):
        with pytest.raises(pw.PiecewiseError, match=r"needs Dask.*pip install 'piecewise\[dask\]'"):
            sw.run_sweep(SPEC, progress=False, **kw)
    net = pw.mlp(2, (4,), 1)
    with pytest.raises(pw.PiecewiseError, match=r"pip install 'piecewise\[dask\]'"):
        tiled_count(net, random_params(net), pw.box(-1, 1, 2), 4, workers=2)
    assert len(sw.run_sweep({**SPEC, "widths": [[3]]}, progress=False)) == 2  # in-process needs no Dask


# -- real worker processes -------------------------------------------------------------------------------
@pytest.mark.slow
def test_worker_processes_give_the_in_process_numbers(tmp_path):
    net = pw.mlp(2, (12, 12, 12), 1)
    params = random_params(net, 3)
    ref = tiled_count(net, params, pw.box(-1, 1, 2), 4, linear=True, progress=False)
    out = tiled_count(net, params, pw.box(-1, 1, 2), 4, linear=True, workers=2, progress=False)
    assert (out["regions"], out["linear_regions"]) == (ref["regions"], ref["linear_regions"])
    spec = {**SPEC, "widths": [[5], [5, 5]]}
    rows = sw.run_sweep(spec, str(tmp_path), workers=2, progress=False)
    assert strip(rows) == strip(sw.run_sweep(spec, progress=False))


def test_a_lost_worker_is_named_and_the_other_results_are_kept():
    """A task that kills its worker process (not an exception: the process exits) on a real cluster of
    worker processes: the failure names that task, the other tasks' results still arrive."""
    import dask

    def task(item, shared):  # local: Dask pickles it by value for the worker processes
        import os

        if item == 3:
            os._exit(13)
        return item * shared

    got = {}
    # no retries (one death is final), and one task at a time per worker where Dask queues them. Dask decides
    # that per task as they arrive (run_tasks submits them one by one), so an early task may still be handed to a
    # worker beside item 3 and die with it: such a bystander is listed as a KilledWorker too, and only it
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}):
        with pytest.raises(dist.TasksFailed, match=r"^\d of 6 tasks failed; item 3: KilledWorker") as e:
            dist.run_tasks(task, range(6), shared=10, workers=2, label=lambda i: f"item {i}",
                           on_result=got.__setitem__, progress=False)
    lost = [f.index for f in e.value.failures]
    assert 3 in lost and len(lost) <= 3 and "\n" not in str(e.value)
    assert str(e.value).startswith(f"{len(lost)} of 6 tasks failed")
    assert got == {i: 10 * i for i in range(6) if i not in lost}  # every other result arrived
    # a lost worker is the infrastructure's failure, not a bug: no traceback, one line (TasksFailed); it is
    # listed, without a traceback, when another task crashed
    assert all(f.error.startswith("KilledWorker") and f.traceback is None for f in e.value.failures)


@pytest.mark.slow
def test_a_bug_on_worker_processes_keeps_its_traceback_beside_a_lost_worker():
    import dask

    def task(item, shared):
        import os

        if item == 4:  # dies after the bug (item 2) ran: a worker runs its tasks in the order they were submitted
            os._exit(13)
        if item == 2:
            return [][item]  # IndexError: a bug
        return item

    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}):
        with pytest.raises(dist.TasksCrashed, match=r"^\d of 6 tasks failed, 1 with an unexpected error \(a bug\); "
                                                    r"item 2: IndexError") as e:
            dist.run_tasks(task, range(6), workers=2, label=lambda i: f"item {i}", progress=False)
    tb = str(e.value).split("Traceback of item 2:\n", 1)[1]  # the worker's traceback text, down to the task
    assert tb.startswith("Traceback (most recent call last)") and ", in task\n" in tb
    assert tb.endswith("IndexError: list index out of range")
    kinds = {f.index: (f.error.split(":")[0], f.traceback is not None) for f in e.value.failures}
    # item 4's death, item 2's bug, and at most two bystanders that Dask had handed to item 4's worker (see above)
    assert kinds.pop(4) == ("KilledWorker", False) and kinds.pop(2) == ("IndexError", True)
    assert len(kinds) <= 2 and all(k == ("KilledWorker", False) for k in kinds.values())


# -- user mistakes stay one line, bugs keep their traceback (issue #18) --------------------------------------
def _divide_by(x):
    return 10 // x  # a bug for x == 0: ZeroDivisionError


def _task(item, shared):
    """0: a bug deep in a helper; 1: a user mistake (PiecewiseError); anything else: a result."""
    if item == 1:
        raise pw.PiecewiseError("more than max_cells cells")
    return _divide_by(item) + shared


@pytest.mark.parametrize("where", ["in-process", "dask"])
def test_a_bug_in_a_task_surfaces_with_its_traceback(where, cluster):
    """Before issue #18 a task's ZeroDivisionError became TasksFailed (a PiecewiseError): one line, exit 2."""
    kw = {} if where == "in-process" else {"scheduler": cluster.scheduler_address}
    got = {}
    with pytest.raises(dist.TasksCrashed) as e:
        dist.run_tasks(_task, [2, 0, 1, 5], shared=100, label=lambda i: f"item {i}", on_result=got.__setitem__,
                       progress=False, hint="; rerun with --resume", **kw)
    assert not isinstance(e.value, pw.PiecewiseError)
    assert got == {0: 105, 3: 102}  # the other tasks finished and were handed over
    msg = str(e.value)
    assert msg.startswith("2 of 4 tasks failed, 1 with an unexpected error (a bug); item 0: ZeroDivisionError")
    assert "--resume" in msg
    # the original traceback text, down to the helper that raised (from the worker on Dask)
    assert "Traceback (most recent call last)" in msg and "_divide_by" in msg and "10 // x" in msg
    assert [(f.index, f.traceback is not None) for f in e.value.failures] == [(1, True), (2, False)]
    assert e.value.failures[1].error == "PiecewiseError: more than max_cells cells"
    assert isinstance(e.value.exceptions[1], ZeroDivisionError)


@pytest.mark.parametrize("where", ["in-process", "dask"])
def test_user_mistakes_in_tasks_stay_one_line(where, cluster):
    kw = {} if where == "in-process" else {"scheduler": cluster.scheduler_address}
    with pytest.raises(dist.TasksFailed, match=r"^1 of 3 tasks failed; item 1: PiecewiseError: more than") as e:
        dist.run_tasks(_task, [2, 1, 5], shared=0, label=lambda i: f"item {i}", progress=False, **kw)
    assert "\n" not in str(e.value) and e.value.failures[0].traceback is None


def test_a_bug_in_prepare_or_with_fail_fast_is_a_crash_too():
    def prepare(item):
        return {}[item] if item == 3 else item  # KeyError for 3

    with pytest.raises(dist.TasksCrashed, match="item 3: KeyError"):
        dist.run_tasks(_task, [2, 3], prepare=prepare, shared=0, label=lambda i: f"item {i}", progress=False)
    got = []
    with pytest.raises(dist.TasksCrashed, match="^1 of 3 tasks failed"):
        dist.run_tasks(_task, [0, 2, 5], shared=0, fail_fast=True, on_result=lambda i, v: got.append(i),
                       progress=False)
    assert got == []  # stopped at the first failure


def test_a_crashed_sweep_cell_is_not_a_user_error(tmp_path, monkeypatch, capsys):
    """piecewise sweep: a cell hitting a bug raises TasksCrashed through the CLI (Python prints the traceback,
    exit status 1); finished cells are saved for --resume; a cell's PiecewiseError stays one line (exit 1)."""
    from piecewise.cli import main

    real = sw._count_cell

    def buggy(cfg, domain, widths, seed, params, threads=None):
        if widths == (5, 5) and seed == 1:
            raise IndexError("index 7 is out of bounds")
        return real(cfg, domain, widths, seed, params, threads)

    monkeypatch.setattr(sw, "_count_cell", buggy)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "widths": [[5], [5, 5]]}))
    out = tmp_path / "out"
    with pytest.raises(dist.TasksCrashed, match=r"cell widths=\[5, 5\] seed=1: IndexError") as e:
        main(["sweep", str(spec), "--out", str(out)])
    assert "in buggy" in str(e.value) and "--resume" in str(e.value)
    saved = json.loads((out / "sweep.json").read_text())["results"]
    assert {(tuple(r["widths"]), r["seed"]) for r in saved} == {((5,), 0), ((5,), 1), ((5, 5), 0)}

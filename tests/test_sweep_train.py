import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
import optax
import pytest

import piecewise as pw
from piecewise import sweep as sw
from piecewise.train import _chunk


def test_sweep_rows_match_direct_counts():
    rows = sw.sweep(2, depths=(1, 3), widths=(5, 7), seeds=(0, 1), bias_std=0.2)
    assert len(rows) == 8
    for r in rows:
        net = pw.mlp(2, (r["width"],) * r["depth"], 1)
        params = net.init(key=jax.random.key(r["seed"]), bias_std=0.2)
        assert r["regions"] == pw.enumerate_cells(net, params, pw.box(-1, 1, 2)).regions


def test_sweep_resumes_and_writes_atomically(tmp_path, monkeypatch):
    out = str(tmp_path / "s.json")
    calls = []
    real = sw._one
    monkeypatch.setattr(sw, "_one", lambda job: calls.append(job[0]) or real(job))
    first = sw.sweep(2, depths=(1, 2), widths=(4,), seeds=(0,), out=out)
    assert len(calls) == 2
    saved = json.loads(open(out).read())
    assert saved["rows"] == first and not (tmp_path / "s.json.tmp").exists()
    second = sw.sweep(2, depths=(1, 2), widths=(4,), seeds=(0, 1), out=out)
    assert calls[2:] == [(1, 4, 1), (2, 4, 1)]  # only the new networks are computed
    assert [r for r in second if r["seed"] == 0] == first
    with pytest.raises(pw.PiecewiseError, match="another configuration"):
        sw.sweep(2, depths=(1,), widths=(4,), seeds=(0,), bias_std=0.5, out=out)
    csv_path = sw.to_csv(second, str(tmp_path / "s.csv"))
    lines = open(csv_path).read().strip().splitlines()
    assert lines[0].startswith("depth,width,seed") and len(lines) == 1 + len(second)


def test_sweep_with_executor_and_training_on_a_digits_plane():
    X, y = pw.datasets.digits()
    assert X.shape == (1797, 64) and set(np.unique(y)) == set(range(10))
    training = sw.Training(X[:300], y[:300], steps=60, checkpoints=2, lr=1e-2)
    kw = dict(n_out=10, domain=pw.plane(X[[0, 1, 2]]), training=training)
    with ThreadPoolExecutor(2) as ex:
        a = sw.sweep(64, depths=(1, 2), widths=(8,), seeds=(0,), executor=ex, **kw)
    b = sw.sweep(64, depths=(1, 2), widths=(8,), seeds=(0,), **kw)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)
    assert [r["step"] for r in a if r["depth"] == 1] == [0, 30, 60]
    losses = [r["loss"] for r in a if r["depth"] == 2]
    assert losses[-1] < losses[0]
    assert sw.summarize(a)[0]["n"] == 1


def test_fit_decreases_loss_without_recompiling():
    X, y = pw.datasets.playground("gauss", 200, seed=1)
    net = pw.mlp(2, (6,), 2)
    params = net.init(key=jax.random.key(0))
    opt = optax.adam(1e-2)
    before = _chunk._cache_size()
    run = pw.train.fit(net, params, X, y, opt, steps=100, checkpoints=5)
    assert _chunk._cache_size() == before + 1  # five chunks, one compilation
    assert [r["step"] for r in run] == [0, 20, 40, 60, 80, 100]
    assert run[-1]["loss"] < 0.5 * run[0]["loss"]
    assert pw.train.accuracy(net, run[-1]["params"], X, y) > 0.95
    pw.train.fit(net, run[-1]["params"], X, y, opt, steps=100, checkpoints=5)
    assert _chunk._cache_size() == before + 1  # same optimizer object and shapes: no recompilation
    with pytest.raises(pw.PiecewiseError):
        pw.train.fit(net, params, X, y, optax.adam(1e-2), steps=10, checkpoints=3)


@pytest.mark.parametrize("name", ["circle", "xor", "gauss", "spiral"])
def test_playground_data(name):
    X, y = pw.datasets.playground(name, 500, seed=3)
    assert X.shape == (500, 2) and X.dtype == np.float32 and set(np.unique(y)) == {0, 1}
    X2, _ = pw.datasets.playground(name, 500, seed=3)
    np.testing.assert_array_equal(X, X2)
    if name == "circle":
        r = np.linalg.norm(X, axis=1)
        assert r[y == 1].max() <= 2.5 and r[y == 0].min() >= 3.5


def test_disk_annulus():
    X, y = pw.datasets.disk_annulus(400, seed=0)
    r = np.linalg.norm(X, axis=1)
    assert r[y == 1].max() < 1 / 3 and r[y == 0].min() > 2 / 3 and r.max() < 1


# -- the output folder is checked before any work (issue #18) ------------------------------------------------
SMALL = {"n_in": 2, "widths": [[3]], "seeds": [0]}


def _bad_outs(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    cases = [(str(a_file), "is a file, not a folder"), (str(a_file / "sub"), "cannot create")]
    if os.path.isdir("/proc"):  # Linux: nothing can be created in /proc, not even by root
        cases += [("/proc/x", "cannot create"), ("/proc", "cannot write in")]
    return cases


def test_sweep_out_that_cannot_be_written_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    """Before issue #18 ``piecewise sweep SPEC --out /proc/x`` (or an existing file) ended in a traceback."""
    from piecewise.cli import main

    calls = []
    monkeypatch.setattr(sw, "_count_cell", lambda *a, **k: calls.append(a) or [])
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SMALL))
    for out, needle in _bad_outs(tmp_path):
        with pytest.raises(pw.PiecewiseError, match=needle) as e:
            sw.run_sweep(SMALL, out, progress=False)
        assert out in str(e.value) and "\n" not in str(e.value)
        assert main(["sweep", str(spec), "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("piecewise: error: ") and needle in err and err.count("\n") == 1
    assert calls == []  # nothing was computed


def test_python_sweep_checks_its_out_file_before_any_work(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sw, "_one", lambda job: calls.append(job) or [])
    with pytest.raises(pw.PiecewiseError, match="is a folder"):
        sw.sweep(2, depths=(1,), widths=(3,), out=str(tmp_path))
    for out, needle in _bad_outs(tmp_path):
        if out != "/proc":
            with pytest.raises(pw.PiecewiseError, match=needle):
                sw.sweep(2, depths=(1,), widths=(3,), out=os.path.join(out, "s.json"))
    assert calls == []


# -- result files get the mode a plain open() gives (issue #18) -----------------------------------------------
@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_sweep_results_are_readable_as_the_umask_allows(tmp_path, umask):
    """Before issue #18 every result was 0600 (mkstemp's mode), whatever the umask."""
    out = tmp_path / "out"
    sw.run_sweep(SMALL, str(out), progress=False)
    for name in ("sweep.json", "sweep.csv", "sweep.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# -- the whole input space in a spec: "box" sides "-inf" / "inf" (issue #19 item 4) --------------------------------
def _space_net(n_in, widths, seed):
    net = pw.mlp(n_in, widths, 1)
    return net, net.init(key=jax.random.key(seed), bias_std=0.1)  # the spec's default init: He normal, 0.1


def test_infinite_box_spec_counts_equal_count_space(tmp_path):
    spec = {"n_in": 2, "widths": [[5], [3, 3]], "seeds": [0, 1], "box": ["-inf", "inf"], "linear": True}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    rows = sw.run_sweep(str(tmp_path / "spec.json"), str(tmp_path / "out"), progress=False)
    assert len(rows) == 4
    for r in rows:
        net, params = _space_net(2, tuple(r["widths"]), r["seed"])
        ref = pw.count_space(net, params, pw.space(n_in=2))
        assert (r["regions"], r["linear_regions"]) == (ref.regions, ref.linear_regions()[0]), r
        assert r["algorithm"] == ref.algorithm and r["exact"] is True and r["undecided"] == 0
        if r["depth"] == 1:  # 5 lines in general position cut the plane into 1 + 5 + 10 regions
            assert r["regions"] == 16
    saved = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert saved["config"]["domain"] == {"kind": "whole space", "lo": ["-inf", "-inf"], "hi": ["inf", "inf"]}
    assert saved["results"] == rows
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0
    header = (tmp_path / "out" / "sweep.csv").read_text().splitlines()[0].split(",")
    assert {"algorithm", "exact", "undecided"} <= set(header)


def test_half_infinite_box_and_resume(tmp_path):
    """[0, inf]^3 (the positive octant) against count_space on the same box, and below R^3's count; a resume adds
    a seed without recounting (the infinite sides survive the JSON round trip of the configuration)."""
    out = str(tmp_path / "out")
    spec = {"n_in": 3, "widths": [[4]], "seeds": [0], "box": [0, "inf"]}
    first = sw.run_sweep(spec, out, progress=False, figure=False)
    second = sw.run_sweep({**spec, "seeds": [0, 1]}, out, progress=False, figure=False, resume=True)
    assert second[0] == first[0] and len(second) == 2
    for r in second:
        net, params = _space_net(3, (4,), r["seed"])
        assert r["regions"] == pw.count_space(net, params, pw.space(0, np.inf, n_in=3)).regions
        assert r["regions"] <= pw.count_space(net, params, pw.space(n_in=3)).regions == 15  # 1 + 4 + 6 + 4
    with pytest.raises(pw.PiecewiseError, match="another configuration"):
        sw.run_sweep({**spec, "box": ["-inf", "inf"]}, out, progress=False, figure=False, resume=True)


def test_python_infinite_box_spec_equals_the_strings():
    a, _ = sw.validate_spec({"n_in": 2, "widths": [[3]], "box": [float("-inf"), float("inf")]})
    b, _ = sw.validate_spec({"n_in": 2, "widths": [[3]], "box": ["-inf", "+inf"]})
    assert a == b and a["domain"]["kind"] == "whole space"
    c, dom = sw.validate_spec({"n_in": 2, "widths": [[3]], "box": [-2, 3]})
    assert c["domain"] == {"kind": "box", "lo": [-2.0, -2.0], "hi": [3.0, 3.0]} and dom.kind == "box"


@pytest.mark.parametrize("extra, needle", [
    ({"box": ["-inf", "-inf"]}, "box: empty box"),
    ({"box": ["inf", 0]}, "box: empty box"),
    ({"box": ["infinity", 1]}, "box: each side must be a number or"),
    ({"box": [None, 1]}, "box: each side must be a number or"),
    ({"box": [float("nan"), 1]}, "box: each side must be a number or"),
    ({"box": ["-inf"]}, "box: expected [lo, hi]"),
    ({"box": [0, 10**400]}, "box: 1000"),
    ({"box": [0, "inf"], "method": "grid"}, "method: a grid cannot sample a box with infinite sides"),
])
def test_bad_infinite_boxes_are_one_line_errors(extra, needle):
    with pytest.raises(pw.PiecewiseError) as e:
        sw.validate_spec({"n_in": 2, "widths": [[3]], **extra})
    msg = str(e.value)
    assert msg.startswith("sweep spec: ") and needle in msg and "\n" not in msg


# -- sweep.png: deep vs shallow at equal N, linear regions, bounds (issue #20 item 5) ---------------------------------
def _rows(archs, seeds=(0, 1), steps=(0,), linear=True):
    """Synthetic sweep rows: regions = 10 * depth + seed + step, linear regions 1 fewer."""
    rows = []
    for w in archs:
        for s in seeds:
            for st in steps:
                r = {"widths": list(w), "depth": len(w), "width": max(w), "neurons": sum(w), "seed": s, "step": st,
                     "regions": 10 * len(w) + s + st}
                if linear:
                    r["linear_regions"] = r["regions"] - 1
                rows.append(r)
    return rows


DEEP_VS_SHALLOW = [(12,), (6, 6), (4, 4, 4), (3, 3, 3, 3)]
GRID = [(w,) * d for d in (1, 2, 3) for w in (4, 8)]


@pytest.mark.parametrize("archs, steps, layout", [
    (DEEP_VS_SHALLOW, (0,), [("depth", "neurons")]),  # one N: no panel that puts every point at N = 12
    (GRID, (0,), [("depth", "width"), ("neurons", "depth")]),  # a full grid of uniform widths: the older figure
    ([(4,), (4, 4), (4, 4, 4)], (0,), [("depth", "width")]),
    ([(4,), (8,), (16,)], (0,), [("neurons", "depth")]),
    ([(8,), (4, 4), (16,), (8, 8)], (0,), [("depth", "neurons"), ("neurons", "depth")]),
    ([(8,), (4, 4), (2, 6)], (0, 50, 100), [("depth", "neurons"), ("step", "widths")]),
])
def test_sweep_layout(archs, steps, layout):
    assert pw.plot.sweep_layout(_rows(archs, steps=steps)) == layout


def _lines(ax):
    return {tuple(np.asarray(l.get_xdata(), float)): l for l in ax.get_lines()}


def test_deep_vs_shallow_figure_draws_means_linear_regions_and_bounds(tmp_path):
    rows = _rows(DEEP_VS_SHALLOW)
    fig = pw.plot.sweep_figure(rows, dim=2, where="[-1, 1]^2")
    (ax,) = fig.axes
    ys = [list(l.get_ydata()) for l in ax.get_lines()]
    assert [10.5, 20.5, 30.5, 40.5] in ys  # mean of seeds 0 and 1 per depth
    assert [9.5, 19.5, 29.5, 39.5] in ys  # linear regions
    # Serra's bound: one layer, the closed form 1 + 12 + C(12, 2); 6-6: sum over j1 <= 2 of C(6, j1) (1 + 6 + 15)
    assert any(y[:2] == [79, 484] and len(y) == 4 for y in ys)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["activation regions", "linear regions", "Serra 2018 upper bound"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["N = 12"]
    assert pw.plot.save(fig, tmp_path / "dvs.png").endswith("dvs.png")


def test_training_figure_has_a_step_panel_and_first_and_last_steps(tmp_path):
    rows = _rows([(8,), (4, 4)], steps=(0, 50, 100), linear=False)
    fig = pw.plot.sweep_figure(rows, dim=2, activation="leaky_relu:0.1")
    assert len([a for a in fig.axes if a.get_legend()]) == 2
    step_ax = fig.axes[1]
    lines = [l for l in step_ax.get_lines() if list(l.get_xdata()) == [0, 50, 100]]
    assert sorted(list(l.get_ydata()) for l in lines) == [[10.5, 60.5, 110.5], [20.5, 70.5, 120.5]]
    hollow = [l for l in fig.axes[0].get_lines() if l.get_markerfacecolor() == "none"]
    assert sorted(list(l.get_ydata()) for l in hollow if l.get_linestyle() == "-") == [[110.5, 120.5]]  # step 100
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "linear regions" not in labels and "Montufar 2017 upper bound" in labels  # leaky ReLU: no Serra
    assert labels[-2:] == ["step 0 (filled)", "step 100 (hollow)"]
    pw.plot.save(fig, tmp_path / "train.png")


def test_grid_figure_and_titles(tmp_path):
    fig = pw.plot.sweep_figure(_rows(GRID), dim=3, activation="abs", where="R^3")
    assert [a.get_xlabel() for a in fig.axes] == ["depth L (hidden layers)", "hidden neurons N"]
    assert "R^3" in fig._suptitle.get_text()
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["width 4", "width 8"]
    pw.plot.save(fig, tmp_path / "grid.png")
    assert sw._where(pw.space(n_in=3)) == "R^3" and sw._where(pw.space(0, np.inf, n_in=2)) == "[0, inf]^2"
    assert sw._where(pw.box(-1, 1, 2)) == "[-1, 1]^2"

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

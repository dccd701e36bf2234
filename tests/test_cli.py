import json
import subprocess
import sys

import numpy as np
import pytest

import piecewise as pw
from piecewise.cli import main
from conftest import assert_png, random_params
from geometry import lines_of_shallow, lp_region_count, regions_in_box


@pytest.fixture
def shallow(tmp_path):
    net = pw.mlp(2, (6,), 1)
    params = random_params(net, 2, bias_std=0.4)
    path = tmp_path / "w.npz"
    pw.save_npz(path, params)
    return path, params


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_count_json_matches_closed_form(capsys, shallow):
    path, params = shallow
    code, out, err = run(capsys, "count", "--weights", path, "--method", "grid", "--resolution", 1025, "--json")
    assert code == 0
    d = json.loads(out)
    exact = regions_in_box(lines_of_shallow(*params[0]), (-1, -1), (1, 1))
    assert d["method"] == "grid" and isinstance(d["seconds"], float)
    assert 0.9 * exact <= d["regions"] <= exact


def test_count_box_plane_and_plot(capsys, tmp_path, shallow):
    path, _ = shallow
    code, out, _ = run(capsys, "count", "--weights", path, "--box", 0, 0.5, "--method", "grid", "--json")
    assert code == 0 and json.loads(out)["domain"]["lo"] == [0.0, 0.0]
    P = tmp_path / "p.npy"
    np.save(P, np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    png = tmp_path / "map.png"
    code, out, _ = run(capsys, "count", "--weights", path, "--plane", P, "--method", "grid", "--resolution", 200,
                       "--plot", png)
    assert code == 0 and "activation regions" in out
    assert_png(png, min_colours=8)


def _bad_weights(tmp_path):
    good = dict(W0=np.ones((2, 3)), b0=np.zeros(3), W1=np.ones((3, 1)), b1=np.zeros(1))
    cases = {}
    for name, upd in {"missing": dict(b1=None), "mismatch": dict(W1=np.ones((4, 1))),
                      "nan": dict(W0=np.full((2, 3), np.nan))}.items():
        a = {k: v for k, v in {**good, **upd}.items() if v is not None}
        p = tmp_path / f"{name}.npz"
        np.savez(p, **a)
        cases[name] = p
    ok = tmp_path / "ok.npz"
    np.savez(ok, **good)
    cases["ok"] = ok
    np.save(tmp_path / "w.npy", np.ones((2, 3)))
    cases["npy"] = tmp_path / "w.npy"
    np.savez(tmp_path / "tanh.npz", activation=np.array("tanh"), **good)
    cases["tanh"] = tmp_path / "tanh.npz"
    return cases


@pytest.mark.parametrize("case,extra,needle", [
    ("nofile", [], "not found"),
    ("missing", [], "missing array b1"),
    ("mismatch", [], "shape mismatch"),
    ("nan", [], "NaN"),
    ("ok", ["--activation", "swish"], "unknown activation"),
    ("ok", ["--box", "1", "1"], "empty box"),
    ("ok", ["--box", "2", "-1"], "empty box"),
    ("ok", ["--plane", "nope.npy"], "plane file not found"),
    ("ok", ["--resolution", "1"], "resolution"),
    ("ok", ["--activation", "tanh"], "not piecewise linear"),
    ("ok", ["--method", "fast"], "invalid choice"),
    ("ok", ["--box", "1e300", "1e301", "--method", "grid"], "overflow"),
    ("ok", ["--box", "-1e308", "1e308"], "too large for float64"),
    ("ok", ["--resolution", "64"], "--method grid"),
    ("ok", ["--plot", "no/such/folder/x.png"], "does not exist"),
    ("npy", [], "'.npy'"),
    ("tanh", ["--activation", "relu"], "stores activation tanh"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, case, extra, needle):
    cases = _bad_weights(tmp_path)
    path = cases.get(case, tmp_path / "absent.npz")
    try:
        code = main(["count", "--weights", str(path), *extra])
    except SystemExit as e:  # argparse's own checks (invalid choice) exit directly
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err


def test_bad_plane_shape(capsys, tmp_path, shallow):
    path, _ = shallow
    P = tmp_path / "p.npy"
    np.save(P, np.zeros((2, 2)))
    code, _, err = run(capsys, "count", "--weights", path, "--plane", P)
    assert code == 2 and "shape" in err and err.count("\n") == 1


def test_python_m_entry_point(tmp_path, shallow):
    path, params = shallow
    r = subprocess.run([sys.executable, "-m", "piecewise", "count", "--weights", str(path), "--method", "grid",
                        "--resolution", "64", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    exact = regions_in_box(lines_of_shallow(*params[0]), (-1, -1), (1, 1))
    assert 0.5 * exact <= json.loads(r.stdout)["regions"] <= exact  # a 64^2 grid: a lower bound
    r = subprocess.run([sys.executable, "-m", "piecewise", "count", "--weights", str(tmp_path / "x.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0


def test_demo_quick(tmp_path, capsys):
    code = main(["demo", "--quick", "--out", str(tmp_path / "res")])
    out, _ = capsys.readouterr()
    assert code == 0
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    assert (tmp_path / "res" / "regions_vs_depth.png").exists() and (tmp_path / "res" / "cells_random.png").exists()
    # exact counts never exceed the upper bound; constructions meet their formulas
    for row in summary["deep_vs_shallow"]["rows"]:
        assert max(row["random_init"]) <= row["serra2018_upper"]
    assert all(r["exact"] == r["formula"] for r in summary["constructions"])
    verdicts = [r["homeomorphism"] for r in summary["homeomorphisms"]]
    assert verdicts == [True, True, True, False, False]
    assert all("x1" in r["witness"] for r in summary["homeomorphisms"] if r["homeomorphism"] is False)
    assert "results written to" in out


def test_count_exact_is_default_in_2d_and_matches_closed_form(capsys, shallow, tmp_path):
    path, params = shallow
    code, out, _ = run(capsys, "count", "--weights", path, "--json", "--linear")
    d = json.loads(out)
    assert code == 0 and d["method"] == "exact"
    assert d["regions"] == regions_in_box(lines_of_shallow(*params[0]), (-1, -1), (1, 1))
    assert d["linear_regions"] == d["regions"]  # one hidden layer, nonzero output weights: every line bends the map
    png = tmp_path / "cells.png"
    code, out, _ = run(capsys, "count", "--weights", path, "--method", "exact", "--plot", png)
    assert code == 0 and "activation regions (exact)" in out
    assert_png(png, min_colours=8)


def test_count_exact_plane_of_higher_dim_net(capsys, tmp_path):
    net = pw.mlp(5, (6, 6), 1)
    params = random_params(net, 1, bias_std=0.3)
    w = tmp_path / "w.npz"
    pw.save_npz(w, params)
    P = tmp_path / "p.npy"
    np.save(P, np.random.default_rng(0).normal(size=(3, 5)))
    code, out, _ = run(capsys, "count", "--weights", w, "--plane", P, "--json")
    d = json.loads(out)
    assert code == 0 and d["method"] == "exact"
    assert d["regions"] == pw.enumerate_cells(net, params, pw.plane(np.load(P))).regions
    # a 5-D box: grid by default, stated in the JSON
    code, out, _ = run(capsys, "count", "--weights", w, "--json", "--resolution", "5")
    assert code == 0 and json.loads(out)["method"] == "grid"
    code, _, err = run(capsys, "count", "--weights", w, "--method", "grid", "--linear")
    assert code == 2 and "--linear needs exact" in err


def test_count_maxout_weights(capsys, tmp_path):
    net = pw.mlp(2, (5, 4), 1, "maxout:3")
    params = random_params(net, 2, bias_std=0.3)
    w = tmp_path / "w.npz"
    pw.save_npz(w, params)
    code, out, _ = run(capsys, "count", "--weights", w, "--activation", "maxout", "--json")
    assert code == 0 and json.loads(out)["regions"] == pw.enumerate_cells(net, params, pw.box(-1, 1, 2)).regions


def test_count_exact_3d_box(capsys, tmp_path):
    net = pw.mlp(3, (5, 4), 1)
    params = random_params(net, 1, bias_std=0.3)
    w = tmp_path / "w.npz"
    pw.save_npz(w, params)
    code, out, _ = run(capsys, "count", "--weights", w, "--json", "--linear")
    d = json.loads(out)
    assert code == 0 and d["method"] == "exact"
    assert d["regions"] == pw.enumerate_cells(net, params, pw.box(-1, 1, 3)).regions
    assert 1 <= d["linear_regions"] <= d["regions"]


def test_negative_box_bounds_parse(capsys, shallow):
    path, params = shallow
    code, out, err = run(capsys, "count", "--weights", path, "--box", "-1e6", "1e6", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["domain"]["lo"] == [-1e6, -1e6]
    # a box this large holds every crossing of the 6 lines
    lines = lines_of_shallow(*params[0])
    assert d["regions"] == regions_in_box(lines, (-1e6, -1e6), (1e6, 1e6))


def test_eight_inputs_with_defaults(capsys, tmp_path):
    # the default grid for 8 inputs comes from a point budget; the count is a lower bound and is flagged
    net = pw.mlp(8, (4,), 1)
    params = random_params(net, 0, bias_std=0.2)
    pw.save_npz(tmp_path / "w8.npz", params, net)
    code, out, err = run(capsys, "count", "--weights", tmp_path / "w8.npz", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["method"] == "grid" and d["resolution"] == [6] * 8
    # 4 hyperplanes in R^8: at most 2^4 regions; an LP per pattern says which meet the box
    assert d["regions"] == lp_region_count([params[0][0]], [params[0][1]], -1.0, 1.0) == 16


def test_count_in_tiles_equals_untiled(capsys, tmp_path):
    net = pw.mlp(2, (12, 12), 2)
    params = random_params(net, 5, bias_std=0.2)
    pw.save_npz(tmp_path / "w.npz", params, net)
    code, out, err = run(capsys, "count", "--weights", tmp_path / "w.npz", "--json", "--linear")
    plain = json.loads(out)
    code, out, err = run(capsys, "count", "--weights", tmp_path / "w.npz", "--json", "--linear", "--tiles", 9)
    assert code == 0, err
    tiled = json.loads(out)
    assert tiled["tiles"] == 9 and (tiled["regions"], tiled["linear_regions"]) == (plain["regions"], plain["linear_regions"])
    code, _, err = run(capsys, "count", "--weights", tmp_path / "w.npz", "--tiles", 5)
    assert code == 2 and "square" in err and err.count("\n") == 1
    code, _, err = run(capsys, "count", "--weights", tmp_path / "w.npz", "--workers", 2)
    assert code == 2 and "--tiles" in err


def test_sweep_command_against_closed_form(capsys, tmp_path):
    spec = {"n_in": 2, "widths": [[3], [5]], "seeds": [0, 1], "box": [-1, 1], "init": {"bias_std": 0.4}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    code, out, err = run(capsys, "sweep", tmp_path / "s.json", "--out", tmp_path / "out")
    assert code == 0, err
    res = json.loads((tmp_path / "out" / "sweep.json").read_text())["results"]
    assert len(res) == 4 and (tmp_path / "out" / "sweep.csv").exists()
    import jax

    for r in res:  # one hidden layer: 1 + lines crossing the box + crossings inside it
        net = pw.mlp(2, r["widths"], 1)
        W0, b0 = (np.asarray(a, np.float64) for a in net.init(key=jax.random.key(r["seed"]), bias_std=0.4)[0])
        assert r["regions"] == regions_in_box(lines_of_shallow(W0, b0), (-1, -1), (1, 1))
    spec["widths"] = "nope"
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    code, _, err = run(capsys, "sweep", tmp_path / "bad.json", "--out", tmp_path / "out2")
    assert code == 2 and "widths" in err and err.count("\n") == 1


def test_count_cells_export_and_memory_budget(capsys, tmp_path, shallow):
    path, params = shallow
    out_npz = tmp_path / "cells.npz"
    code, out, err = run(capsys, "count", "--weights", path, "--cells", out_npz, "--memory-budget", "0.001",
                         "--json")
    assert code == 0, err
    d = json.loads(out)
    z = np.load(out_npz)
    assert len(z["points"]) == d["regions"] == len(z["measure"])
    assert z["measure"].sum() == pytest.approx(d["measure_total"]) and d["measure_total"] == pytest.approx(4.0)
    assert np.all(np.abs(z["points"]) < 1)
    for bad, msg in ((["--memory-budget", "lots"], "cannot read"), (["--memory-budget", "0"], "positive"),
                     (["--cells", tmp_path / "c.txt"], "npz"), (["--cells", tmp_path / "no" / "c.npz"], "folder"),
                     (["--cells", out_npz, "--method", "grid"], "exact")):
        code, out, err = run(capsys, "count", "--weights", path, *bad)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err


def test_count_plot_reports_the_file_written(capsys, shallow, tmp_path):
    """--plot without a suffix writes OUT.png (matplotlib's default) and says so, in the text and the JSON."""
    path, _ = shallow
    code, out, _ = run(capsys, "count", "--weights", path, "--plot", tmp_path / "outplot")
    assert code == 0 and f"figure: {tmp_path / 'outplot.png'}" in out
    assert_png(tmp_path / "outplot.png", min_colours=2)
    code, out, _ = run(capsys, "count", "--weights", path, "--json", "--plot", tmp_path / "grid", "--method", "grid",
                       "--resolution", 64)
    assert code == 0 and json.loads(out)["plot"] == str(tmp_path / "grid.png") and (tmp_path / "grid.png").exists()


def test_version_and_info(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"piecewise {pw.__version__}"
    code, out, _ = run(capsys, "info", "--json")
    info = json.loads(out)
    assert code == 0 and info["kernel"]["kind"] in ("c", "numpy") and info["versions"]["piecewise"] == pw.__version__

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert info["maps"]["path"] in ("numpy", "jax")


def test_info_says_which_path_the_graph_maps_take(capsys, monkeypatch):
    monkeypatch.setenv("PIECEWISE_MAPS", "jax")
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0 and json.loads(out)["maps"] == {"path": "jax", "from": "PIECEWISE_MAPS=jax"}
    monkeypatch.setenv("PIECEWISE_MAPS", "opencl")
    code, out, _ = run(capsys, "info")
    assert code == 0 and "graph maps: None (PIECEWISE_MAPS must be" in out


# -- progress on stderr, whatever --json says (issue #20, item 5) ---------------------------------------------

def _run_with_tty_stderr(*argv, timeout=120):
    """Run ``python -m piecewise ARGV`` with stderr on a pseudo-terminal and stdout on a pipe: (rc, stdout, the
    terminal's text with carriage returns as newlines)."""
    import fcntl
    import os
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # 0 columns: tqdm draws nothing
    proc = subprocess.Popen([sys.executable, "-m", "piecewise", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=slave, text=True)
    os.close(slave)
    chunks = []

    def drain():  # read while the child writes, so a full terminal buffer never blocks it
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)

    t = threading.Thread(target=drain)
    t.start()
    out, _ = proc.communicate(timeout=timeout)
    t.join(timeout)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace").replace("\r", "\n")


@pytest.fixture
def deep_net(tmp_path):
    """A 2-input net with 64 hidden units: large enough for the exact engine's bar (its threshold)."""
    net = pw.mlp(2, (32, 32), 1)
    params = random_params(net, 3, bias_std=0.2)
    path = tmp_path / "deep.npz"
    pw.save_npz(path, params, net)
    return path, net, params


def test_json_keeps_the_progress_bar_on_a_terminal(deep_net):
    path, net, params = deep_net
    code, out, err = _run_with_tty_stderr("count", "--weights", path, "--json")
    assert code == 0, err
    d = json.loads(out)  # stdout holds the JSON alone
    assert d["regions"] == pw.enumerate_cells(net, params, pw.box(-1, 1, 2), progress=False).regions
    assert "exact cells" in err and "units" in err, err
    # the bar shows the units done out of their known total, and only cell counts already reached
    import re

    assert set(re.findall(r"/(\d+) units", err)) == {"64"}
    shown = [int(s.replace(",", "")) for s in re.findall(r"([\d,]+) cells", err)]
    assert shown and all(0 < s <= d["regions"] for s in shown), (shown, d["regions"])
    assert "expected" not in err and "~" not in err  # no predicted total that the count could overrun
    code, out, err = _run_with_tty_stderr("count", "--weights", path, "--json", "--no-progress")
    assert code == 0 and json.loads(out)["regions"] == d["regions"] and "exact cells" not in err, err


def test_no_bar_when_stderr_is_not_a_terminal(deep_net):
    path, _, _ = deep_net
    r = subprocess.run([sys.executable, "-m", "piecewise", "count", "--weights", str(path), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["regions"] > 64 and r.stderr == "", r.stderr


@pytest.mark.slow
def test_progress_argument_reaches_the_engines(monkeypatch, capsys, deep_net):
    """count (exact, grid, tiles), homeo and explore pass progress=None (tqdm decides) with or without --json,
    False with --no-progress."""
    import piecewise.regions as regions
    import piecewise.regions.tiles as tiles
    import piecewise.invertibility as inv

    path, _, _ = deep_net
    seen = []

    def spy(real):
        def f(*a, progress="absent", **k):
            seen.append(progress)
            return real(*a, progress=progress, **k)
        return f

    monkeypatch.setattr(regions, "enumerate_cells", spy(regions.enumerate_cells))
    monkeypatch.setattr(regions, "count_grid", spy(regions.count_grid))
    monkeypatch.setattr(tiles, "tiled_count", spy(tiles.tiled_count))
    monkeypatch.setattr(inv, "homeomorphism", spy(inv.homeomorphism))
    square = path.parent / "sq.npz"  # a map R^2 -> R^2 for homeo
    pw.save_npz(square, random_params(pw.mlp(2, (3,), 2), 0, bias_std=0.2))
    for argv in (["count", "--weights", path], ["count", "--weights", path, "--method", "grid", "--resolution", 64],
                 ["count", "--weights", path, "--tiles", 4], ["homeo", "--weights", square, "--box", -1, 1]):
        for extra, want in (([], None), (["--json"], None), (["--json", "--no-progress"], False),
                            (["--no-progress"], False)):
            seen.clear()
            code, _, err = run(capsys, *argv, *extra)
            assert code == 0, err
            assert seen and seen[0] is want, (argv, extra, seen)


# -- image models and many inputs lead to --plane and `piecewise plane` ---------------------------------------

@pytest.fixture
def image_model(tmp_path):
    """An ONNX model of a (3, 8, 8) image (192 inputs): conv 3x3 -> relu -> flatten -> dense, built with
    onnx.helper."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    r = np.random.default_rng(0)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in (
        ("W", r.normal(size=(2, 3, 3, 3)) * 0.3), ("B", r.normal(size=2) * 0.1),
        ("F", r.normal(size=(3, 128)) * 0.1), ("c", r.normal(size=3) * 0.1))]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["a"]), helper.make_node("Flatten", ["a"], ["f"]),
             helper.make_node("Gemm", ["f", "F", "c"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "img", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    path = tmp_path / "img.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("extra", [[], ["--box", "0", "1"], ["--method", "grid"],
                                   ["--box", "0", "1", "--method", "exact"], ["--box", "-inf", "inf"],
                                   ["--method", "grid", "--resolution", "3"]])
def test_image_model_box_leads_to_a_plane(capsys, image_model, extra):
    code, out, err = run(capsys, "count", "--weights", image_model, *extra)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "192 inputs" in err and "(3, 8, 8)" in err and "--plane P.npy" in err and "(3, 192)" in err
    assert "piecewise plane --weights" in err and "C order" in err


def test_many_input_mlp_grid_leads_to_a_plane(capsys, tmp_path):
    net = pw.mlp(40, (4,), 1)  # 2 points per axis: 2^40 points, past the grid's 2^31 - 1
    pw.save_npz(tmp_path / "w40.npz", random_params(net, 0, bias_std=0.2), net)
    code, _, err = run(capsys, "count", "--weights", tmp_path / "w40.npz")
    assert code == 2 and err.count("\n") == 1 and "40 inputs" in err and "2^40" in err and "--plane" in err, err


def _check_plane_file(P, centre, radius):
    """The plane is the square of half-side radius around centre: p0 + s(p1 - p0) + t(p2 - p0) at s = t = 1/2
    is the centre, and (p1 - p0) / 2r, (p2 - p0) / 2r are orthonormal."""
    assert P.shape == (3, centre.size) and P.dtype == np.float64
    np.testing.assert_allclose(P[0] + 0.5 * (P[1] - P[0]) + 0.5 * (P[2] - P[0]), centre, atol=1e-12)
    A = np.stack([P[1] - P[0], P[2] - P[0]]) / (2 * radius)
    np.testing.assert_allclose(A @ A.T, np.eye(2), atol=1e-12)


def test_plane_command_writes_a_square_slice_that_counts(capsys, tmp_path, image_model):
    x = np.random.default_rng(5).uniform(0, 1, (1, 3, 8, 8))  # an image batch of one: flattened in C order
    np.save(tmp_path / "x.npy", x)
    out_p = tmp_path / "P.npy"
    code, out, err = run(capsys, "plane", "--weights", image_model, "--around", tmp_path / "x.npy", "--radius", 0.25,
                         "--out", out_p)
    assert code == 0, err
    assert str(out_p) in out and f"piecewise count --weights {image_model} --plane {out_p}" in out
    P = np.load(out_p)
    _check_plane_file(P, x.reshape(-1), 0.25)
    code, out, err = run(capsys, "count", "--weights", image_model, "--plane", out_p, "--json")
    d = json.loads(out)
    assert code == 0 and d["method"] == "exact" and d["regions"] >= 1, err
    assert d["measure_total"] == pytest.approx(0.5 ** 2)  # the square's area, (2r)^2
    code, out, _ = run(capsys, "count", "--weights", image_model, "--plane", out_p, "--method", "grid",
                       "--resolution", 129, "--json")
    assert code == 0 and 1 <= json.loads(out)["regions"] <= d["regions"]  # a grid is a lower bound


def test_plane_command_centres_and_seeds(capsys, tmp_path, shallow):
    path, _ = shallow
    files = {}
    for name, extra in {"origin": [], "r0": ["--random", 0], "r0b": ["--random", 0], "r1": ["--random", 1],
                        "s7": ["--seed", 7]}.items():
        files[name] = tmp_path / f"{name}.npy"
        code, out, err = run(capsys, "plane", "--weights", path, *extra, "--out", files[name], "--json")
        assert code == 0, err
        d = json.loads(out)
        assert d["path"] == str(files[name]) and d["shape"] == [3, 2] and d["radius"] == 0.1
    P = {k: np.load(f) for k, f in files.items()}
    _check_plane_file(P["origin"], np.zeros(2), 0.1)
    _check_plane_file(P["s7"], np.zeros(2), 0.1)
    assert not np.allclose(P["origin"], P["s7"])  # the seed picks the directions
    np.testing.assert_array_equal(P["r0"], P["r0b"])  # reproducible
    for k in ("r0", "r1"):
        c = P[k][0] + 0.5 * (P[k][1] - P[k][0]) + 0.5 * (P[k][2] - P[k][0])
        assert np.all((c > 0) & (c < 1))  # a random centre in [0, 1]^n0
        _check_plane_file(P[k], c, 0.1)
    assert not np.allclose(P["r0"], P["r1"])


@pytest.mark.parametrize("extra,needle", [
    (["--out", "P.txt"], "must end in .npy"),
    (["--out", "no/such/dir/P.npy"], "does not exist"),
    (["--out", "P.npy", "--radius", "0"], "positive"),
    (["--out", "P.npy", "--radius", "nan"], "positive"),
    (["--out", "P.npy", "--around", "absent.npy"], "not found"),
    (["--out", "P.npy", "--around", "BAD"], "has 5 entries"),
    (["--out", "P.npy", "--random", "1", "--around", "x.npy"], "not allowed with"),
])
def test_plane_command_bad_input(capsys, tmp_path, shallow, monkeypatch, extra, needle):
    path, _ = shallow
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "BAD.npy", np.zeros(5))
    extra = [str(tmp_path / "BAD.npy") if e == "BAD" else e for e in extra]
    try:
        code = main(["plane", "--weights", str(path), *extra])
    except SystemExit as e:  # argparse's own checks
        code = e.code
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and needle in err, err


def test_plane_needs_two_inputs(capsys, tmp_path):
    pw.save_npz(tmp_path / "w1.npz", random_params(pw.mlp(1, (3,), 1), 0))
    code, _, err = run(capsys, "plane", "--weights", tmp_path / "w1.npz", "--out", tmp_path / "P.npy")
    assert code == 2 and "at least 2 input dimensions" in err and err.count("\n") == 1


def test_plane_around_is_the_benchmarks_slice():
    """piecewise.planes.plane_around gives the square x + r[-1, 1]^2 in two orthonormal directions, read
    back through pw.plane's parametrisation at the four corners and the centre."""
    from piecewise.planes import plane_around, random_directions

    x = np.random.default_rng(2).normal(size=12)
    P = plane_around(x, 0.3, seed=4)
    v1, v2 = random_directions(12, 4)
    dom = pw.plane(P)
    for (s, t), (a, b) in {(0, 0): (-1, -1), (1, 0): (1, -1), (0, 1): (-1, 1), (1, 1): (1, 1),
                           (0.5, 0.5): (0, 0)}.items():
        np.testing.assert_allclose(dom.points(np.array([s, t])), x + 0.3 * (a * v1 + b * v2), atol=1e-12)
    assert abs(v1 @ v2) < 1e-12 and np.allclose([v1 @ v1, v2 @ v2], 1)


# -- the grid's hint fits the domain ---------------------------------------------------------------------------

def test_far_from_converged_hint_fits_the_domain(capsys, tmp_path, deep_net):
    path, _, _ = deep_net
    P = tmp_path / "p.npy"
    np.save(P, np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]))
    code, _, err = run(capsys, "count", "--weights", path, "--plane", P, "--method", "grid", "--resolution", 4)
    assert code == 0 and "far from converged" in err and "--method exact" in err and "--plane" not in err, err
    net = pw.mlp(8, (4,), 1)
    pw.save_npz(tmp_path / "w8.npz", random_params(net, 0, bias_std=0.2), net)
    code, _, err = run(capsys, "count", "--weights", tmp_path / "w8.npz", "--resolution", 2)
    assert code == 0 and "far from converged" in err and "--plane" in err and "piecewise plane" in err, err

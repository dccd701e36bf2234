"""The whole-space experiment scripts (issue #19 item 4) run with --quick in a temporary results folder; their JSON
is checked against closed forms computed here, independently of the scripts."""
import csv
import json
import os
import subprocess
import sys
from math import comb
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script, out, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, str(ROOT / "experiments" / script), "--quick", "--out", str(out), *args],
                       cwd=ROOT / "experiments", env=env, capture_output=True, text=True, timeout=900)
    return p


def _serra(n0, widths):
    """Serra et al. (2018), Theorem 1, by enumerating every (j_1, ..., j_L) (not the library's dynamic program)."""
    def rec(l, d):
        if l == len(widths):
            return 1
        n = widths[l]
        return sum(comb(n, j) * rec(l + 1, min(d, n - j)) for j in range(min(d, n) + 1))

    return rec(0, n0)


@pytest.mark.slow  # 20-80 s on 2 shared cores
def test_whole_space_depth_width_quick(tmp_path):
    p = _run("whole_space_depth_width.py", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "whole_space_depth_width.json").read_text())
    rows = res["rows"]
    assert {r["n_in"] for r in rows} == {2, 3} and {tuple(r["widths"]) for r in rows} == {(6,), (3, 3), (2, 2, 2)}
    assert len(rows) == 2 * 3 * 2  # n_in x architectures x seeds
    for r in rows:
        n, w = r["n_in"], r["widths"]
        assert r["exact"] is True and r["undecided"] == 0 and "vertex engine" in r["algorithm"]
        assert r["serra2018_upper"] == _serra(n, w)
        assert r["regions"] <= _serra(n, w)
        assert r["linear_regions"] <= r["regions"] if n == 2 else "linear_regions" not in r  # merged in R^2 only
        if len(w) == 1:  # one general-position layer: sum_{j<=n} C(N, j) regions of R^n
            assert r["regions"] == sum(comb(6, j) for j in range(n + 1)) == r["closed_form"]
    assert res["checks"] == {"exact": True, "upper_bounds_respected": True, "one_layer_equals_closed_form": True,
                             "violations": []}
    with open(tmp_path / "whole_space_depth_width.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) and table[0]["widths"] == "x".join(map(str, rows[0]["widths"]))
    assert (tmp_path / "whole_space_depth_width.png").stat().st_size > 0


def test_whole_space_check_fails_loudly():
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        from whole_space_depth_width import check
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    good = {"n_in": 2, "widths": [4], "depth": 1, "neurons": 4, "seed": 0, "regions": 11, "linear_regions": 11,
            "serra2018_upper": 11, "montufar2017_upper": 11, "closed_form": 11, "exact": True, "undecided": 0}
    assert check([good]) == []
    assert any("!= sum_j" in v for v in check([{**good, "regions": 10, "linear_regions": 10}]))
    assert any("upper bound" in v for v in check([{**good, "regions": 12, "linear_regions": 12}]))
    assert any("not exact" in v for v in check([{**good, "exact": False, "undecided": 1}]))


@pytest.mark.slow  # 30-80 s on 2 shared cores
def test_digits_whole_space_quick(tmp_path):
    p = _run("digits_whole_space.py", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "digits_whole_space.json").read_text())
    rows = res["rows"]
    assert [(r["net"], r["stage"], r["domain"]) for r in rows] == [
        ("64-4-4-10", s, d) for s in ("init", "trained") for d in ("[0, 16]^64", "R^64")]
    for r in rows:
        assert r["exact"] is True and r["undecided"] == 0 and "region-graph search" in r["algorithm"]
        assert 1 <= r["linear_regions"] <= r["regions"] <= 2 ** 8  # 8 hidden ReLUs: at most 2^8 patterns
        assert r["seconds"] > 0
    cube = {r["stage"]: r for r in rows if r["domain"] == "[0, 16]^64"}
    space = {r["stage"]: r for r in rows if r["domain"] == "R^64"}
    assert cube["init"]["domain_bounds"] == {"kind": "box", "lo": [0.0] * 64, "hi": [16.0] * 64}
    assert space["init"]["domain_bounds"]["kind"] == "whole space"
    for s in ("init", "trained"):
        assert cube[s]["regions"] <= space[s]["regions"]
    (net,) = res["nets"]
    assert net["trained"]["loss"] < net["init"]["loss"] and net["trained"]["step"] == res["setup"]["steps"]
    assert res["checks"]["violations"] == [] and (tmp_path / "digits_whole_space.png").stat().st_size > 0


def test_digits_whole_space_bad_stage(tmp_path):
    p = _run("digits_whole_space.py", tmp_path, "--stages", "final")
    assert p.returncode == 1 and "--stages" in p.stderr and p.stderr.count("\n") == 1

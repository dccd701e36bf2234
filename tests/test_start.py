"""Start-up: ``import piecewise``, ``piecewise --help`` and an exact count of an MLP import no JAX (it costs
seconds); ``--version`` and ``info --json`` work; the NumPy-fallback notice is printed once. Each check runs
in a fresh interpreter (this process has JAX loaded already). No timings are asserted (machines are noisy);
the times are in the pull request that made the imports lazy."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import piecewise as pw


def _python(code: str, *, env=None, check=True):
    full = dict(os.environ, **(env or {}))
    for k, v in list(full.items()):
        if v is None:
            del full[k]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-input, 8-unit ReLU net in the .npz contract."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("start") / "tiny.npz"
    np.savez(path, W0=rng.normal(size=(2, 8)), b0=0.1 * rng.normal(size=8), W1=rng.normal(size=(8, 1)), b1=np.zeros(1))
    return str(path)


NO_JAX = "\nassert 'jax' not in sys.modules, sorted(m for m in sys.modules if m.startswith('jax'))\n"


def test_import_loads_no_jax_and_every_public_name_resolves():
    _python("import sys, piecewise as pw" + NO_JAX
            + "assert pw.__version__ == '0.3.0'\n"
            + "net = pw.mlp(2, (4,), 1); d = pw.box(-1, 1, 2); pw.enumerate_cells; pw.load_npz; pw.regions.Domain\n"
            + "assert set(pw.__all__) <= set(dir(pw))" + NO_JAX)
    # every name of the eager package is still there (submodules too); unknown names raise AttributeError
    for name in pw.__all__ + ["errors", "files", "nets", "numerics", "patterns", "validate", "io", "plot"]:
        assert getattr(pw, name) is not None, name
    for name in pw.regions.__all__ + ["grid", "exact", "cells", "domain"]:
        assert getattr(pw.regions, name) is not None, name
    assert pw.enumerate_cells is pw.regions.exact.enumerate_cells and pw.Graph is pw.graph.Graph
    with pytest.raises(AttributeError):
        pw.no_such_name
    with pytest.raises(AttributeError):
        pw.regions.no_such_name


def test_help_and_version_load_no_jax():
    r = _python("import sys\nfrom piecewise.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
                "    assert e.code == 0\n" + NO_JAX)
    assert "count" in r.stdout and "info" in r.stdout
    r = subprocess.run([sys.executable, "-m", "piecewise", "--version"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == f"piecewise {pw.__version__}"


def test_exact_count_of_an_mlp_loads_no_jax(tiny):
    r = _python("import sys\nfrom piecewise.cli import main\n"
                f"assert main(['count', '--weights', {tiny!r}, '--method', 'exact', '--json', '--linear']) == 0"
                + NO_JAX)
    out = json.loads(r.stdout)
    net, params = pw.load_npz(tiny)
    cx = pw.enumerate_cells(net, params, pw.box(-1, 1, 2), progress=False)
    assert out["regions"] == cx.regions and out["method"] == "exact" and out["linear_regions"] >= 1


@pytest.mark.slow
def test_info_json_keys():
    r = subprocess.run([sys.executable, "-m", "piecewise", "info", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert {"piecewise", "versions", "platform", "kernel", "threads", "jax", "devices"} <= set(info)
    assert info["piecewise"] == pw.__version__
    assert set(info["versions"]) == {"piecewise", "python", "numpy", "scipy", "jax", "jaxlib"}
    assert info["versions"]["numpy"] == np.__version__
    from piecewise.regions import _ckernel

    k = info["kernel"]
    assert k["kind"] == ("c" if _ckernel.available() else "numpy") and k["reason"]
    assert {"cpu_count", "exact_engine", "env"} <= set(info["threads"]) and info["threads"]["exact_engine"] >= 1
    assert info["devices"] and {"id", "platform", "kind"} <= set(info["devices"][0])
    text = subprocess.run([sys.executable, "-m", "piecewise", "info"], capture_output=True, text=True, timeout=300)
    assert text.returncode == 0 and text.stdout.startswith(f"piecewise {pw.__version__}\n")


def test_info_says_why_the_numpy_path_runs():
    r = subprocess.run([sys.executable, "-m", "piecewise", "info", "--json"], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, PIECEWISE_KERNEL="numpy"))
    k = json.loads(r.stdout)["kernel"]
    assert k["kind"] == "numpy" and "PIECEWISE_KERNEL=numpy" in k["reason"]


COUNT_TWICE = """
import sys
from piecewise.regions import _ckernel
{patch}
import piecewise as pw
net, params = pw.load_npz({path!r})
for _ in range(2):
    print(pw.enumerate_cells(net, params, pw.box(-1, 1, 2), progress=False).regions)
"""


@pytest.mark.parametrize("patch,mode,notices", [
    ("_ckernel._find = lambda: None", None, 1),  # not built: one notice for two counts
    ("import os; _ckernel._find = lambda: os.devnull", None, 1),  # not loadable
    ("_ckernel._find = lambda: None", "numpy", 0),  # turned off on purpose: no notice
    ("", None, 0),  # the kernel as installed (when it is built)
])
def test_numpy_fallback_notice_once(tiny, patch, mode, notices):
    from piecewise.regions import _ckernel

    if not patch and not _ckernel.available():
        notices = 1
    r = _python(COUNT_TWICE.format(patch=patch, path=tiny), env={"PIECEWISE_KERNEL": mode})
    a, b = r.stdout.split()
    assert a == b
    lines = [ln for ln in r.stderr.splitlines() if "NumPy path" in ln]
    assert len(lines) == notices, r.stderr
    if notices and patch:
        assert "not built" in lines[0] or "could not be loaded" in lines[0]

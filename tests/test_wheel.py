"""The compiled kernel as a standard build (issue #20): ``pip wheel .`` gives a platform wheel holding the
extension module ``piecewise.regions._pwkernel``, which, installed apart from this checkout (``pip install
--target``) and run with no C compiler on PATH, is the kernel ``piecewise info --json`` reports and counts
exactly as the in-tree install does (compiled kernel and NumPy path); the sdist carries the kernel's C
sources. The wheel's dependencies are this environment's (it is installed with ``--no-deps`` and found
through PYTHONPATH, ahead of the editable install). Times are printed (``-s``), never asserted."""
import importlib.machinery
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import piecewise as pw

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
COMPILERS = ("cc", "gcc", "clang", "c99", "x86_64-linux-gnu-gcc", "tcc", "icx")
NO_INDEX = ("No matching distribution found for setuptools", "Could not find a version that satisfies the requirement")


def _outside(tmp: Path) -> dict:
    """This environment plus a setuptools configuration (``DIST_EXTRA_CONFIG``) that puts the build's outputs
    (``build/``, ``piecewise.egg-info``) under ``tmp``: the checkout stays untouched, and no earlier build's
    files can enter the wheel."""
    (tmp / "build").mkdir(parents=True)
    (tmp / "egg").mkdir()
    cfg = tmp / "outside.cfg"
    cfg.write_text(f"[build]\nbuild_base = {tmp / 'build'}\n[egg_info]\negg_base = {tmp / 'egg'}\n")
    return dict(os.environ, DIST_EXTRA_CONFIG=str(cfg))


def _pip_wheel(out: Path, tmp: Path) -> None:
    """``pip wheel . --no-deps -w out`` in the repository (an isolated build, as a user runs it; outputs under
    ``tmp``); where no package index is reachable for the isolated build's setuptools, the same build with this
    environment's setuptools."""
    cmd = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", str(out)]
    env = _outside(tmp)
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode and any(s in r.stdout + r.stderr for s in NO_INDEX):
        r = subprocess.run(cmd + ["--no-build-isolation"], cwd=ROOT, capture_output=True, text=True, env=env,
                           timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def _no_compiler_env(site: Path) -> dict:
    """This environment with PATH stripped of every folder holding a C compiler, CC/CXX/LDSHARED unset and
    PYTHONPATH the wheel's install folder ``site``."""
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX", "LDSHARED", "CFLAGS", "PYTHONPATH")}
    folders = [p for p in os.environ.get("PATH", "").split(os.pathsep)
               if p and not any(os.path.exists(os.path.join(p, c)) for c in COMPILERS)]
    env["PATH"] = os.pathsep.join(folders)
    env["PYTHONPATH"] = str(site)
    env.pop("PIECEWISE_KERNEL", None)
    return env


def _count(npz: Path, env: dict, cwd: Path) -> tuple[dict, float]:
    """``python -m piecewise count --weights npz --box -1 1 --method exact --json`` in a fresh interpreter: its
    JSON and the command's wall time (s)."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "piecewise", "count", "--weights", str(npz), "--box", "-1", "1",
                        "--method", "exact", "--json"], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), wall


def test_wheel_runs_the_compiled_kernel_without_a_compiler(tmp_path):
    _pip_wheel(tmp_path / "dist", tmp_path / "out")
    wheels = sorted((tmp_path / "dist").glob("piecewise-*.whl"))
    assert len(wheels) == 1, wheels
    # a platform wheel for this interpreter: name-version-cpXY-cpXY-platform.whl, not py3-none-any
    name, version, py, abi, plat = wheels[0].name[:-len(".whl")].split("-")
    cp = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert (name, version, py, abi) == ("piecewise", pw.__version__, cp, cp), wheels[0].name
    assert plat == sysconfig.get_platform().replace("-", "_").replace(".", "_"), wheels[0].name
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    with zipfile.ZipFile(wheels[0]) as z:
        names = set(z.namelist())
        wheel_meta = z.read(f"piecewise-{pw.__version__}.dist-info/WHEEL").decode()
    assert f"piecewise/regions/_pwkernel{suffix}" in names, sorted(n for n in names if "_pwkernel" in n)
    assert "Root-Is-Purelib: false" in wheel_meta and f"Tag: {cp}-{cp}-{plat}" in wheel_meta, wheel_meta
    assert not [n for n in names if n.endswith(".c")], "C sources in the wheel"

    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                        str(wheels[0])], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    env = _no_compiler_env(site)
    for c in COMPILERS:
        assert shutil.which(c, path=env["PATH"]) is None, c
    run = tmp_path / "run"  # not the repository: the current folder comes first on sys.path
    run.mkdir()

    # the extension module imports, from the wheel's install, and info reports it as the kernel
    code = ("import json, piecewise, piecewise.regions._pwkernel as m\n"
            "print(json.dumps([piecewise.__file__, m.__file__]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=run, timeout=300)
    assert r.returncode == 0, r.stderr
    package, module = json.loads(r.stdout)
    site_real = os.path.realpath(site)
    assert os.path.realpath(package).startswith(site_real + os.sep), package
    assert os.path.realpath(module) == os.path.join(site_real, "piecewise", "regions", "_pwkernel" + suffix), module
    r = subprocess.run([sys.executable, "-m", "piecewise", "info", "--json"], capture_output=True, text=True,
                       env=env, cwd=run, timeout=300)
    assert r.returncode == 0, r.stderr
    kernel = json.loads(r.stdout)["kernel"]
    assert kernel["kind"] == "c" and kernel["compiled"] is True, kernel
    assert os.path.realpath(kernel["library"]) == os.path.realpath(module), kernel

    # a tiny exact count: the wheel's kernel (required: PIECEWISE_KERNEL=c), the in-tree install's kernel and
    # the in-tree NumPy path give the same regions
    rng = np.random.default_rng(7)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, W0=rng.normal(size=(2, 12)), b0=0.3 * rng.normal(size=12), W1=rng.normal(size=(12, 12)),
             b1=0.3 * rng.normal(size=12), W2=rng.normal(size=(12, 1)), b2=np.zeros(1))
    walls, outs = [], []
    for _ in range(3):
        out, wall = _count(npz, dict(env, PIECEWISE_KERNEL="c"), run)
        outs.append(out)
        walls.append(wall)
    intree = {k: v for k, v in os.environ.items() if k not in ("PIECEWISE_KERNEL", "PYTHONPATH")}
    ref_c, _ = _count(npz, intree, run)
    ref_np, _ = _count(npz, dict(intree, PIECEWISE_KERNEL="numpy"), run)
    assert ref_c["method"] == "exact" and ref_c["regions"] > 12  # two layers of 12 units cut the box into many
    assert [o["regions"] for o in outs] == [ref_c["regions"]] * 3 and ref_np["regions"] == ref_c["regions"]
    print(f"\nwheel {wheels[0].name}: cold exact count of a 2-12-12-1 net, {ref_c['regions']} regions, wall "
          f"{', '.join(f'{w:.2f}' for w in walls)} s (median {statistics.median(walls):.2f} s)")


def test_sdist_carries_the_kernel_sources(tmp_path):
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=_outside(tmp_path / "out"), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    sdist = tmp_path / r.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for f in ("setup.py", "pyproject.toml", "MANIFEST.in", "piecewise/regions/_kernel.c",
              "piecewise/regions/_pwkernel_module.c", "piecewise/regions/_ckernel.py"):
        assert f in names, f
    assert not [n for n in names if n.endswith((".so", ".pyd"))], "a build output in the sdist"

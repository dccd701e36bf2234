"""``piecewise info``: what this installation runs on — versions, the exact engine's kernel (compiled C or
the NumPy path, and why), threads, and JAX's devices.

:func:`collect` returns it all as one JSON-ready dict (``piecewise info --json`` prints it); :func:`text`
formats it for the terminal. JAX is imported here (for its devices) and nowhere else on this path.
"""
from __future__ import annotations

import os
import platform
import sys

from . import __version__

THREAD_VARIABLES = ("PIECEWISE_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "XLA_FLAGS", "JAX_PLATFORMS")


def _version(dist: str):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _threads() -> dict:
    from .errors import PiecewiseError
    from .regions.parallel import default_threads

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    try:
        engine = default_threads()
        source = "PIECEWISE_THREADS" if os.environ.get("PIECEWISE_THREADS", "").strip() else "CPU affinity"
    except PiecewiseError as e:
        engine, source = None, str(e)
    out = {"cpu_count": os.cpu_count(), "affinity": affinity, "exact_engine": engine, "exact_engine_from": source,
           "kernel": "the exact engine's threads (chunks of cells; ctypes releases the GIL), BLAS on one thread "
                     "in each", "env": {k: os.environ.get(k) for k in THREAD_VARIABLES}}
    try:
        from threadpoolctl import threadpool_info

        out["blas"] = [{"library": p.get("internal_api"), "threads": p.get("num_threads"),
                        "version": p.get("version")} for p in threadpool_info()]
    except Exception:  # threadpoolctl is optional
        pass
    return out


def _jax() -> dict:
    try:
        import jax
    except Exception as e:  # not installed, or broken: say so instead of failing
        return {"error": f"cannot import jax: {e}", "devices": []}
    try:
        devices = [{"id": int(d.id), "platform": d.platform, "kind": d.device_kind, "name": str(d)}
                   for d in jax.devices()]
        return {"backend": jax.default_backend(), "devices": devices}
    except Exception as e:  # e.g. JAX_PLATFORMS names a platform that is not there
        return {"error": f"jax.devices() failed: {e}", "devices": []}


def _maps() -> dict:
    from .errors import PiecewiseError
    from .regions.jaxmaps import backend

    raw = os.environ.get("PIECEWISE_MAPS", "").strip()
    try:
        return {"path": backend(), "from": f"PIECEWISE_MAPS={raw}" if raw else "auto (JAX only on an accelerator)"}
    except PiecewiseError as e:
        return {"path": None, "from": str(e)}


def collect() -> dict:
    """Everything ``piecewise info --json`` prints: ``piecewise`` (version), ``versions`` (piecewise, python,
    numpy, scipy, jax, jaxlib: None where not installed), ``platform``, ``kernel``
    (:func:`piecewise.regions._ckernel.status`: ``kind`` ``"c"`` or ``"numpy"``, ``reason``, ``library``, ...),
    ``maps`` (``path``: ``"numpy"`` or ``"jax"``, the graphs' float64 maps (:mod:`piecewise.regions.jaxmaps`),
    and where that choice comes from), ``threads`` (cpu_count, affinity, the exact engine's threads and where they come from, the thread
    variables, BLAS pools), ``jax`` (``backend``, or ``error``) and ``devices`` (JAX's: id, platform, kind)."""
    import numpy as np

    from .regions._ckernel import status

    versions = {"piecewise": __version__, "python": platform.python_version(), "numpy": np.__version__,
                "scipy": _version("scipy"), "jax": _version("jax"), "jaxlib": _version("jaxlib")}
    jx = _jax()
    return {"piecewise": __version__, "versions": versions, "platform": platform.platform(),
            "executable": sys.executable, "kernel": status(), "maps": _maps(), "threads": _threads(),
            "jax": {k: v for k, v in jx.items() if k != "devices"}, "devices": jx["devices"]}


def text(info: dict) -> str:
    """The terminal form of :func:`collect`'s dict."""
    v = info["versions"]
    k, t = info["kernel"], info["threads"]
    lines = [f"piecewise {info['piecewise']}",
             "versions: " + ", ".join(f"{n} {v[n] or '(not installed)'}" for n in
                                      ("python", "numpy", "scipy", "jax", "jaxlib")),
             f"platform: {info['platform']}",
             f"exact kernel: {'compiled C' if k['kind'] == 'c' else 'NumPy path'}: {k['reason']}",
             f"graph maps: {info['maps']['path']} ({info['maps']['from']})",
             f"threads: exact engine {t['exact_engine']} ({t['exact_engine_from']}); cpu_count {t['cpu_count']}, "
             f"affinity {t['affinity']}",
             "thread variables: " + ", ".join(f"{n}={val}" for n, val in t["env"].items() if val is not None)
             if any(val is not None for val in t["env"].values()) else "thread variables: none set"]
    for b in t.get("blas", []):
        lines.append(f"blas: {b['library']} {b['version']}, {b['threads']} threads")
    jx = info["jax"]
    if "error" in jx:
        lines.append(f"jax: {jx['error']}")
    else:
        lines.append(f"jax devices ({jx['backend']}): " + ", ".join(
            f"{d['name']} [{d['kind']}]" for d in info["devices"]))
    return "\n".join(lines)

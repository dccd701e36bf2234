"""Write docs/api.md: the public API of piecewise, from the docstrings (``python docs/generate_api.py``).

The test suite regenerates it and compares, so the page never drifts from the code.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys

MODULES = [
    "piecewise", "piecewise.nets", "piecewise.activations", "piecewise.io", "piecewise.staged", "piecewise.graph",
    "piecewise.regions", "piecewise.regions.search", "piecewise.regions.stats", "piecewise.regions.tiles", "piecewise.regions.local_complexity",
    "piecewise.bounds", "piecewise.constructions", "piecewise.invertibility", "piecewise.train", "piecewise.datasets",
    "piecewise.sweep", "piecewise.distributed", "piecewise.studies", "piecewise.plot", "piecewise.files",
]


def _public(mod):
    names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
    out = []
    for n in sorted(names):
        obj = getattr(mod, n, None)
        if inspect.ismodule(obj) or obj is None:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        home = getattr(obj, "__module__", "") or ""
        if not home.startswith("piecewise"):
            continue
        if mod.__name__ != "piecewise" and home != mod.__name__ and not mod.__name__.endswith(("regions", "invertibility", "io", "studies")):
            continue  # imported helpers are documented where they live
        out.append((n, obj))
    return out


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    para = doc.split("\n\n")[0].replace("\n", " ").strip()
    return para or "(no docstring)"


def _signature(name, obj) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        sig = "(...)"
    if len(sig) > 110:
        sig = sig[:107] + "...)"
    return f"{name}{sig}"


def render() -> str:
    importlib.import_module("piecewise")  # fail loudly outside the project's environment (not an empty file)
    lines = ["# API reference", "",
             "Generated from the docstrings by `python docs/generate_api.py` (the tests check it is current). "
             "Shapes and dtypes are in each docstring: `help(piecewise.enumerate_cells)`.", ""]
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        items = _public(mod)
        if not items:
            continue
        lines += [f"## `{name}`", "", _summary(mod), ""]
        for n, obj in items:
            kind = "class" if inspect.isclass(obj) else "def"
            lines.append(f"- **{kind} `{_signature(n, obj)}`** — {_summary(obj)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api.md")
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if open(path).read() == text else 1)
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")

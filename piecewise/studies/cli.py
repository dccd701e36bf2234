"""``piecewise run NAME [--quick] [--out DIR]`` and ``piecewise run --list``: the seed-article studies."""
from __future__ import annotations

import argparse
import os

from ..errors import PiecewiseError
from . import STUDIES, run_study


def add_run_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``run`` sub-command to an argparse ``subparsers`` object; returns its parser."""
    r = subparsers.add_parser("run", help="run a study from the seed articles (piecewise run --list)")
    r.add_argument("name", nargs="?", help="the study (see --list)")
    r.add_argument("--list", action="store_true", help="list the studies, one line each")
    r.add_argument("--quick", action="store_true", help="a small run (well under 2 minutes) that shows the effect")
    r.add_argument("--out", default=None, help="results folder (default results/NAME)")
    r.set_defaults(func=run_command)
    return r


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) <= 12:
        return "[" + ", ".join("null" if x is None else _fmt(x) for x in v) + "]"
    return str(v)


def summary(name: str, res: dict) -> list[str]:
    """A few lines with the study's key figures."""
    lines = []
    if name in ("frequency_principle", "spectral_bias"):
        lines += [f"frequencies      {_fmt(res['frequencies'])}",
                  f"converged_step   {_fmt(res['converged_step'])}  (first step with Δ(k) < {res['threshold']})"]
    elif name == "condensation":
        for k in ("small_init", "large_init"):
            lines.append(f"{k:<11} condensed_fraction {res[k]['condensed_fraction']:.3f} "
                         f"(before training {res[k]['condensed_fraction_before']:.3f})")
    elif name == "multiscale":
        for k in ("single_scale", "multiscale"):
            lines.append(f"{k:<12} high_freq_error {res[k]['high_freq_error']:.3f}  low {res[k]['low_freq_error']:.3f}")
    elif name == "tower":
        lines += [f"units            {_fmt(res['units'])}", f"mse              {_fmt(res['mse'])}",
                  f"linear_regions   {_fmt(res['linear_regions'])}"]
    elif name == "templates":
        lines += [f"single layer     test_accuracy {res['test_accuracy']:.3f} (n_test {res['n_test']})",
                  f"hidden layer     test_accuracy {res['hidden']['test_accuracy']:.3f}"]
    elif name == "transforms":
        for r in res["runs"]:
            lines.append(f"{r['optimizer']:>8}/{r['init']:<6} accuracy {r['accuracy']:.3f}  moved {r['distance_moved']:.3f}  "
                         f"σ {_fmt(r['singular_values_end'])}")
    elif name == "vector_field":
        for k in ("vector_field", "tanh"):
            r = res[k]
            lines.append(f"{k:<12} test accuracy {r['test_accuracy']:.3f}  k-NN {r['knn_test_accuracy']:.3f}  "
                         f"homeomorphism {r['homeomorphism']}")
    elif name == "contraction":
        for n, d in res.items():
            if isinstance(d, dict) and any(k.startswith("lam=") for k in d):
                for lam, v in d.items():
                    lines.append(f"{n:<6} {lam:<9} accuracy {v['mean_accuracy']:.3f} (fresh {v['mean_test_accuracy']:.3f})"
                                 f"  median mean|J| {v['median_jacobian_mean']:.3f}  median max|J| {v['median_jacobian_max']:.2f}")
    return lines


def run_command(args) -> int:
    """Run ``args.name`` (or list with ``args.list``); prints a short summary. Returns the exit status."""
    if getattr(args, "list", False):
        width = max(map(len, STUDIES))
        for n, d in STUDIES.items():
            print(f"{n:<{width}}  {d}")
        return 0
    if not args.name:
        raise PiecewiseError("piecewise run needs a study name (piecewise run --list shows them)")
    if args.name not in STUDIES:
        raise PiecewiseError(f"unknown study {args.name!r}; known: {', '.join(STUDIES)}")
    res = run_study(args.name, quick=args.quick, out=args.out)
    print(f"{args.name}{' (quick)' if args.quick else ''}: {res['seconds']:.1f} s")
    for line in summary(args.name, res):
        print("  " + line)
    print(f"  wrote {os.path.join(res['out'], args.name + '.json')} and {', '.join(res['figures'])}")
    return 0

"""Shared helpers of the experiment scripts: argument parsing and result writing."""
import argparse
import os


def parser(doc):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default="results", help="results folder (default results/)")
    ap.add_argument("--quick", action="store_true", help="a small run (used by the tests)")
    return ap


def write_json(out, name, obj):
    """Write ``obj`` to ``out/name.json`` atomically (piecewise.files); returns the path."""
    from piecewise.files import write_json as _write

    os.makedirs(out, exist_ok=True)
    return _write(os.path.join(out, f"{name}.json"), obj)


def study_main(name, doc):
    """The whole of a thin study script: ``python experiments/NAME.py [--quick] [--out DIR]`` runs
    ``piecewise.studies.run_study(NAME)`` and prints its summary (the same as ``piecewise run NAME``)."""
    from piecewise.studies import run_study
    from piecewise.studies.cli import summary

    a = parser(doc).parse_args()
    res = run_study(name, quick=a.quick, out=a.out)
    print("\n".join(summary(name, res)))
    print(f"{res['seconds']:.1f} s; wrote {a.out}/{name}.json and {', '.join(res['figures'])}")

"""Shared helpers of the experiment scripts: argument parsing and result writing."""
import argparse
import json
import os


def parser(doc):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default="results", help="results folder (default results/)")
    ap.add_argument("--quick", action="store_true", help="a small run (used by the tests)")
    return ap


def write_json(out, name, obj):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(path + ".tmp", path)
    return path

"""Exact 2-D enumeration speed and memory.

Run: python benchmarks/exact2d.py [--quick] [--threads N]

He-init ReLU nets with biases N(0, 0.1^2) on [-1,1]^2 (2-64x4, 2-128x4, 2-256x3, 2-64x8). For each: exact
regions, cold and warm seconds (cold = the first call in a fresh process, what the CLI reports), CPU seconds,
the floor measured in the same run (one float64 forward pass over all the cells' vertices) and the ratio to
it, and peak memory per cell. Peer figures (edge subdivision, Berzins 2023, PyTorch float32 CPU, cold) are
quoted from the published figures that set the goals (same 2-core CPU class, not measured here): 2-64x4 1.6-1.9 s;
2-128x4 crashes (a hyperplane through a vertex in float32). Goals: 2-64x4 >= 10x the peer cold (<= 0.16 s),
2-128x4 <= 1 s, 2-256x3 <= 1.5 GB peak.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exact_common import table  # noqa: E402

PEER = {"2-64x4": 1.6}
GOAL = {"2-64x4": 0.16, "2-128x4": 1.0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="only 2-64x4")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    cases = [(2, 64, 4)] + ([] if a.quick else [(2, 128, 4), (2, 256, 3), (2, 64, 8)])
    table(cases, PEER, GOAL, a.threads)


if __name__ == "__main__":
    main()

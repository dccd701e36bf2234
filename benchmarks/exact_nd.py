"""Exact n-D enumeration speed and memory (boxes of 3 and 4 inputs).

Run: python benchmarks/exact_nd.py [--quick] [--threads N]

For each net (He-init ReLU, biases N(0, 0.1^2), box [-1,1]^n): exact regions, cold and warm seconds, CPU
seconds, the floor measured in the same run (one float64 forward pass over all cells' vertices) and the
ratio to it, peak memory per cell, and the figures of the edge-subdivision method (Berzins 2023, PyTorch,
float32, CPU, 1-skeleton only, generic position assumed) quoted from the published figures that set the goals (same
2-core CPU class, measured there, not here): the ``x peer`` column is peer seconds / our cold seconds.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exact_common import table  # noqa: E402

PEER = {"3-20x3": 0.2, "3-32x3": 1.3, "4-16x3": 0.8}
GOAL = {"3-20x3": 0.2, "3-32x3": 1.3, "4-16x3": 0.8}  # at least as fast as the peer (aim: 3x faster)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="only 3-20x3")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    cases = [(3, 20, 3)] + ([] if a.quick else [(3, 32, 3), (4, 16, 3)])
    table(cases, PEER, GOAL, a.threads)


if __name__ == "__main__":
    main()

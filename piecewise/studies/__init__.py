"""The studies from the seed articles on what networks learn and how they shape space.

Each study is library code (one module per idea: :mod:`.spectral`, :mod:`.condensation`, :mod:`.multiscale`,
:mod:`.tower`, :mod:`.templates`, :mod:`.transforms`, :mod:`.vector_field`, :mod:`.contraction`) with fixed
keys, run by :func:`run_study`, which writes ``OUT/NAME.json`` and figures (default ``results/NAME``).

Example::

    >>> from piecewise.studies import STUDIES, run_study
    >>> res = run_study("condensation", quick=True, out="results/condensation")   # doctest: +SKIP
    >>> res["small_init"]["condensed_fraction"] > res["large_init"]["condensed_fraction"]  # doctest: +SKIP
    True
"""
from __future__ import annotations

import os

from ..errors import PiecewiseError
from ..files import write_json

STUDIES = {
    "frequency_principle": "Xu et al.: sin x + sin 3x + sin 5x, relative DFT error per frequency over training; "
                           "low frequencies converge first",
    "spectral_bias": "Rahaman et al.: sum of sines k = 5..50 with amplitudes rising with k; still learned low to high",
    "condensation": "Luo, Xu et al.: two-layer ReLU net, small vs large init; hidden units condense onto few "
                    "orientations",
    "multiscale": "MscaleDNN vs the same-size single-scale net: error of the high-frequency band after one budget",
    "tower": "one hidden ReLU layer of 2-6 units fitted to x1^2 + x2^2 + 3; exact linear regions of each fit",
    "templates": "softmax classifier on the 8x8 digits: ten weight templates, confusion matrix, then one hidden layer",
    "transforms": "a 2->2 layer as rotation, scaling, rotation, translation, bending; how SGD/momentum/Adam and "
                  "inits move it",
    "vector_field": "vector-field layers (x + g(x), RBF anchors) vs 2-wide tanh layers on spirals; k-NN readout; "
                    "homeomorphism checks",
    "contraction": "contractive Jacobian penalty on the disk-in-annulus pull-apart minimum: Jacobian norms, accuracy",
}

__all__ = ["STUDIES", "run_study"]


def run_study(name: str, *, quick: bool = False, out: str | None = None, progress: bool | None = None) -> dict:
    """Run study ``name`` (a key of :data:`STUDIES`); ``quick`` is a small run (under a minute on 2 cores) that
    still shows the effect. Writes ``OUT/NAME.json`` (atomically) and PNG figures into ``out`` (default
    ``results/NAME``) and returns the JSON dict (it carries ``figures``, the PNG names, and ``seconds``).
    ``progress``: False hides the progress bars."""
    if name not in STUDIES:
        raise PiecewiseError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    out = out or os.path.join("results", name)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise PiecewiseError(f"cannot create the output folder {out}: {e.strerror}") from None
    from .runners import run

    res = run(name, quick, out, progress)
    res["out"] = os.fspath(out)
    write_json(os.path.join(out, f"{name}.json"), res)
    return res

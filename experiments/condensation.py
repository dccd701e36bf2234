"""Luo, Xu et al.: two-layer ReLU net, small vs large init; hidden units condense onto few orientations.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run condensation`); the setup is in the study's
module docstring.

python experiments/condensation.py [--quick] [--out DIR]  ->  DIR/condensation.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("condensation", __doc__)

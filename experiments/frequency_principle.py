"""Xu et al.: sin x + sin 3x + sin 5x, relative DFT error per frequency over training; low frequencies converge first.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run frequency_principle`); the setup is in the study's
module docstring.

python experiments/frequency_principle.py [--quick] [--out DIR]  ->  DIR/frequency_principle.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("frequency_principle", __doc__)

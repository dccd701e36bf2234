"""MscaleDNN vs the same-size single-scale net: error of the high-frequency band after one budget.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run multiscale`); the setup is in the study's
module docstring.

python experiments/multiscale.py [--quick] [--out DIR]  ->  DIR/multiscale.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("multiscale", __doc__)

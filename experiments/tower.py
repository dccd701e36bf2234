"""one hidden ReLU layer of 2-6 units fitted to x1^2 + x2^2 + 3; exact linear regions of each fit.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run tower`); the setup is in the study's
module docstring.

python experiments/tower.py [--quick] [--out DIR]  ->  DIR/tower.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("tower", __doc__)

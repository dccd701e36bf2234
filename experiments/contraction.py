"""contractive Jacobian penalty on the disk-in-annulus pull-apart minimum: Jacobian norms, accuracy.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run contraction`); the setup is in the study's
module docstring.

python experiments/contraction.py [--quick] [--out DIR]  ->  DIR/contraction.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("contraction", __doc__)

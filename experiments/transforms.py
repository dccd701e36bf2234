"""a 2->2 layer as rotation, scaling, rotation, translation, bending; how SGD/momentum/Adam and inits move it.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run transforms`); the setup is in the study's
module docstring.

python experiments/transforms.py [--quick] [--out DIR]  ->  DIR/transforms.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("transforms", __doc__)

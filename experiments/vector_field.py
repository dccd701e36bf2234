"""vector-field layers (x + g(x), RBF anchors) vs 2-wide tanh layers on spirals; k-NN readout; homeomorphism checks.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run vector_field`); the setup is in the study's
module docstring.

python experiments/vector_field.py [--quick] [--out DIR]  ->  DIR/vector_field.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("vector_field", __doc__)

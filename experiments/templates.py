"""softmax classifier on the 8x8 digits: ten weight templates, confusion matrix, then one hidden layer.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run templates`); the setup is in the study's
module docstring.

python experiments/templates.py [--quick] [--out DIR]  ->  DIR/templates.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("templates", __doc__)

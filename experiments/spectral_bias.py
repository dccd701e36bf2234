"""Rahaman et al.: sum of sines k = 5..50 with amplitudes rising with k; still learned low to high.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run spectral_bias`); the setup is in the study's
module docstring.

python experiments/spectral_bias.py [--quick] [--out DIR]  ->  DIR/spectral_bias.json and PNG figures (DIR default results/)
"""
from _common import study_main

if __name__ == "__main__":
    study_main("spectral_bias", __doc__)

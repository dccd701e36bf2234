"""Rahaman et al.: sum of sines k = 5..50 with amplitudes rising with k; still learned low to high.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run spectral_bias`); the setup is in the study's
module docstring.

python experiments/spectral_bias.py [--quick] [--out DIR]  ->  DIR/spectral_bias.json and PNG figures (DIR default results/)
"""
from piecewise.studies import run_study
from piecewise.studies.cli import summary
from _common import parser

NAME = "spectral_bias"


def main():
    a = parser(__doc__).parse_args()
    res = run_study(NAME, quick=a.quick, out=a.out)
    print("\n".join(summary(NAME, res)))
    print(f"{res['seconds']:.1f} s; wrote {a.out}/{NAME}.json and {', '.join(res['figures'])}")


if __name__ == "__main__":
    main()

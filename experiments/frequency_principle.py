"""Xu et al.: sin x + sin 3x + sin 5x, relative DFT error per frequency over training; low frequencies converge first.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run frequency_principle`); the setup is in the study's
module docstring.

python experiments/frequency_principle.py [--quick] [--out DIR]  ->  DIR/frequency_principle.json and PNG figures (DIR default results/)
"""
from piecewise.studies import run_study
from piecewise.studies.cli import summary
from _common import parser

NAME = "frequency_principle"


def main():
    a = parser(__doc__).parse_args()
    res = run_study(NAME, quick=a.quick, out=a.out)
    print("\n".join(summary(NAME, res)))
    print(f"{res['seconds']:.1f} s; wrote {a.out}/{NAME}.json and {', '.join(res['figures'])}")


if __name__ == "__main__":
    main()

"""MscaleDNN vs the same-size single-scale net: error of the high-frequency band after one budget.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run multiscale`); the setup is in the study's
module docstring.

python experiments/multiscale.py [--quick] [--out DIR]  ->  DIR/multiscale.json and PNG figures (DIR default results/)
"""
from piecewise.studies import run_study
from piecewise.studies.cli import summary
from _common import parser

NAME = "multiscale"


def main():
    a = parser(__doc__).parse_args()
    res = run_study(NAME, quick=a.quick, out=a.out)
    print("\n".join(summary(NAME, res)))
    print(f"{res['seconds']:.1f} s; wrote {a.out}/{NAME}.json and {', '.join(res['figures'])}")


if __name__ == "__main__":
    main()

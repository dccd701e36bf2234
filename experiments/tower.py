"""one hidden ReLU layer of 2-6 units fitted to x1^2 + x2^2 + 3; exact linear regions of each fit.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run tower`); the setup is in the study's
module docstring.

python experiments/tower.py [--quick] [--out DIR]  ->  DIR/tower.json and PNG figures (DIR default results/)
"""
from piecewise.studies import run_study
from piecewise.studies.cli import summary
from _common import parser

NAME = "tower"


def main():
    a = parser(__doc__).parse_args()
    res = run_study(NAME, quick=a.quick, out=a.out)
    print("\n".join(summary(NAME, res)))
    print(f"{res['seconds']:.1f} s; wrote {a.out}/{NAME}.json and {', '.join(res['figures'])}")


if __name__ == "__main__":
    main()

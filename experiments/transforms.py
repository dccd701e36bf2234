"""a 2->2 layer as rotation, scaling, rotation, translation, bending; how SGD/momentum/Adam and inits move it.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run transforms`); the setup is in the study's
module docstring.

python experiments/transforms.py [--quick] [--out DIR]  ->  DIR/transforms.json and PNG figures (DIR default results/)
"""
from piecewise.studies import run_study
from piecewise.studies.cli import summary
from _common import parser

NAME = "transforms"


def main():
    a = parser(__doc__).parse_args()
    res = run_study(NAME, quick=a.quick, out=a.out)
    print("\n".join(summary(NAME, res)))
    print(f"{res['seconds']:.1f} s; wrote {a.out}/{NAME}.json and {', '.join(res['figures'])}")


if __name__ == "__main__":
    main()

"""softmax classifier on the 8x8 digits: ten weight templates, confusion matrix, then one hidden layer.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run templates`); the setup is in the study's
module docstring.

python experiments/templates.py [--quick] [--out DIR]  ->  DIR/templates.json and PNG figures (DIR default results/)
"""
from piecewise.studies import run_study
from piecewise.studies.cli import summary
from _common import parser

NAME = "templates"


def main():
    a = parser(__doc__).parse_args()
    res = run_study(NAME, quick=a.quick, out=a.out)
    print("\n".join(summary(NAME, res)))
    print(f"{res['seconds']:.1f} s; wrote {a.out}/{NAME}.json and {', '.join(res['figures'])}")


if __name__ == "__main__":
    main()

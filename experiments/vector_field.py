"""vector-field layers (x + g(x), RBF anchors) vs 2-wide tanh layers on spirals; k-NN readout; homeomorphism checks.

A thin script over :mod:`piecewise.studies` (the same as `piecewise run vector_field`); the setup is in the study's
module docstring.

python experiments/vector_field.py [--quick] [--out DIR]  ->  DIR/vector_field.json and PNG figures (DIR default results/)
"""
from piecewise.studies import run_study
from piecewise.studies.cli import summary
from _common import parser

NAME = "vector_field"


def main():
    a = parser(__doc__).parse_args()
    res = run_study(NAME, quick=a.quick, out=a.out)
    print("\n".join(summary(NAME, res)))
    print(f"{res['seconds']:.1f} s; wrote {a.out}/{NAME}.json and {', '.join(res['figures'])}")


if __name__ == "__main__":
    main()

"""The whole input space R^n: exact activation and linear regions of random ReLU nets, depth x width at equal
neuron counts N, against the bounds of piecewise.bounds (Serra et al. 2018 upper, Montufar 2017 upper, and
for one hidden layer Zaslavsky's closed form sum_{j<=n} C(N, j), which a general-position layer attains).

Nets n -> widths -> 1 with widths [N], [N/2]^2, [N/3]^3 for N in {6, 12, 18} and n in {2, 3, 4}, He-normal
weights, biases N(0, 0.1^2), seeds 0, 1, 2 (--quick: n in {2, 3}, N = 6, seeds 0, 1), counted on all of R^n by
a sweep spec with "box": ["-inf", "inf"] (piecewise.count_space; about 1 minute on 2 cores). Linear regions are
counted in R^2 only (LINEAR_MAX_N): beyond, merging them needs the adjacency of the n-D cells, one LP per
candidate pair of cells -- measured on 2 shared cores: 9.4 minutes for the 27 nets in R^3 (up to 1,100 regions),
1-3 minutes per net of 800 regions in R^4, where the counts themselves take 0.02-2 s. Fails loudly (exit
status 1, after writing the results) when a count is not exact, exceeds its upper bound, or a one-layer count
differs from the closed form (random Gaussian weights and biases are in general position with probability 1).

python experiments/whole_space_depth_width.py [--quick]  ->  results/whole_space_depth_width.json, .csv, .png
"""
import os
import sys
import time

import numpy as np

import piecewise as pw
from piecewise import bounds, plot
from _common import parser, write_json

NAME = "whole_space_depth_width"
LINEAR_MAX_N = 2


def shapes(N):
    """The architectures of N hidden neurons: [N], [N/2, N/2], [N/3] x 3 (those that divide N)."""
    return [[N // d] * d for d in (1, 2, 3) if N % d == 0]


def check(rows):
    """The violations (a list of one-line strings; empty when every check passes) among result rows."""
    bad = []
    for r in rows:
        name = f"n={r['n_in']} widths={r['widths']} seed={r['seed']}"
        if not r.get("exact", False) or r.get("undecided", 0):
            bad.append(f"{name}: not exact ({r.get('undecided')} LP decisions undecided)")
        if r["regions"] > r["serra2018_upper"]:
            bad.append(f"{name}: {r['regions']} activation regions > Serra 2018 upper bound {r['serra2018_upper']}")
        if r["serra2018_upper"] > r["montufar2017_upper"]:
            bad.append(f"{name}: Serra 2018 bound {r['serra2018_upper']} > Montufar 2017 bound "
                       f"{r['montufar2017_upper']}")
        if r.get("linear_regions", 0) > r["regions"]:
            bad.append(f"{name}: {r['linear_regions']} linear regions > {r['regions']} activation regions")
        if r["depth"] == 1 and r["regions"] != r["closed_form"]:
            bad.append(f"{name}: one layer: {r['regions']} regions != sum_j C({r['neurons']}, j) = {r['closed_form']}")
    return bad


def main():
    a = parser(__doc__).parse_args()
    t0 = time.perf_counter()
    n_ins = (2, 3) if a.quick else (2, 3, 4)
    Ns = (6,) if a.quick else (6, 12, 18)
    seeds = [0, 1] if a.quick else [0, 1, 2]
    rows = []
    for n in n_ins:
        spec = {"n_in": n, "widths": [w for N in Ns for w in shapes(N)], "seeds": seeds, "box": ["-inf", "inf"],
                "linear": n <= LINEAR_MAX_N, "init": {"scheme": "he", "bias_std": 0.1}}
        t = time.perf_counter()
        for r in pw.sweep.run_sweep(spec, progress=False):
            w = tuple(r["widths"])
            rows.append({"n_in": n, **r, "serra2018_upper": bounds.serra2018_upper(n, w),
                         "montufar2017_upper": bounds.montufar2017_upper(n, w),
                         "closed_form": bounds.zaslavsky(r["neurons"], n) if r["depth"] == 1 else None})
        print(f"R^{n}: {len(spec['widths']) * len(seeds)} nets counted in {time.perf_counter() - t:.1f} s", flush=True)
    table = []
    for n in n_ins:
        for N in Ns:
            for w in shapes(N):
                sel = [r for r in rows if r["n_in"] == n and r["widths"] == w]
                reg, lin = [r["regions"] for r in sel], [r.get("linear_regions") for r in sel]
                table.append({"n_in": n, "N": N, "widths": w, "depth": len(w), "regions": reg,
                              "regions_mean": float(np.mean(reg)), "linear_regions": lin,
                              "linear_regions_mean": float(np.mean(lin)) if None not in lin else None,
                              "serra2018_upper": sel[0]["serra2018_upper"],
                              "montufar2017_upper": sel[0]["montufar2017_upper"], "closed_form": sel[0]["closed_form"],
                              "algorithm": sorted({r["algorithm"] for r in sel}),
                              "exact": all(r["exact"] for r in sel),
                              "seconds": round(sum(r["seconds"] for r in sel), 3)})
    violations = check(rows)
    print(f"{'n':>2} {'N':>3} {'widths':>8} | {'regions (seeds)':>20} | {'linear (mean)':>13} | {'closed form':>11} | "
          f"{'Serra upper':>11} | {'s':>6}")
    for t in table:
        cf = "-" if t["closed_form"] is None else str(t["closed_form"])
        lm = "-" if t["linear_regions_mean"] is None else f"{t['linear_regions_mean']:.1f}"
        print(f"{t['n_in']:>2} {t['N']:>3} {'x'.join(map(str, t['widths'])):>8} | {str(t['regions']):>20} | "
              f"{lm:>13} | {cf:>11} | {t['serra2018_upper']:>11} | {t['seconds']:6.2f}")
    res = {"setup": {"activation": "relu", "n_out": 1, "init": "he normal", "bias_std": 0.1, "seeds": seeds,
                     "domain": "the whole input space R^n (sweep spec box [\"-inf\", \"inf\"], piecewise.count_space)",
                     "n_in": list(n_ins), "neurons": list(Ns),
                     "counts": f"activation regions, and linear regions for n <= {LINEAR_MAX_N}, exact"},
           "rows": rows, "table": table,
           "checks": {"exact": all(r["exact"] and not r["undecided"] for r in rows),
                      "upper_bounds_respected": all(r["regions"] <= r["serra2018_upper"] for r in rows),
                      "one_layer_equals_closed_form": all(r["regions"] == r["closed_form"] for r in rows
                                                          if r["depth"] == 1),
                      "violations": violations},
           "seconds": round(time.perf_counter() - t0, 2)}
    plt = plot._plt()
    fig, axes = plt.subplots(1, len(n_ins), figsize=(4.6 * len(n_ins), 4.8), squeeze=False)
    for ax, n in zip(axes[0], n_ins):
        plot.sweep_panel(ax, [r for r in rows if r["n_in"] == n], "depth", "neurons", dim=n)
        ax.set_title(f"R^{n}", fontsize=10)
    axes[0][0].set_ylabel("regions of R^n (exact)")
    style = plot.sweep_styles([r for r in rows if "linear_regions" in r] or rows)
    fig.legend(handles=style, loc="lower center", ncol=len(style), fontsize=8, frameon=False, handlelength=3)
    fig.suptitle("the whole input space: regions of random ReLU nets against depth at a fixed neuron count N\n"
                 f"mean over {len(seeds)} seeds, band from min to max; at depth 1 the upper bound is the closed form "
                 "sum_{j<=n} C(N, j)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    figure = plot.save(fig, os.path.join(a.out, f"{NAME}.png"))
    res["figures"] = [os.path.basename(figure)]
    print(write_json(a.out, NAME, res))
    print(pw.sweep.to_csv(rows, os.path.join(a.out, f"{NAME}.csv")))
    if violations:
        sys.exit(f"{len(violations)} check(s) failed:\n" + "\n".join(violations))
    print(f"checks passed: exact counts, no count above its upper bound, one-layer counts = closed form "
          f"({res['seconds']:.1f} s)")


if __name__ == "__main__":
    main()

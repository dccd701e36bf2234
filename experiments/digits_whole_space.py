"""Trained digits MLPs over their whole input space: exact activation and linear regions on the pixel cube
[0, 16]^64 and on all of R^64, at initialisation and after training.

MLPs 64-8-8-10 and 64-12-12-10 (--quick: 64-4-4-10), He-normal weights, biases N(0, 0.1^2), trained full
batch with Adam (lr 3e-3, 400 steps; --quick 100) on 80% of scikit-learn's bundled 8x8 digits with their raw
pixels 0..16 as inputs (the other 20% give the test accuracy). Each count is piecewise.count_space (the
region-graph search beyond 4 inputs: one LP per candidate facet) with its seconds, ``algorithm``, ``exact``
and ``undecided``. Fails loudly (exit status 1, after writing the results) when the cube has more regions
than R^64 (each region of the cube is a region of R^64 cut by it) or more linear than activation regions.
Measured on 2 cores: 64-8-8-10 has 12,700-14,800 regions per count, about 30 s each in R^64 and 2.5 minutes in
the cube (6 minutes in all); 64-12-12-10 at init has more than 320,000 regions in R^64 (160,000 found and
167,000 queued when a search was stopped after 15 minutes), so its four counts take hours (``--archs 8-8``
leaves it out).

python experiments/digits_whole_space.py [--quick] [--archs 8-8,12-12] [--stages init,trained]
    ->  results/digits_whole_space.json, .png
"""
import os
import sys
import time

import jax
import numpy as np
import optax

import piecewise as pw
from piecewise import bounds, plot
from piecewise.train import accuracy, fit
from _common import parser, write_json

NAME = "digits_whole_space"
DOMAINS = (("[0, 16]^64", lambda: pw.space(0.0, 16.0, n_in=64)), ("R^64", lambda: pw.space(n_in=64)))


def split(X, y, seed=0, test=0.2):
    """A fixed random split: (X_train, y_train, X_test, y_test)."""
    idx = np.random.default_rng(seed).permutation(len(X))
    k = int(round(len(X) * (1 - test)))
    return X[idx[:k]], y[idx[:k]], X[idx[k:]], y[idx[k:]]


def count(net, params, where, domain):
    """One whole-space count as a result row (regions, linear regions, seconds, how it was counted)."""
    t = time.perf_counter()
    r = pw.count_space(net, params, domain, progress=False)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    lin = r.linear_regions()[0]
    js = r.to_json()
    return {"domain": where, "domain_bounds": js["domain"], "regions": int(r.regions), "linear_regions": int(lin),
            "seconds": round(seconds, 3), "seconds_linear": round(time.perf_counter() - t, 3),
            "ms_per_region": round(1e3 * seconds / r.regions, 3), "algorithm": js["algorithm"],
            "exact": bool(r.exact), "undecided": int(r.undecided), "lps": js.get("lps"),
            "facets_by_ray": js.get("facets_by_ray")}


def check(rows):
    """One-line violations among the rows (empty when every check passes)."""
    bad = []
    for r in rows:
        if r["linear_regions"] > r["regions"]:
            bad.append(f"{r['net']} {r['stage']} on {r['domain']}: {r['linear_regions']} linear > {r['regions']} "
                       "activation regions")
    pairs: dict = {}
    for r in rows:
        pairs.setdefault((r["net"], r["stage"]), {})[r["domain"]] = r
    for (net, stage), d in pairs.items():
        if len(d) == 2 and d["[0, 16]^64"]["regions"] > d["R^64"]["regions"]:
            bad.append(f"{net} {stage}: {d['[0, 16]^64']['regions']} regions in [0, 16]^64 > "
                       f"{d['R^64']['regions']} in R^64")
    return bad


def main():
    ap = parser(__doc__)
    ap.add_argument("--archs", default=None, help="hidden widths, e.g. 8-8,12-12 (default; --quick: 4-4)")
    ap.add_argument("--stages", default="init,trained", help="init, trained or both (default init,trained)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    archs = [tuple(int(w) for w in s.split("-")) for s in (a.archs or ("4-4" if a.quick else "8-8,12-12")).split(",")]
    stages = a.stages.split(",")
    if not stages or any(s not in ("init", "trained") for s in stages):
        sys.exit(f"--stages: expected init, trained or init,trained, got {a.stages!r}")
    steps, lr, seed = (100 if a.quick else 400), 3e-3, 0
    X, y = pw.datasets.digits(scale=False)  # raw pixels 0..16: the cube [0, 16]^64 holds every image
    Xtr, ytr, Xte, yte = split(X, y)
    res = {"setup": {"data": "scikit-learn 8x8 digits, raw pixels 0..16", "n_train": len(Xtr), "n_test": len(Xte),
                     "activation": "relu", "init": "he normal", "bias_std": 0.1, "seed": seed,
                     "optimizer": f"adam lr {lr:g}, full batch", "steps": steps,
                     "count": "piecewise.count_space, exact activation and linear regions"},
           "rows": [], "nets": []}
    for widths in archs:
        name = "-".join(map(str, (64, *widths, 10)))
        net = pw.mlp(64, widths, 10, "relu")
        params = net.init(key=jax.random.key(seed), bias_std=0.1)
        t = time.perf_counter()
        records = fit(net, params, Xtr, ytr, optax.adam(lr), steps=steps, checkpoints=1)
        train_s = time.perf_counter() - t
        info = {"net": name, "widths": list(widths), "train_seconds": round(train_s, 2),
                "serra2018_upper": bounds.serra2018_upper(64, widths)}
        for stage, rec in zip(("init", "trained"), records):
            info[stage] = {"step": rec["step"], "loss": round(float(rec["loss"]), 5),
                           "train_accuracy": accuracy(net, rec["params"], Xtr, ytr),
                           "test_accuracy": accuracy(net, rec["params"], Xte, yte)}
        res["nets"].append(info)
        print(f"{name}: test accuracy {info['init']['test_accuracy']:.3f} at init, "
              f"{info['trained']['test_accuracy']:.3f} after {steps} steps ({train_s:.1f} s)", flush=True)
        for stage, rec in zip(("init", "trained"), records):
            if stage not in stages:
                continue
            for where, make in DOMAINS:
                row = {"net": name, "widths": list(widths), "stage": stage, "step": rec["step"],
                       "test_accuracy": info[stage]["test_accuracy"], **count(net, rec["params"], where, make())}
                res["rows"].append(row)
                print(f"  {stage:>7} {where:>10}: {row['regions']:>7} regions, {row['linear_regions']:>7} linear, "
                      f"{row['seconds']:8.1f} s ({row['ms_per_region']:.1f} ms/region), exact {row['exact']}, "
                      f"undecided {row['undecided']}", flush=True)
                res["seconds"] = round(time.perf_counter() - t0, 2)
                write_json(a.out, NAME, res)  # after every count: a long run shows what it has
    violations = check(res["rows"])
    res["checks"] = {"box_at_most_space": not any("R^64" in v for v in violations),
                     "linear_at_most_activation": not any("linear" in v for v in violations), "violations": violations}
    res["seconds"] = round(time.perf_counter() - t0, 2)
    plt = plot._plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    labels = [f"{r['net']}\n{r['stage']}" for r in res["rows"] if r["domain"] == "R^64"]
    xs = np.arange(len(labels))
    for k, (where, _) in enumerate(DOMAINS):
        R = [r for r in res["rows"] if r["domain"] == where]
        bars = ax.bar(xs + (k - 0.5) * 0.38, [r["regions"] for r in R], 0.36, label=f"activation regions, {where}")
        ax.bar_label(bars, fontsize=7)
        ax.plot(xs + (k - 0.5) * 0.38, [r["linear_regions"] for r in R], "k_", ms=14, mew=2,
                label="linear regions" if k == 0 else None)
    ax.set_xticks(xs, labels, fontsize=8)
    counts = [r["regions"] for r in res["rows"]]
    if counts and max(counts) > 30 * min(counts):  # counts of different orders of magnitude
        ax.set_yscale("log")
    ax.set_ylabel("regions (exact)")
    ax.set_title("digits MLPs: regions of the pixel cube and of R^64, at init and after training", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    res["figures"] = [os.path.basename(plot.save(fig, os.path.join(a.out, f"{NAME}.png")))]
    print(write_json(a.out, NAME, res))
    if violations:
        sys.exit(f"{len(violations)} check(s) failed:\n" + "\n".join(violations))
    print(f"checks passed: regions of [0, 16]^64 <= regions of R^64, linear <= activation ({res['seconds']:.1f} s)")


if __name__ == "__main__":
    main()

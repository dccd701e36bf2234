"""One runner per study: train, measure, draw, return the JSON-ready dict (the registry writes it)."""
from __future__ import annotations

import os

import numpy as np

from .. import plot
from ._common import Timer, to_json


def _save(fig, out, name):
    return os.path.basename(plot.save(fig, os.path.join(out, name)))


def _spectral(name, run_fn, quick, out, progress):
    from . import spectral

    t = Timer()
    r = run_fn(quick=quick, progress=progress)
    plt = plot._plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    spectral.plot_delta(axes[0], r["steps"], r["delta"], r["frequencies"], f"{name}: Δ(k) over training")
    s = r["setup"]
    axes[1].plot(s["x"], s["target"], "k.", ms=3, label="target")
    axes[1].plot(s["x"], r["output"], "r-", lw=1, label="network (end)")
    axes[1].set(xlabel="x", title="fit at the end of training")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    png = _save(fig, out, f"{name}.png")
    setup = {k: v for k, v in s.items() if k not in ("x", "target")}
    return {"study": name, "quick": quick, "frequencies": r["frequencies"], "converged_step": r["converged_step"],
            "threshold": spectral.THRESHOLD, "final_delta": r["delta"][-1], "final_mse": r["loss"][-1],
            "recorded_steps": r["steps"], "delta": r["delta"], "setup": setup, "figures": [png], "seconds": t()}


def frequency_principle(quick, out, progress):
    from .spectral import run_frequency_principle

    return _spectral("frequency_principle", run_frequency_principle, quick, out, progress)


def spectral_bias(quick, out, progress):
    from .spectral import run_spectral_bias

    return _spectral("spectral_bias", run_spectral_bias, quick, out, progress)


def condensation(quick, out, progress):
    from . import condensation as C

    t = Timer()
    s = C.setup(quick)
    res = {name: C.train(g, s, progress=progress) for name, g in s["gammas"].items()}
    plt = plot._plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for j, name in enumerate(res):
        for i, when in enumerate(("before", "after")):
            d = res[name][when]
            ax = axes[i, j]
            ax.scatter(d["theta"], d["amplitude"], s=4)
            ax.set(title=f"{name} (γ={res[name]['gamma']}), {when}: condensed {d['fraction']:.2f}",
                   xlabel="orientation θ = sign(b)·arccos(w/|(w,b)|)", ylabel="amplitude |a|·|(w,b)|")
            ax.set_xlim(-np.pi, np.pi)
    fig.tight_layout()
    png = _save(fig, out, "condensation.png")
    body = {name: {"gamma": r["gamma"], "final_loss": r["loss"], "condensed_fraction": r["after"]["fraction"],
                   "condensed_fraction_before": r["before"]["fraction"], "directions": r["after"]["directions"],
                   "direction_mass": r["after"]["mass"]} for name, r in res.items()}
    # the target's own units: (w, b) = (1, -1/3) and (-1, -1/3)
    ref = [float(-np.arccos(1 / np.hypot(1, 1 / 3))), float(-np.arccos(-1 / np.hypot(1, 1 / 3)))]
    setup = {k: v for k, v in s.items()}
    return {"study": "condensation", "quick": quick, **body, "target_orientations": ref, "window_rad": C.WINDOW,
            "setup": setup, "figures": [png], "seconds": t()}


def multiscale(quick, out, progress):
    from . import multiscale as M

    t = Timer()
    s = M.setup(quick)
    res = {"single_scale": M.train(s, False, progress=progress), "multiscale": M.train(s, True, progress=progress)}
    plt = plot._plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in res.items():
        axes[0].semilogy(r["steps"], r["high_curve"], label=f"{name}: high band")
        axes[0].semilogy(r["steps"], r["low_curve"], "--", label=f"{name}: low band")
    axes[0].set(xlabel="training step", ylabel="relative error of the band", title="DFT band errors over training")
    axes[0].legend(fontsize=8)
    axes[1].plot(s["x"], s["target"], "k.", ms=2, label="target")
    for name, r in res.items():
        axes[1].plot(s["x"], r["output"], lw=1, label=name)
    axes[1].legend(fontsize=8)
    axes[1].set(xlabel="x", title="fits at the end of the same budget")
    fig.tight_layout()
    png = _save(fig, out, "multiscale.png")
    body = {n: {"high_freq_error": r["high_freq_error"], "low_freq_error": r["low_freq_error"], "mse": r["mse"]}
            for n, r in res.items()}
    body["multiscale"]["scales"] = sorted(set(res["multiscale"]["scales"].tolist()))
    setup = {k: v for k, v in s.items() if k not in ("x", "target")}
    setup["target"] = "sin(pi x) + 0.5 sin(24 pi x) + 0.3 sin(40 pi x) on 256 points of [-1, 1)"
    return {"study": "multiscale", "quick": quick, **body, "setup": setup, "figures": [png], "seconds": t()}


def tower(quick, out, progress):
    from . import tower as T

    t = Timer()
    s = T.setup(quick)
    from tqdm.auto import tqdm

    res = [T.fit_tower(k, s) for k in tqdm(s["units"], desc="tower fits", leave=False, disable=progress is False)]
    plt = plot._plt()
    fig, axes = plt.subplots(2, len(res), figsize=(3.2 * len(res), 6.4))
    g = np.linspace(-1, 1, 81, dtype=np.float32)
    XX = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    for j, r in enumerate(res):
        Z = np.asarray(r["net"].apply(r["params"], XX))[:, 0].reshape(81, 81)
        ax = axes[0, j]
        im = ax.imshow(Z.T, origin="lower", extent=[-1, 1, -1, 1], cmap="viridis")
        ax.contour(g, g, Z.T, levels=10, colors="w", linewidths=0.4)
        ax.set_title(f"{r['units']} units: fit (mse {r['mse']:.3g})", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
        plot.cell_map(r["cells"], ax=axes[1, j], linear=True, boundary=False,
                      title=f"exact linear regions: {r['linear_regions']}")
        axes[1, j].title.set_fontsize(9)
    fig.suptitle("one hidden ReLU layer fitted to x1² + x2² + 3 on [-1, 1]²")
    fig.tight_layout()
    png = _save(fig, out, "tower.png")
    return {"study": "tower", "quick": quick, "units": [r["units"] for r in res], "mse": [r["mse"] for r in res],
            "linear_regions": [r["linear_regions"] for r in res],
            "activation_regions": [r["activation_regions"] for r in res],
            "weights": [{"W0": np.asarray(r["params"][0][0]), "b0": np.asarray(r["params"][0][1]),
                         "W1": np.asarray(r["params"][1][0]), "b1": np.asarray(r["params"][1][1])} for r in res],
            "setup": s, "figures": [png], "seconds": t()}


def templates(quick, out, progress):
    from . import templates as T

    t = Timer()
    s = T.setup(quick)
    data = T.split()
    lin = T.train_classifier((), s, data)
    hid = T.train_classifier((s["hidden"],), s, data)
    plt = plot._plt()
    fig, axes = plt.subplots(2, 10, figsize=(13, 3.2))
    for c in range(10):
        for i, (r, lab) in enumerate(((lin, "class"), (hid, "unit"))):
            im = r["templates"][c]
            lim = np.abs(im).max()
            axes[i, c].imshow(im, cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[i, c].set_title(f"{lab} {c}", fontsize=8)
            axes[i, c].axis("off")
    fig.suptitle("top: the single-layer classifier's ten weight images (red +, blue −); "
                 "bottom: ten first-layer weight images with one hidden layer", fontsize=9)
    fig.tight_layout()
    p1 = _save(fig, out, "templates_weights.png")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, r, lab in ((axes[0], lin, "single layer"), (axes[1], hid, f"hidden layer of {s['hidden']}")):
        ax.imshow(r["confusion"], cmap="Blues")
        for (i, j), v in np.ndenumerate(r["confusion"]):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=6)
        ax.set(xlabel="predicted", ylabel="true", title=f"{lab}: test accuracy {r['test_accuracy']:.3f}",
               xticks=range(10), yticks=range(10))
    fig.tight_layout()
    p2 = _save(fig, out, "templates_confusion.png")
    return {"study": "templates", "quick": quick, "test_accuracy": lin["test_accuracy"],
            "train_accuracy": lin["train_accuracy"], "confusion": lin["confusion"], "n_test": lin["n_test"],
            "hidden": {"units": s["hidden"], "test_accuracy": hid["test_accuracy"],
                       "train_accuracy": hid["train_accuracy"], "confusion": hid["confusion"], "n_test": hid["n_test"]},
            "setup": s, "figures": [p1, p2], "seconds": t()}


def transforms(quick, out, progress):
    from . import transforms as T

    t = Timer()
    s = T.setup(quick)
    runs = [T.train_layer(s, o, "glorot", progress=progress) for o in s["optimizers"]]
    runs += [T.train_layer(s, "adam", i, progress=progress) for i in s["inits"] if i != "glorot"]
    plt = plot._plt()
    # figure 1: the five operations of the Adam/glorot layer after training
    r = runs[2]
    W, b = r["W"][-1], r["b"][-1]
    lines = T.grid_lines(-1, 1, 11)
    fig, axes = plt.subplots(1, 6, figsize=(18, 3.2))
    for k, name in enumerate(T.STAGES):
        ax = axes[k]
        for L in lines:
            P = T.stages(W, b, L)[k]
            ax.plot(P[:, 0], P[:, 1], color="0.6", lw=0.5)
        P = T.stages(W, b, r["X"])[k]
        ax.scatter(P[:, 0], P[:, 1], c=r["y"], cmap="coolwarm", s=3)
        ax.set_title(f"{k}. {name}", fontsize=9)
        ax.set_aspect("equal", "datalim")
    fig.suptitle("first layer of a trained 2-2-2 tanh net as rotation, scaling, rotation, translation, bending")
    fig.tight_layout()
    p1 = _save(fig, out, "transforms_stages.png")
    # figure 2: how optimizers and initialisations move the layer
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for r in runs:
        lab = f"{r['optimizer']}/{r['init']}"
        axes[0].plot(r["steps"], r["singular_values"][:, 0], label=lab)
        axes[0].plot(r["steps"], r["singular_values"][:, 1], ":", color=axes[0].lines[-1].get_color())
        axes[1].plot(r["steps"], np.unwrap(r["angle_U"]), label=lab)
        axes[2].semilogy(r["steps"], r["loss_curve"], label=lab)
    axes[0].set(xlabel="step", ylabel="singular values (solid σ1, dotted σ2)", title="scaling")
    axes[1].set(xlabel="step", ylabel="angle of U (rad)", title="first rotation")
    axes[2].set(xlabel="step", ylabel="cross-entropy", title="loss")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    p2 = _save(fig, out, "transforms_training.png")
    # check: the five stages compose back to the layer
    X = np.asarray(r["X"], np.float64)
    recon = float(np.abs(T.stages(W, b, X)[-1] - np.tanh(X @ W + b)).max())
    rows = [{"optimizer": r["optimizer"], "init": r["init"], "accuracy": r["accuracy"], "final_loss": r["loss"],
             "distance_moved": r["distance_moved"], "singular_values_start": r["singular_values"][0],
             "singular_values_end": r["singular_values"][-1], "angle_U_start": r["angle_U"][0],
             "angle_U_end": r["angle_U"][-1], "angle_Vt_end": r["angle_Vt"][-1], "b_end": r["b"][-1]} for r in runs]
    return {"study": "transforms", "quick": quick, "runs": rows, "reconstruction_error": recon,
            "setup": s, "figures": [p1, p2], "seconds": t()}


def vector_field(quick, out, progress):
    from . import vector_field as V

    t = Timer()
    s = V.setup(quick)
    vf = V.train_vector_field(s, progress=progress)
    th = V.train_tanh(s, progress=progress)
    plt = plot._plt()
    import jax.numpy as jnp

    fig, axes = plt.subplots(1, s["layers"] + 2, figsize=(3.3 * (s["layers"] + 2), 3.4))
    reps = V.representation(vf["params"], vf["anchors"], vf["sigma"], jnp.asarray(vf["X"]))
    lines = [jnp.asarray(L, jnp.float32) for L in _grid(-1.2, 1.2, 13)]
    pts = [vf["X"]] + [np.asarray(h) for h in reps]
    glines = [[np.asarray(L) for L in lines]]
    for V_ in vf["params"]["V"]:
        glines.append([np.asarray(V.layer_points(V_, vf["anchors"], vf["sigma"], L)) for L in lines])
        lines = [jnp.asarray(L) for L in glines[-1]]
    for k in range(s["layers"] + 1):
        ax = axes[k]
        for L in glines[k]:
            ax.plot(L[:, 0], L[:, 1], color="0.6", lw=0.4)
        ax.scatter(pts[k][:, 0], pts[k][:, 1], c=vf["y"], cmap="coolwarm", s=3)
        ax.set_title("input" if k == 0 else f"after vector-field layer {k}", fontsize=9)
        ax.set_aspect("equal", "datalim")
    H = np.asarray(th["net"].hidden(th["params"], vf["X"])[-1])
    axes[-1].scatter(H[:, 0], H[:, 1], c=vf["y"], cmap="coolwarm", s=3)
    axes[-1].set_title(f"tanh 2-2-2-2, last layer (acc {th['train_accuracy']:.2f})", fontsize=9)
    fig.tight_layout()
    png = _save(fig, out, "vector_field.png")
    vfj = {k: vf[k] for k in ("train_accuracy", "test_accuracy", "knn_test_accuracy", "layers")}
    vfj["homeomorphism"] = all(L["homeomorphism"] for L in vf["layers"]) if vf["layers"] else None
    thj = {k: th[k] for k in ("train_accuracy", "test_accuracy", "knn_test_accuracy")}
    thj["homeomorphism"] = th["layer_theorem"]["certified"]
    thj["layer_theorem"] = th["layer_theorem"]
    return {"study": "vector_field", "quick": quick, "vector_field": vfj, "tanh": thj, "setup": s,
            "figures": [png], "seconds": t()}


def _grid(lo, hi, lines, samples=80):
    tt = np.linspace(lo, hi, samples, dtype=np.float32)
    out = []
    for c in np.linspace(lo, hi, lines, dtype=np.float32):
        out += [np.c_[tt, np.full_like(tt, c)], np.c_[np.full_like(tt, c), tt]]
    return out


def contraction(quick, out, progress):
    from tqdm.auto import tqdm

    from . import contraction as C

    t = Timer()
    s = C.setup(quick)
    jobs = [(n, w, lam, seed) for n, w in s["nets"].items() for lam in s["lams"] for seed in range(s["seeds"])]
    res = {}
    last = {}
    for n, w, lam, seed in tqdm(jobs, desc="contraction", leave=False, disable=progress is False):
        r = C.train(w, lam, s, seed=seed)
        res.setdefault((n, lam), []).append(r)
    body = {}
    for (n, lam), rs in res.items():
        body.setdefault(n, {})["lam=" + repr(lam)] = {
            "accuracy": [r["accuracy"] for r in rs], "test_accuracy": [r["test_accuracy"] for r in rs],
            "mean_accuracy": float(np.mean([r["accuracy"] for r in rs])),
            "mean_test_accuracy": float(np.mean([r["test_accuracy"] for r in rs])),
            "jacobian_mean": [r["jacobian_mean"] for r in rs], "jacobian_max": [r["jacobian_max"] for r in rs],
            "median_jacobian_mean": float(np.median([r["jacobian_mean"] for r in rs])),
            "median_jacobian_max": float(np.median([r["jacobian_max"] for r in rs]))}
        last[(n, lam)] = rs[0]
    plt = plot._plt()
    keys = list(last)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.6))
    for ax, k in zip(axes, keys):
        r = last[k]
        H = np.asarray(r["net"].hidden(r["params"], r["X"])[-1])
        ax.scatter(H[:, 0], H[:, 1], c=r["y"], cmap="coolwarm", s=3)
        ax.set_title(f"{k[0]}, λ={k[1]}: acc {r['accuracy']:.2f}\nmean |J| {r['jacobian_mean']:.2f}, "
                     f"max {r['jacobian_max']:.1f}", fontsize=8)
    fig.suptitle("disk in annulus: last hidden representation (seed 0)", fontsize=9)
    fig.tight_layout()
    png = _save(fig, out, "contraction.png")
    return {"study": "contraction", "quick": quick, **body, "setup": s, "figures": [png], "seconds": t()}


RUNNERS = {"frequency_principle": frequency_principle, "spectral_bias": spectral_bias, "condensation": condensation,
           "multiscale": multiscale, "tower": tower, "templates": templates, "transforms": transforms,
           "vector_field": vector_field, "contraction": contraction}


def run(name, quick, out, progress):
    return to_json(RUNNERS[name](quick, out, progress))

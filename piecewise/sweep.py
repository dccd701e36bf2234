"""Depth x width x seed sweeps of exact region counts, at initialisation and during training.

Results are rows of plain data (JSON/CSV), one per (depth, width, seed, training step). A sweep written to
``out`` is **resumable**: the file is rewritten atomically (temporary file + rename) after every finished
network, and a rerun skips the networks already there (same configuration required).

Example::

    >>> import piecewise as pw
    >>> rows = pw.sweep.sweep(2, depths=(1, 2), widths=(4,), seeds=(0,))
    >>> [(r["depth"], r["regions"] > 0) for r in rows]
    [(1, True), (2, True)]
"""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass, field

import jax
import numpy as np

from .errors import PiecewiseError
from .nets import mlp
from .regions import box as _box
from .regions import enumerate_cells
from .regions.domain import Domain


@dataclass(frozen=True)
class Training:
    """Full-batch training between region counts: data (X, y), ``steps`` in total, counted at
    ``checkpoints + 1`` evenly spaced steps (step 0 included), optax Adam with learning rate ``lr``."""

    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    steps: int = 1000
    checkpoints: int = 4
    lr: float = 1e-2


def _config(n_in, n_out, activation, bias_std, scheme, domain, training):
    d = {"n_in": n_in, "n_out": n_out, "activation": activation, "bias_std": bias_std, "scheme": scheme,
         "domain": domain.describe()}
    if training is not None:
        d["training"] = {"steps": training.steps, "checkpoints": training.checkpoints, "lr": training.lr,
                         "n_data": int(len(training.X))}
    return d


def _one(job):
    (depth, width, seed), n_in, n_out, activation, bias_std, scheme, domain, training = job
    import optax

    from .train import accuracy, fit

    net = mlp(n_in, (width,) * depth, n_out, activation)
    params = net.init(key=jax.random.key(seed), scheme=scheme, bias_std=bias_std)
    if training is None:
        records = [{"step": 0, "params": params, "loss": None}]
    else:
        records = fit(net, params, training.X, training.y, optax.adam(training.lr), steps=training.steps,
                      checkpoints=training.checkpoints)
    rows = []
    for rec in records:
        t = time.perf_counter()
        cx = enumerate_cells(net, rec["params"], domain, progress=False)
        row = {"depth": depth, "width": width, "seed": seed, "neurons": depth * width, "step": rec["step"],
               "regions": cx.regions, "seconds": round(time.perf_counter() - t, 4)}
        if training is not None:
            row["loss"] = rec["loss"]
            row["accuracy"] = accuracy(net, rec["params"], training.X, training.y) if n_out > 1 else None
        rows.append(row)
    return rows


def sweep(n_in: int, depths, widths, seeds=(0,), *, n_out: int = 1, activation: str = "relu",
          bias_std: float = 0.1, scheme: str = "he", domain: Domain | None = None,
          training: Training | None = None, out: str | None = None, executor=None,
          progress: bool | None = None) -> list[dict]:
    """Exact activation-region counts for every ``(depth, width, seed)``: nets ``n_in -> width x depth ->
    n_out``, ``scheme`` init with biases N(0, bias_std^2), counted on ``domain`` (default [-1, 1]^2; for
    higher input dimensions pass a :func:`~piecewise.regions.plane` through data points).

    ``training``: also train and count at its checkpoints. ``out``: a JSON file, written atomically after
    every network and resumed from. ``executor``: anything with a ``map(fn, jobs)`` returning results in
    order (``concurrent.futures.ProcessPoolExecutor``; a ``dask.distributed.Client`` via
    ``client.get_executor()``); default in-process. Returns the rows, sorted.
    """
    from tqdm.auto import tqdm

    domain = domain if domain is not None else _box(-1.0, 1.0, n_in)
    if domain.n_in != n_in:
        raise PiecewiseError(f"the domain lives in R^{domain.n_in} but n_in = {n_in}")
    cfg = _config(n_in, n_out, activation, bias_std, scheme, domain, training)
    done: dict[tuple, list[dict]] = {}
    if out is not None and os.path.exists(out):
        with open(out) as f:
            saved = json.load(f)
        if saved.get("config") != json.loads(json.dumps(cfg)):
            raise PiecewiseError(f"{out} holds a sweep with another configuration; use another file")
        for r in saved["rows"]:
            done.setdefault((r["depth"], r["width"], r["seed"]), []).append(r)
    keys = [(d, w, s) for d in depths for w in widths for s in seeds]
    todo = [k for k in keys if k not in done]
    jobs = [(k, n_in, n_out, activation, bias_std, scheme, domain, training) for k in todo]
    results = map(_one, jobs) if executor is None else executor.map(_one, jobs)
    bar = tqdm(total=len(todo), desc="sweep", unit="net", leave=False,
               disable=(not progress) if progress is not None else None)
    for k, rows in zip(todo, results):
        done[k] = rows
        bar.update(1)
        if out is not None:
            _write(out, cfg, done)
    bar.close()
    return sorted((r for k in keys for r in done[k]), key=lambda r: (r["depth"], r["width"], r["seed"], r["step"]))


def _write(path, cfg, done):
    rows = [r for k in sorted(done) for r in done[k]]
    tmp = f"{path}.tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, "w") as f:
        json.dump({"config": cfg, "rows": rows}, f, indent=1)
    os.replace(tmp, path)


def to_csv(rows: list[dict], path: str) -> str:
    """Write sweep rows as CSV (columns: the union of the rows' keys)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    os.replace(path + ".tmp", path)
    return path


def summarize(rows: list[dict], by=("depth", "width", "step")) -> list[dict]:
    """Mean and standard deviation of ``regions`` over seeds, grouped by ``by``."""
    groups: dict[tuple, list[int]] = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r["regions"])
    return [{**dict(zip(by, k)), "mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
            for k, v in sorted(groups.items())]

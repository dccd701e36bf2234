"""Depth x width x seed sweeps of region counts, at initialisation and during training, in-process or on Dask.

Two entry points:

* :func:`run_sweep` (and the ``piecewise sweep SPEC.json`` command): a sweep described by a JSON **spec**,
  one task per *cell* (one network: hidden widths x seed, with all its training checkpoints), results in a
  folder: ``sweep.json`` (``{"config": ..., "results": [...]}``), ``sweep.csv`` and ``sweep.png``.
  ``sweep.json`` and ``sweep.csv`` are rewritten atomically after every finished cell; ``resume=True``
  skips the cells already there (the spec may add widths or seeds, nothing else may change).
* :func:`sweep`: the older Python-only form (uniform widths ``depths x widths``), a resumable JSON file.

Spec fields (JSON object; unknown fields are an error)::

    n_in        int >= 1                                   (required)
    widths      list of hidden-width lists, e.g. [[8], [8, 8], [16, 16, 16]]     (required)
    activation  "relu" (default), "leaky_relu:0.1", "abs", "hardtanh", "maxout:2"
    n_out       outputs (default 1; with training: the data set's number of classes)
    seeds       list of ints (default [0]): init keys jax.random.key(seed)
    box         [lo, hi]: the cube [lo, hi]^n_in (default [-1, 1]); a side may be infinite, written as the
                string "-inf" or "inf" (JSON has no infinity): ["-inf", "inf"] is the whole input space R^n_in,
                [0, "inf"] the positive orthant (counted by piecewise.count_space; method exact only)
    plane       3 points (a (3, n_in) list, or a .npy path relative to the spec): the slice through them
    method      "exact" (default) or "grid"
    resolution  grid points per axis (method grid; default 1024 in 2-D)
    linear      true: also count linear regions (method exact)
    init        {"scheme": "he"|"glorot"|"lecun", "bias_std": 0.1, "distribution": "normal"|"uniform"}
    train       {"dataset": "circle", "n": 500, "noise": 0.0, "data_seed": 0, "optimizer": "adam"|"sgd",
                 "lr": 0.01, "steps": 1000, "checkpoints": 4, "loss": "xent"|"mse"}
    max_cells   per-network cap of the exact engine (a cell over it fails; not part of the configuration)

Each result (one per network and checkpoint): ``widths``, ``depth``, ``width`` (the largest hidden width),
``neurons``, ``seed``, ``step``, ``regions``, ``linear_regions`` (when asked), ``seconds`` (the count's wall
time), and with training ``loss`` and ``accuracy``. Counts that report how they counted (boxes with infinite
sides, boxes of more than 6 inputs) add ``algorithm`` (the count's own words), ``exact`` (false when an LP
decision stayed ``undecided``) and ``undecided`` (that number of LP decisions; 0 for an exact count).

``sweep.png`` (:func:`piecewise.plot.sweep_figure`) shows regions (activation regions, and linear regions
when counted; mean over seeds and their min-max band) beside the bounds of :mod:`piecewise.bounds` for the
same architectures: against depth at a fixed neuron count N (one line per N) where the sweep has several
depths at one N, against N (one line per depth or, for a full grid of uniform widths, against depth with
one line per width), and against the training step (one line per architecture) for a training sweep.

Example::

    >>> import piecewise as pw
    >>> rows = pw.sweep.run_sweep({"n_in": 2, "widths": [[4], [4, 4]], "seeds": [0]}, progress=False)
    >>> [(r["widths"], r["regions"] > 0) for r in rows]
    [([4], True), ([4, 4], True)]
"""
from __future__ import annotations

import csv
import functools
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import PiecewiseError
from .files import atomic_open, make_folder, write_json
from .nets import mlp
from .regions.domain import Domain, box as _box

# =====================================================================================================
# The spec
# =====================================================================================================
_FIELDS = ("n_in", "widths", "activation", "n_out", "seeds", "box", "plane", "method", "resolution", "linear",
           "init", "train", "max_cells")
_INIT_FIELDS = ("scheme", "bias_std", "distribution")
_TRAIN_FIELDS = ("dataset", "n", "noise", "data_seed", "optimizer", "lr", "steps", "checkpoints", "loss")
# data set -> (input dimension, number of classes)
DATASETS = {"circle": (2, 2), "xor": (2, 2), "gauss": (2, 2), "spiral": (2, 2), "disk_annulus": (2, 2),
            "spirals": (2, 2), "interval_1d": (1, 2), "linked_tori": (3, 2), "digits": (64, 10)}
OPTIMIZERS = ("adam", "sgd")
_GRID_RES = {1: 1 << 16, 2: 1024, 3: 160, 4: 48}
RESULTS, CSV, FIGURE = "sweep.json", "sweep.csv", "sweep.png"


def _bad(name: str, msg: str):
    return PiecewiseError(f"sweep spec: {name}: {msg}")


def _int(raw, name, lo=None, default=None):
    v = raw.get(name.split(".")[-1], default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(name, f"expected an integer, got {v!r}")
    if lo is not None and v < lo:
        raise _bad(name, f"must be >= {lo}, got {v}")
    return v


def _num(raw, name, lo=None, default=None, strict=False):
    v = raw.get(name.split(".")[-1], default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise _bad(name, f"expected a finite number, got {v!r}")
    if lo is not None and (v <= lo if strict else v < lo):
        raise _bad(name, f"must be {'>' if strict else '>='} {lo}, got {v}")
    return float(v)


def _choice(raw, name, options, default):
    v = raw.get(name.split(".")[-1], default)
    if v not in options:
        raise _bad(name, f"expected one of {', '.join(map(repr, options))}, got {v!r}")
    return v


def _unknown(raw, known, where):
    for k in raw:
        if k not in known:
            raise _bad(f"{where}{k}", f"unknown field (known: {', '.join(known)})")


def load_spec(path: str) -> tuple[dict, str]:
    """Read a spec file: (the raw JSON object, the folder relative paths in it are taken from)."""
    if not os.path.exists(path):
        raise PiecewiseError(f"spec file not found: {path}")
    try:
        with open(path) as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise PiecewiseError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PiecewiseError(f"cannot read {path}: {e}") from None
    return raw, os.path.dirname(os.path.abspath(path))


def validate_spec(raw: dict, base_dir: str = ".") -> tuple[dict, Domain]:
    """Check a spec; returns (the normalised configuration, the domain: a Domain, or a
    :class:`~piecewise.regions.search.SpaceBox` for a box with infinite sides). Errors are one-line
    PiecewiseErrors naming the field."""
    from .activations import get_activation

    if not isinstance(raw, dict):
        raise PiecewiseError(f"sweep spec: expected a JSON object, got {type(raw).__name__}")
    _unknown(raw, _FIELDS, "")
    for req in ("n_in", "widths"):
        if req not in raw:
            raise _bad(req, "missing (required)")
    n_in = _int(raw, "n_in", 1)
    widths = raw["widths"]
    if not isinstance(widths, list) or not widths:
        raise _bad("widths", f"expected a non-empty list of hidden-width lists, e.g. [[8], [8, 8]], got {widths!r}")
    for w in widths:
        if (not isinstance(w, list) or not w
                or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in w)):
            raise _bad("widths", f"each entry must be a non-empty list of positive integers, got {w!r}")
    if len({tuple(w) for w in widths}) != len(widths):
        raise _bad("widths", "contains the same network twice")
    try:
        act = get_activation(raw.get("activation", "relu"))
    except PiecewiseError as e:
        raise _bad("activation", str(e)) from None
    if not act.piecewise_linear:
        raise _bad("activation", f"{act} is not piecewise linear: it has no regions to count")
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise _bad("seeds", f"expected a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise _bad("seeds", "contains a seed twice")
    method = _choice(raw, "method", ("exact", "grid"), "exact")
    linear = raw.get("linear", False)
    if not isinstance(linear, bool):
        raise _bad("linear", f"expected true or false, got {linear!r}")
    if linear and method != "exact":
        raise _bad("linear", "linear regions need method 'exact'")
    domain = _spec_domain(raw, n_in, base_dir)
    if method == "grid" and _unbounded(domain):
        raise _bad("method", "a grid cannot sample a box with infinite sides: use method 'exact'")
    if method == "grid":
        resolution = _int(raw, "resolution", 2, _GRID_RES.get(domain.dim, 24))
    elif "resolution" in raw:
        raise _bad("resolution", "only used by method 'grid'")
    init = raw.get("init", {})
    if not isinstance(init, dict):
        raise _bad("init", f"expected an object like {{\"scheme\": \"he\", \"bias_std\": 0.1}}, got {init!r}")
    _unknown(init, _INIT_FIELDS, "init.")
    init = {"scheme": _choice(init, "init.scheme", ("he", "glorot", "lecun"), "he"),
            "bias_std": _num(init, "init.bias_std", 0.0, 0.1),
            "distribution": _choice(init, "init.distribution", ("normal", "uniform"), "normal")}
    train = raw.get("train")
    n_out_default = 1
    if train is not None:
        if not isinstance(train, dict):
            raise _bad("train", f"expected an object like {{\"dataset\": \"circle\", \"steps\": 1000}}, got {train!r}")
        _unknown(train, _TRAIN_FIELDS, "train.")
        if "dataset" not in train:
            raise _bad("train.dataset", f"missing (one of {', '.join(DATASETS)})")
        ds = _choice(train, "train.dataset", tuple(DATASETS), None)
        if DATASETS[ds][0] != n_in:
            raise _bad("train.dataset", f"{ds} has {DATASETS[ds][0]} inputs but n_in = {n_in}")
        train = {"dataset": ds, "n": _int(train, "train.n", 2, 500), "noise": _num(train, "train.noise", 0.0, 0.0),
                 "data_seed": _int(train, "train.data_seed", 0, 0),
                 "optimizer": _choice(train, "train.optimizer", OPTIMIZERS, "adam"),
                 "lr": _num(train, "train.lr", 0.0, 1e-2, strict=True), "steps": _int(train, "train.steps", 1, 1000),
                 "checkpoints": _int(train, "train.checkpoints", 1, 4),
                 "loss": _choice(train, "train.loss", ("xent", "mse", None), None)}
        if train["steps"] % train["checkpoints"]:
            raise _bad("train.steps", f"must be a multiple of train.checkpoints ({train['checkpoints']}), "
                                      f"got {train['steps']}")
        n_out_default = DATASETS[ds][1]
    n_out = _int(raw, "n_out", 1, n_out_default)
    if train is not None and train["loss"] == "xent" and n_out < 2:
        raise _bad("train.loss", "xent needs n_out >= 2 (one output per class)")
    cfg = {"n_in": n_in, "n_out": n_out, "widths": [list(w) for w in widths], "activation": str(act),
           "seeds": list(seeds), "domain": domain.describe(), "method": method, "linear": linear, "init": init,
           "train": train}
    if method == "grid":
        cfg["resolution"] = resolution
    cfg["max_cells"] = _int(raw, "max_cells", 1, 2_000_000)
    return cfg, domain


def _spec_domain(raw, n_in, base_dir) -> Domain:
    from .regions import plane

    if "box" in raw and "plane" in raw:
        raise _bad("box", "give either box or plane, not both")
    if "plane" in raw:
        P = raw["plane"]
        if isinstance(P, str):
            path = P if os.path.isabs(P) else os.path.join(base_dir, P)
            if not os.path.exists(path):
                raise _bad("plane", f"file not found: {path}")
            try:
                P = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise _bad("plane", f"cannot read {path} as .npy: {e}") from None
        try:
            P = np.asarray(P, np.float64)
        except (TypeError, ValueError):
            raise _bad("plane", "expected 3 points, a (3, n_in) list of numbers") from None
        if P.shape != (3, n_in):
            raise _bad("plane", f"expected 3 points of dimension n_in = {n_in}, got shape {P.shape}")
        try:
            return plane(P)
        except PiecewiseError as e:
            raise _bad("plane", str(e)) from None
    b = raw.get("box", [-1.0, 1.0])
    if not isinstance(b, list) or len(b) != 2:
        raise _bad("box", f"expected [lo, hi] (numbers, or \"-inf\" / \"inf\"), got {b!r}")
    lo, hi = (_bound(x) for x in b)
    if not lo < hi:
        raise _bad("box", f"empty box: need lo < hi, got {b}")
    if np.isfinite(lo) and np.isfinite(hi):
        return _box(lo, hi, n_in)
    from .regions import space

    return space(lo, hi, n_in=n_in)


_INFINITE = {"-inf": -np.inf, "inf": np.inf, "+inf": np.inf}


def _bound(x) -> float:
    """One side of the spec's box: a number, or the string "-inf", "inf" ("+inf"); a float infinity (a Python
    spec, or Python's JSON reader's ``Infinity``) is taken as well, NaN is refused."""
    if isinstance(x, str) and x.strip().lower() in _INFINITE:
        return float(_INFINITE[x.strip().lower()])
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:  # x != x: NaN
        raise _bad("box", f"each side must be a number or \"-inf\" / \"inf\" (JSON has no infinity), got {x!r}")
    try:
        return float(x)
    except OverflowError:
        raise _bad("box", f"{x} is beyond float64; write \"-inf\" / \"inf\" for an infinite side") from None


def _unbounded(domain) -> bool:
    """Whether ``domain`` has infinite sides (a :class:`~piecewise.regions.search.SpaceBox` that is not bounded)."""
    return getattr(domain, "kind", None) == "space" and not domain.bounded


def _identity(cfg: dict) -> dict:
    """The part of a configuration that must match to resume (widths and seeds may grow; max_cells may change)."""
    return {k: v for k, v in cfg.items() if k not in ("widths", "seeds", "max_cells")}


# =====================================================================================================
# One cell: a network (widths, seed), counted at init or at every training checkpoint (runs on a worker)
# =====================================================================================================
@functools.lru_cache(maxsize=4)
def _dataset(name: str, n: int, noise: float, seed: int):
    from . import datasets

    if name in ("circle", "xor", "gauss", "spiral"):
        return datasets.playground(name, n, noise=noise, seed=seed)
    if name == "digits":
        return datasets.digits()
    if name == "spirals":
        return datasets.spirals(n, noise=noise, seed=seed)
    return getattr(datasets, name)(n, seed=seed)


def _init_params(cfg: dict, widths: tuple, seed: int):
    """The initial parameters of one network, as NumPy arrays (the values of ``net.init``)."""
    import jax

    net = mlp(cfg["n_in"], widths, cfg["n_out"], cfg["activation"])
    ini = cfg["init"]
    params = net.init(key=jax.random.key(seed), scheme=ini["scheme"], distribution=ini["distribution"],
                      bias_std=ini["bias_std"])
    return tuple((np.asarray(W), np.asarray(b)) for W, b in params)


def _count_cell(cfg: dict, domain: Domain, widths: tuple, seed: int, params=None, threads=None) -> list[dict]:
    """Rows of one network: one per checkpoint (just step 0 without training). ``params``: its initial
    parameters (default: made here with :func:`_init_params`); ``threads``: the exact engine's."""
    from .regions import enumerate_cells  # here, not at import: ``piecewise --help`` stays quick

    net = mlp(cfg["n_in"], widths, cfg["n_out"], cfg["activation"])
    if params is None:
        params = _init_params(cfg, widths, seed)
    tr = cfg["train"]
    if tr is None:
        records, X, y = [{"step": 0, "params": params, "loss": None}], None, None
    else:
        import optax

        from .train import fit

        X, y = _dataset(tr["dataset"], tr["n"], tr["noise"], tr["data_seed"])
        opt = {"adam": optax.adam, "sgd": optax.sgd}[tr["optimizer"]](tr["lr"])
        records = fit(net, params, X, y, opt, steps=tr["steps"], checkpoints=tr["checkpoints"], loss=tr["loss"])
    rows = []
    for rec in records:
        t = time.perf_counter()
        row = {"widths": list(widths), "depth": len(widths), "width": max(widths), "neurons": int(sum(widths)),
               "seed": seed, "step": rec["step"]}
        if cfg["method"] == "exact":
            cx = enumerate_cells(net, rec["params"], domain, progress=False, max_cells=cfg["max_cells"],
                                 threads=threads)
            row["regions"] = int(cx.regions)
            if cfg["linear"]:
                row["linear_regions"] = int(cx.linear_regions()[0])
            if hasattr(cx, "algorithm"):  # the whole-space and high-dimensional counts say how they counted
                row["algorithm"] = str(cx.algorithm)
            if hasattr(cx, "undecided"):
                row["exact"], row["undecided"] = bool(cx.exact), int(cx.undecided)
        else:
            from .regions import count_grid

            row["regions"] = int(count_grid(net, rec["params"], domain, cfg["resolution"], progress=False).regions)
        row["seconds"] = round(time.perf_counter() - t, 4)
        if tr is not None:
            from .train import accuracy

            row["loss"] = float(rec["loss"])
            row["accuracy"] = float(accuracy(net, rec["params"], X, y))
        rows.append(row)
    return rows


def _spec_cell(item, shared):
    """The task of one cell: ``item = (widths, seed, initial params)``, ``shared = (cfg, domain, threads)``
    (threads: the exact engine's; 1 on Dask, where a task has one core; None: its default)."""
    from .distributed import reuse_freed_memory

    cfg, domain, threads = shared
    widths, seed, params = item
    with reuse_freed_memory():
        return _count_cell(cfg, domain, tuple(widths), seed, params, threads)


def _prepare_cell(cfg, item):
    """Runs in the driver: the initial parameters are made here, where JAX compiles the init once per
    shape, not once per shape on every worker (seconds each)."""
    widths, seed = item
    return widths, seed, _init_params(cfg, widths, seed)


def _cell_label(item) -> str:
    return f"cell widths={list(item[0])} seed={item[1]}"


def _sort_key(r):
    return (r["depth"], r["width"], r["widths"], r["seed"], r["step"])


# =====================================================================================================
# Running a spec
# =====================================================================================================
def run_sweep(spec, out: str | None = None, *, workers: int | None = None, scheduler=None, resume: bool = False,
              progress: bool | None = None, figure: bool = True) -> list[dict]:
    """Run a sweep spec (a dict, or the path of a JSON file); returns the results, sorted by depth, width,
    widths, seed, step.

    Args:
      out: results folder (created, and checked writable before any work): ``sweep.json`` and ``sweep.csv``
        rewritten atomically after every finished cell, and the figure ``sweep.png``. None: nothing written.
      workers: a Dask LocalCluster with this many worker processes. scheduler: an existing Dask cluster
        (``"tcp://HOST:PORT"`` or a ``Client``). Neither: in-process.
      resume: continue ``out/sweep.json`` (same configuration; new widths or seeds are fine), computing
        only the missing cells. Without it an existing ``out/sweep.json`` is an error.
      progress: a tqdm bar over cells (None: on when stderr is a terminal).
    Raises:
      PiecewiseError: a bad spec or options, or an ``out`` that cannot be created or written (before any
      work); :class:`~piecewise.distributed.TasksFailed` (a PiecewiseError) when cells failed -- after the
      other cells finished and were written, so ``resume=True`` completes it;
      :class:`~piecewise.distributed.TasksCrashed` (not a PiecewiseError) the same when a cell hit a bug.
    """
    from .distributed import check_mode, run_tasks

    if isinstance(spec, (str, os.PathLike)):
        raw, base = load_spec(os.fspath(spec))
    else:
        raw, base = spec, "."
    cfg, domain = validate_spec(raw, base)
    check_mode(workers, scheduler)
    done: dict[tuple, list[dict]] = {}
    results_path = None
    if out is not None:
        make_folder(out, "--out folder")  # before any work: a one-line error for a file, /proc/x, no permission
        results_path = os.path.join(out, RESULTS)
        if os.path.exists(results_path):
            if not resume:
                raise PiecewiseError(f"{results_path} exists: pass --resume to continue it, or choose another --out")
            done = _load_done(results_path, cfg)
    cells = [(tuple(w), s) for w in cfg["widths"] for s in cfg["seeds"]]
    todo = [c for c in cells if c not in done]
    state = {"last_fig": time.monotonic()}

    def finished(i, rows):
        done[todo[i]] = rows
        if out is not None:
            _write_results(out, cfg, done)
            if figure and time.monotonic() - state["last_fig"] > 10.0:  # the figure at most every 10 s
                _write_figure(out, cfg, domain, done)
                state["last_fig"] = time.monotonic()

    hint = f"; finished cells are saved in {results_path}: rerun with --resume to complete it" if out else ""
    try:
        on_dask = workers is not None or scheduler is not None
        run_tasks(_spec_cell, todo, shared=(cfg, domain, 1 if on_dask else None), workers=workers, scheduler=scheduler, on_result=finished,
                  label=_cell_label, progress=progress, desc="sweep", unit="net", hint=hint,
                  prepare=functools.partial(_prepare_cell, cfg))
    finally:
        if out is not None and figure and done:
            _write_figure(out, cfg, domain, done)
    return sorted((r for c in cells for r in done[c]), key=_sort_key)


def _load_done(path: str, cfg: dict) -> dict:
    try:
        with open(path) as f:
            saved = json.load(f)
        old, results = saved["config"], saved["results"]
    except (OSError, ValueError, KeyError, TypeError):
        raise PiecewiseError(f"{path} is not a sweep results file; choose another --out") from None
    if _identity(old) != _identity(json.loads(json.dumps(cfg))):
        diff = sorted(k for k in set(_identity(old)) | set(_identity(cfg)) if old.get(k) != cfg.get(k))
        raise PiecewiseError(f"{path} holds a sweep with another configuration (differs in: {', '.join(diff)}); "
                             f"use another --out")
    done: dict[tuple, list[dict]] = {}
    for r in results:
        done.setdefault((tuple(r["widths"]), r["seed"]), []).append(r)
    return done


def _write_results(out: str, cfg: dict, done: dict) -> None:
    rows = sorted((r for rows in done.values() for r in rows), key=_sort_key)
    write_json(os.path.join(out, RESULTS), {"config": cfg, "results": rows})
    to_csv(rows, os.path.join(out, CSV))


def _write_figure(out: str, cfg: dict, domain, done: dict) -> str:
    """Write ``out/sweep.png`` (:func:`piecewise.plot.sweep_figure` of the finished rows); returns its path."""
    from .plot import _plt, sweep_figure

    rows = [r for rows in done.values() for r in rows]
    fig = sweep_figure(rows, dim=domain.dim, activation=cfg["activation"], method=cfg["method"],
                       where=_where(domain))
    path = os.path.join(out, FIGURE)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    _plt().close(fig)
    return path


def _where(domain) -> str:
    """The domain in words for a title: ``[-1, 1]^2``, ``R^3``, ``[0, inf]^4``, ``a plane slice``."""
    d = domain.describe()
    if d["kind"] not in ("box", "whole space"):
        return f"a {d['kind']} slice" if d["kind"] == "plane" else f"a {d['kind']}"
    if d["kind"] == "whole space":
        return f"R^{domain.n_in}"

    def num(v):
        return v if isinstance(v, str) else f"{v:g}"

    if len(set(map(str, d["lo"]))) == 1 and len(set(map(str, d["hi"]))) == 1:
        return f"[{num(d['lo'][0])}, {num(d['hi'][0])}]^{domain.n_in}"
    return "a box"


# =====================================================================================================
# The command line: piecewise sweep SPEC.json [--out DIR] [--workers N | --scheduler ADDRESS] [--resume]
# =====================================================================================================
def add_sweep_parser(subparsers) -> None:
    """Add the ``sweep`` subcommand to an argparse subparsers object (sets ``func=sweep_command``)."""
    s = subparsers.add_parser("sweep", help="depth x width x seed sweep of region counts from a JSON spec")
    s.add_argument("spec", metavar="SPEC.json", help="the sweep spec (see docs/scaling.md)")
    s.add_argument("--out", default=None, help="results folder (default results/<SPEC name>)")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument("--workers", type=int, default=None, metavar="N",
                      help="run on a Dask LocalCluster with N worker processes")
    mode.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="run on an existing Dask cluster, e.g. tcp://127.0.0.1:8786")
    s.add_argument("--resume", action="store_true", help="continue DIR/sweep.json, computing only missing cells")
    s.set_defaults(func=sweep_command)


def sweep_command(args) -> int:
    """Run ``piecewise sweep``. Returns 0, or 1 when cells failed (one line on stderr naming the first;
    finished cells are kept). Bad input raises PiecewiseError (the CLI prints it and exits 2); a cell that
    crashed (a bug) raises :class:`~piecewise.distributed.TasksCrashed`, whose traceback the CLI prints
    (exit 1), finished cells kept as well."""
    import sys

    from .distributed import TasksFailed

    out = args.out or os.path.join("results", os.path.splitext(os.path.basename(args.spec))[0])
    try:
        rows = run_sweep(args.spec, out, workers=args.workers, scheduler=args.scheduler, resume=args.resume)
    except TasksFailed as e:
        print(f"piecewise: error: {e}", file=sys.stderr)
        return 1
    lin = bool(rows) and "linear_regions" in rows[0]
    lines = [f"{'widths':>18} {'step':>6} {'seeds':>5} {'regions (mean +- std)':>22}"
             + (f" {'linear (mean)':>13}" if lin else "")]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((tuple(r["widths"]), r["step"]), []).append(r)
    for (w, step), g in groups.items():
        reg = [r["regions"] for r in g]
        text = f"{'x'.join(map(str, w)):>18} {step:>6} {len(g):>5} {np.mean(reg):>13.1f} +- {np.std(reg):>6.1f}"
        if lin:
            text += f" {np.mean([r['linear_regions'] for r in g]):>13.1f}"
        lines.append(text)
    lines.append(f"results: {os.path.join(out, RESULTS)}, {os.path.join(out, CSV)}, {os.path.join(out, FIGURE)}")
    print("\n".join(lines))
    return 0


# =====================================================================================================
# The Python-only sweep over uniform widths (kept for existing code)
# =====================================================================================================
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
    import jax
    import optax

    from .regions import enumerate_cells
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


def _one_task(job, _shared):
    return _one(job)


def sweep(n_in: int, depths, widths, seeds=(0,), *, n_out: int = 1, activation: str = "relu",
          bias_std: float = 0.1, scheme: str = "he", domain: Domain | None = None,
          training: Training | None = None, out: str | None = None, executor=None,
          workers: int | None = None, scheduler=None, progress: bool | None = None) -> list[dict]:
    """Exact activation-region counts for every ``(depth, width, seed)``: nets ``n_in -> width x depth ->
    n_out``, ``scheme`` init with biases N(0, bias_std^2), counted on ``domain`` (default [-1, 1]^2; for
    higher input dimensions pass a :func:`~piecewise.regions.plane` through data points).

    ``training``: also train and count at its checkpoints. ``out``: a JSON file, written atomically after
    every network and resumed from. ``executor``: anything with a ``map(fn, jobs)`` returning results in
    order (``concurrent.futures.ProcessPoolExecutor``); ``workers`` / ``scheduler``: run on Dask (see
    :mod:`piecewise.distributed`); default in-process. Returns the rows, sorted.
    """
    from tqdm.auto import tqdm

    from .distributed import check_mode, run_tasks

    domain = domain if domain is not None else _box(-1.0, 1.0, n_in)
    if domain.n_in != n_in:
        raise PiecewiseError(f"the domain lives in R^{domain.n_in} but n_in = {n_in}")
    check_mode(workers, scheduler)
    if executor is not None and (workers is not None or scheduler is not None):
        raise PiecewiseError("give either an executor or workers/scheduler, not both")
    cfg = _config(n_in, n_out, activation, bias_std, scheme, domain, training)
    done: dict[tuple, list[dict]] = {}
    if out is not None:  # before any work: the file's folder must be writable, the file not a folder
        if os.path.isdir(out):
            raise PiecewiseError(f"out: {out} is a folder; sweep() writes one JSON file, e.g. {out}/sweep.json")
        make_folder(os.path.dirname(os.path.abspath(out)), "folder of out")
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

    def finished(i, rows):
        done[todo[i]] = rows
        if out is not None:
            _write(out, cfg, done)

    if workers is not None or scheduler is not None:
        run_tasks(_one_task, jobs, workers=workers, scheduler=scheduler, on_result=finished,
                  label=lambda j: f"cell depth={j[0][0]} width={j[0][1]} seed={j[0][2]}", progress=progress,
                  desc="sweep", unit="net")
    else:
        results = map(_one, jobs) if executor is None else executor.map(_one, jobs)
        bar = tqdm(total=len(todo), desc="sweep", unit="net", leave=False,
                   disable=(not progress) if progress is not None else None)
        for i, rows in enumerate(results):
            finished(i, rows)
            bar.update(1)
        bar.close()
    return sorted((r for k in keys for r in done[k]), key=lambda r: (r["depth"], r["width"], r["seed"], r["step"]))


def _write(path, cfg, done):
    rows = [r for k in sorted(done) for r in done[k]]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json(path, {"config": cfg, "rows": rows})


def to_csv(rows: list[dict], path: str) -> str:
    """Write sweep rows as CSV, atomically (columns: the union of the rows' keys; a list such as ``widths``
    is written as ``8x8``)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows({k: ("x".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()} for r in rows)
    return path


def summarize(rows: list[dict], by=("depth", "width", "step")) -> list[dict]:
    """Mean and standard deviation of ``regions`` over seeds, grouped by ``by``."""
    groups: dict[tuple, list[int]] = {}
    for r in rows:
        groups.setdefault(tuple(tuple(r[b]) if isinstance(r[b], list) else r[b] for b in by), []).append(r["regions"])
    return [{**dict(zip(by, k)), "mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
            for k, v in sorted(groups.items())]

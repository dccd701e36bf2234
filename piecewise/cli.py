"""The ``piecewise`` command (also ``python -m piecewise``).

Subcommands: ``count`` (regions of a network given as .npz weights or an ONNX model, optionally in tiles
on a Dask cluster), ``homeo`` (is it a homeomorphism?), ``plane`` (write a ``--plane`` file: a square slice
around a point), ``run`` (a study from the seed articles), ``sweep`` (depth x width x seed sweeps on Dask),
``demo`` (the main job on an embedded default), ``explore``, ``info``. Bad input exits with status 2 and one
line on stderr naming the problem. Progress bars go to stderr whatever ``--json`` says (on when stderr is a
terminal, as tqdm decides; ``--no-progress`` turns them off), so stdout holds only the result.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import numpy as np

from .errors import PiecewiseError


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # values such as -1e6 or -.5 are numbers, not options (argparse's own pattern misses exponents)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf$")

    def error(self, message):  # one line, exit 2 (argparse's default prints the usage too)
        print(f"piecewise: error: {message}", file=sys.stderr)
        sys.exit(2)


def _load_plane(path: str, n_in: int):
    from .regions import plane

    if not os.path.exists(path):
        raise PiecewiseError(f"plane file not found: {path}")
    try:
        P = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PiecewiseError(f"cannot read {path} as .npy: {e}") from None
    if not isinstance(P, np.ndarray) or P.dtype.kind not in "fiu":
        raise PiecewiseError(f"{path}: expected a numeric (3, n_in) array")
    if P.shape != (3, n_in):
        raise PiecewiseError(f"{path}: plane must have shape (3, {n_in}) for this network, got {P.shape}")
    return plane(P)


def _domain(args, n_in: int, infinite: bool = False):
    from .regions import box

    if args.plane is not None:
        return _load_plane(args.plane, n_in)
    lo, hi = args.box if args.box is not None else (-1.0, 1.0)
    if np.isnan(lo) or np.isnan(hi):
        raise PiecewiseError(f"box bounds must be numbers, got {lo} {hi}")
    if not lo < hi:
        raise PiecewiseError(f"empty box: need LO < HI, got {lo:g} {hi:g}")
    if not (np.isfinite(lo) and np.isfinite(hi)):  # a side at infinity: the whole input space (or a half of it)
        from .regions.search import space

        if not infinite:
            raise PiecewiseError(f"box bounds must be finite here, got {lo} {hi} (count takes --box -inf inf)")
        return space(lo, hi, n_in)
    return box(lo, hi, n_in)


_DEFAULT_RES = {1: 1 << 16, 2: 1024, 3: 160, 4: 48}
POINT_BUDGET = 1 << 22  # default grid size beyond 4-D: about 4 million points


def default_resolution(dim: int) -> int:
    """Grid points per axis when --resolution is not given: fixed up to 4-D, then from a point budget."""
    return _DEFAULT_RES.get(dim, max(2, int(POINT_BUDGET ** (1.0 / dim) + 1e-9)))


def _progress(args):
    """The engines' ``progress`` argument: None (a bar on stderr when it is a terminal, for longer work) unless
    ``--no-progress`` was given (False). ``--json`` does not change it: the bar is on stderr, the JSON on stdout."""
    return False if getattr(args, "no_progress", False) else None


GRID_MAX_POINTS = 2**31 - 1  # the grid's own limit (piecewise.regions.grid)
POLYTOPE_MAX_DIM = 6  # boxes of more inputs go to the region-graph search (piecewise.regions.search)


def _out_of_reach(args, net, params, domain, method) -> str | None:
    """Why a count of this box cannot finish, for networks with many inputs (None when it can be tried): a grid
    past its point limit, or an image model's box beyond the polytope engine (the region-graph search runs an
    LP per unit and region: about 1 region/s on a 36-input CNN, none in a minute on a 3072-input one). The
    message leads to a 2-D slice (``--plane``, made by ``piecewise plane``)."""
    if domain.kind not in ("box", "space") or domain.dim <= POLYTOPE_MAX_DIM:
        return None
    n, d = net.n_in, domain.dim
    shape = tuple(net.input_shape) if params is None else (n,)
    image = len(shape) >= 2
    res = args.resolution if args.resolution is not None else default_resolution(d)
    grid_why = f"a grid of {res} points per axis has {res}^{d} points (the limit is 2^31 - 1)"
    exact_why = f"an exact count of a box in R^{n} (a region-graph search, one LP per unit and region) is out of reach"
    if method == "grid" and res ** d > GRID_MAX_POINTS:
        why = grid_why + (f" and {exact_why}" if image and args.method is None else "")
    elif method == "exact" and image:
        why = exact_why + " for an image model"
    else:
        return None
    what = f"an image of shape {shape}" if image else "inputs"
    return (f"{os.path.basename(args.weights)} has {n:,} inputs ({what}): {why}; count a 2-D slice instead with "
            f"--plane P.npy (3 points, shape (3, {n}), inputs flattened in C order), made for example by: "
            f"piecewise plane --weights {args.weights} --random 0 --out P.npy")


def _grid_hint(domain) -> str:
    """What to do when a grid count is far from converged, for this domain."""
    if domain.kind == "plane" or domain.dim <= 4:
        return "raise --resolution, or count exactly (--method exact)"
    return ("raise --resolution, or count exactly on a 2-D slice (--plane P.npy; piecewise plane writes one "
            "around a point)")


def _check_output(path: str, what: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PiecewiseError(f"{what}: folder {folder} does not exist")


def _count(args) -> int:
    from .io import load_network
    from .regions import count_grid

    net, params = load_network(args.weights, args.activation)
    if params is not None and not net.activation.piecewise_linear:
        raise PiecewiseError(f"activation {net.activation} is not piecewise linear: it has no activation regions")
    domain = _domain(args, net.n_in, infinite=True)
    unbounded = domain.kind == "space"
    method = args.method or ("exact" if domain.dim <= 4 or unbounded else "grid")
    if unbounded and (method != "exact" or args.plot is not None or args.tiles is not None):
        raise PiecewiseError("a box with infinite sides is counted by --method exact only (no --plot, no --tiles)")
    if args.linear and method != "exact":
        raise PiecewiseError("--linear needs exact cells: use --method exact")
    if args.plot is not None and domain.dim != 2:
        raise PiecewiseError(f"--plot draws a 2D region map; this domain is {domain.dim}-dimensional")
    if args.resolution is not None and method == "exact":
        raise PiecewiseError("--resolution sets the grid method's points per axis; add --method grid")
    if args.resolution is not None and args.resolution < 2:
        raise PiecewiseError(f"--resolution must be >= 2, got {args.resolution}")
    reason = _out_of_reach(args, net, params, domain, method)
    if reason is not None:
        raise PiecewiseError(reason)
    if args.plot is not None:
        _check_output(args.plot, "--plot")
    if args.cells is not None:
        if method != "exact":
            raise PiecewiseError("--cells writes the exact cells: use it with --method exact")
        if args.tiles is not None:
            raise PiecewiseError("--cells is not written by a tiled count (--tiles): drop one of them")
        if not args.cells.endswith(".npz"):
            raise PiecewiseError(f"--cells: the file must end in .npz, got {args.cells!r}")
        _check_output(args.cells, "--cells")
    budget = None
    if args.memory_budget is not None:
        from .regions.graph_engine import parse_size

        if method != "exact":
            raise PiecewiseError("--memory-budget bounds the exact engine: use it with --method exact")
        budget = parse_size(args.memory_budget)
    if (args.workers is not None or args.scheduler is not None) and args.tiles is None:
        raise PiecewiseError("--workers and --scheduler run tiles: add --tiles K")
    if args.tiles is not None and (method != "exact" or args.plot is not None):
        raise PiecewiseError("--tiles splits an exact count: use it with --method exact and without --plot")
    # the grid path validates magnitudes itself (piecewise.validate); the exact engine refuses what overflows
    network = _describe(net, params)
    if params is None and args.tiles is not None:  # tiles: the staged engine takes the graph's stages
        net = net.to_staged()
    if args.tiles is not None:
        from .regions.tiles import tiled_count

        out = tiled_count(net, params, domain, args.tiles, linear=args.linear, workers=args.workers,
                          scheduler=args.scheduler, progress=_progress(args))
        out["network"] = network
        text = [f"activation regions (exact, {out['tiles']} tiles): {out['regions']}"]
        if args.linear:
            text.append(f"linear regions (exact): {out['linear_regions']}")
        text.append(f"seconds: {out['seconds']:.3f}")
    elif method == "exact":
        from .regions import enumerate_cells

        keep = bool(args.linear or args.plot)  # a count that needs only numbers keeps no cells
        cx = enumerate_cells(net, params, domain, progress=_progress(args), keep_cells=keep,
                             memory_budget=budget, measure=True if args.cells else None)
        out = cx.to_json(linear=args.linear)
        if args.cells:
            out["cells"] = cx.save_cells(args.cells)
        out["network"] = network
        if args.plot:
            from . import plot

            out["plot"] = plot.save(plot.cell_map(cx), args.plot)  # dim checked above
        text = [f"activation regions (exact): {cx.regions}"]
        if args.linear:
            text.append(f"linear regions (exact): {out['linear_regions']}")
        text.append(f"seconds: {cx.seconds:.3f}")
        if args.cells:
            text.append(f"cells: {out['cells']}")
    else:
        res = args.resolution if args.resolution is not None else default_resolution(domain.dim)
        g = count_grid(net, params, domain, res, dtype=np.dtype(args.dtype), return_ids=args.plot is not None,
                       progress=_progress(args))
        out = g.to_json()
        out.update({"network": network, "dtype": args.dtype})
        if args.plot:
            from . import plot

            fig = plot.region_map(g.ids, domain, regions=g.regions,
                                  title=f"activation regions, grid {res}x{res}: {g.regions} (lower bound)")
            out["plot"] = plot.save(fig, args.plot)
        text = [f"activation regions (grid {'x'.join(map(str, g.resolution))}, a lower bound): {g.regions}",
                f"points: {g.n_points}, on boundaries: {g.n_boundary}, seconds: {g.seconds:.3f}"]
        if g.regions > 0.05 * g.n_points:
            out["converged"] = False
            print(f"piecewise: warning: {g.regions} regions among {g.n_points} grid points: far from converged (a "
                  f"lower bound); {_grid_hint(domain)}", file=sys.stderr)
    if args.plot:
        text.append(f"figure: {out['plot']}")
    print(json.dumps(out) if args.json else "\n".join(text))
    return 0


def _describe(net, params) -> dict:
    """The network's description in the JSON output: an MLP's widths and activation, a graph's stages (read
    from its nodes, nothing composed)."""
    from .staged import StagedNet

    if isinstance(net, StagedNet):
        return {"kind": "graph", "n_in": net.n_in, "n_out": net.n_out, "stages": list(net.widths),
                "activations": [str(st.activation) for st in net.stages]}
    if params is None:
        from .regions.graph_engine import Program

        prog = Program(net)
        return {"kind": "graph", "n_in": net.n_in, "n_out": int(net.nodes[net.output].size),
                "stages": [st.width for st in prog.stages], "activations": [str(st.act) for st in prog.stages]}
    return {"n_in": net.n_in, "widths": list(net.widths), "n_out": net.n_out, "activation": str(net.activation)}


def _homeo(args) -> int:
    """``piecewise homeo``: without --box the question is asked on the whole input space (a box shown to hold
    every vertex of the cell complex, for PL nets); with --box on that box, for PL and smooth nets alike. The
    first printed line (and the JSON's ``answer``) says what was proven."""
    from .invertibility import homeomorphism
    from .invertibility.layers import require_square_map
    from .io import load_network

    net, params = load_network(args.weights, args.activation)
    if params is None:
        net = net.to_staged()
    require_square_map(net, "homeo (a map R^n -> R^n)")
    if args.box is not None:
        domain = _domain(args, net.n_in)
        if params is None or net.activation.piecewise_linear:
            from .validate import check_magnitudes

            check_magnitudes(net, params, domain)
    else:
        domain = "whole"
    res = homeomorphism(net, params, domain, progress=_progress(args))
    out = res.to_json()
    out["network"] = _describe(net, params)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"homeomorphism: {out['answer']}")
        print(f"certificate: {out['certificate']}")
        if out.get("coherently_oriented") is not None:
            print(f"coherently oriented: {out['coherently_oriented']}")
        if out.get("witness"):
            print(f"witness: {json.dumps(out['witness'])}")
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick)
    return 0


def _info(args) -> int:
    """``piecewise info [--json]``: versions, the exact kernel (compiled or NumPy, and why), threads, JAX's
    devices (:mod:`piecewise.info`; the only command here that imports JAX without needing it for the work)."""
    from . import info

    data = info.collect()
    print(json.dumps(data) if args.json else info.text(data))
    return 0


def _explore(args) -> int:
    """``piecewise explore``: one self-contained HTML page of the network's exact cells on a 2-D domain."""
    from .explore import build_page
    from .io import load_network

    net, params = load_network(args.weights, args.activation)
    if params is not None and not net.activation.piecewise_linear:
        raise PiecewiseError(f"activation {net.activation} is not piecewise linear: it has no activation regions")
    domain = _domain(args, net.n_in)
    out = build_page(net, params, domain, args.out, threshold=args.threshold, progress=_progress(args))
    print(f"activation regions (exact): {out['regions']}")
    print(f"page: {out['path']} ({out['bytes'] / 1e6:.2f} MB, {out['views']} views, {out['seconds']:.1f} s)")
    return 0


def _plane(args) -> int:
    """``piecewise plane``: write the three points (3, n0) of the square slice of half-side ``--radius`` around
    a centre (``--around X.npy``, ``--random SEED``: uniform in [0, 1]^n0, or the origin) in two random
    orthonormal directions (:func:`piecewise.planes.plane_around`), for ``count``/``explore --plane``."""
    from .io import load_network
    from .planes import plane_around

    net, _ = load_network(args.weights, args.activation)
    n = net.n_in
    if not args.out.endswith(".npy"):
        raise PiecewiseError(f"--out: the file must end in .npy, got {args.out!r}")
    _check_output(args.out, "--out")
    if args.around is not None:
        if not os.path.exists(args.around):
            raise PiecewiseError(f"centre file not found: {args.around}")
        try:
            x = np.load(args.around, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise PiecewiseError(f"cannot read {args.around} as .npy: {e}") from None
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
            raise PiecewiseError(f"{args.around}: expected a numeric array of {n} entries")
        if x.size != n:
            raise PiecewiseError(f"{args.around}: the centre has {x.size} entries (shape {x.shape}), the network "
                                 f"has {n} inputs")
        centre = args.around
    elif args.random is not None:
        x = np.random.default_rng(args.random).uniform(0.0, 1.0, n)
        centre = f"random (uniform in [0, 1]^{n}, seed {args.random})"
    else:
        x = np.zeros(n)
        centre = "the origin"
    seed = args.seed if args.seed is not None else (args.random if args.random is not None else 0)
    P = plane_around(x, args.radius, seed)
    np.save(args.out, P)
    out = {"path": os.path.abspath(args.out), "shape": list(P.shape), "centre": centre, "radius": args.radius,
           "seed": seed}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"plane: {out['path']} {P.shape}, the square of half-side {args.radius:g} around {centre} in two "
              f"random orthonormal directions (seed {seed})")
        print(f"count it: piecewise count --weights {args.weights} --plane {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="piecewise", description="Numerical analysis of piecewise-linear neural networks.")
    p.add_argument("--version", action="version", version=f"piecewise {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser("count", help="count the activation regions of a network (.npz weights)")
    c.add_argument("--weights", required=True, help="weights file with W0, b0, ..., WL, bL")
    c.add_argument("--activation", default=None,
                   help="hidden activation NAME[:PARAM]: relu (default), leaky_relu:SLOPE, abs, hardtanh, maxout")
    where = c.add_mutually_exclusive_group()
    where.add_argument("--box", nargs=2, type=float, metavar=("LO", "HI"),
                       help="the cube [LO, HI]^n0 (default -1 1); a side may be infinite: -inf inf is the whole "
                            "input space (exact method; the JSON's algorithm says how it was counted)")
    where.add_argument("--plane", metavar="P.npy", help="(3, n0) points: the slice p0 + s(p1-p0) + t(p2-p0)")
    c.add_argument("--method", choices=("exact", "grid"), default=None,
                   help="exact (default up to 4-D domains) or grid (sampled lower bound)")
    c.add_argument("--resolution", type=int, default=None, help="grid points per axis (grid method)")
    c.add_argument("--linear", action="store_true", help="also count linear regions (exact method)")
    c.add_argument("--json", action="store_true", help="print one JSON object (progress stays on stderr)")
    c.add_argument("--no-progress", action="store_true",
                   help="no progress bar (by default one is drawn on stderr when it is a terminal, --json or not)")
    c.add_argument("--plot", metavar="OUT.png", default=None, help="draw the region map (2D domains)")
    c.add_argument("--cells", metavar="OUT.npz", default=None,
                   help="write the exact cells: points (one inside each cell), measure, patterns (exact method)")
    c.add_argument("--memory-budget", metavar="GB", default=None,
                   help="bound the exact engine's cells in flight (a number of GB, or 512MB, 3GiB; default 2 GiB)")
    c.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="grid arithmetic (default float32, as in the library; points near boundaries are "
                        "re-checked in float64)")
    from .regions.tiles import add_tiles_arguments

    add_tiles_arguments(c)
    c.set_defaults(func=_count)

    h = sub.add_parser("homeo", help="is the network map R^n -> R^n a homeomorphism (on the box)?")
    h.add_argument("--weights", required=True, help="weights file with W0, b0, ..., WL, bL")
    h.add_argument("--activation", default=None, help="hidden activation NAME[:PARAM] (default relu)")
    h.add_argument("--box", nargs=2, type=float, metavar=("LO", "HI"),
                   help="decide on the cube [LO, HI]^n (default: the whole input space)")
    h.add_argument("--json", action="store_true", help="print one JSON object (progress stays on stderr)")
    h.add_argument("--no-progress", action="store_true",
                   help="no progress bar (by default one is drawn on stderr when it is a terminal, --json or not)")
    h.set_defaults(func=_homeo, plane=None)

    from .studies.cli import add_run_parser
    from .sweep import add_sweep_parser

    add_run_parser(sub)
    add_sweep_parser(sub)

    d = sub.add_parser("demo", help="the main job on an embedded default network family")
    d.add_argument("--out", default="results/demo", help="results folder (default results/demo)")
    d.add_argument("--quick", action="store_true", help="a smaller run (for tests)")
    d.set_defaults(func=_demo)

    e = sub.add_parser("explore", help="write a self-contained HTML page exploring the cells of a 2-D slice")
    e.add_argument("--weights", required=True, help="weights file (.npz with W0, b0, ..., WL, bL, or .onnx)")
    e.add_argument("--activation", default=None, help="hidden activation NAME[:PARAM] (default relu)")
    where = e.add_mutually_exclusive_group()
    where.add_argument("--box", nargs=2, type=float, metavar=("LO", "HI"),
                       help="the square [LO, HI]^2 of a 2-input network (default -1 1)")
    where.add_argument("--plane", metavar="P.npy", help="(3, n0) points: the slice p0 + s(p1-p0) + t(p2-p0)")
    e.add_argument("--out", default="explore.html", help="the page (default explore.html)")
    e.add_argument("--threshold", type=float, default=None,
                   help="one-output nets: the decision boundary's level (default 0.5, piecewise.decision)")
    e.add_argument("--no-progress", action="store_true",
                   help="no progress bar (by default one is drawn on stderr when it is a terminal, --json or not)")
    e.set_defaults(func=_explore)

    pl = sub.add_parser("plane", help="write a --plane file: the square slice of half-side R around a point")
    pl.add_argument("--weights", required=True, help="the network (.npz or .onnx): its number of inputs")
    pl.add_argument("--activation", default=None,
                    help="hidden activation NAME[:PARAM], as for count (to read .npz weights)")
    centre = pl.add_mutually_exclusive_group()
    centre.add_argument("--around", metavar="X.npy",
                        help="the centre: an input (any shape with n0 entries, flattened in C order)")
    centre.add_argument("--random", metavar="SEED", type=int, default=None,
                        help="the centre drawn uniformly from [0, 1]^n0 (an image's pixel range) with this seed")
    pl.add_argument("--radius", type=float, default=0.1, help="the square's half-side (default 0.1)")
    pl.add_argument("--seed", type=int, default=None,
                    help="seed of the two random orthonormal directions (default: the --random seed, else 0)")
    pl.add_argument("--out", required=True, metavar="P.npy", help="the plane file to write, (3, n0) float64")
    pl.add_argument("--json", action="store_true", help="print one JSON object")
    pl.set_defaults(func=_plane)

    i = sub.add_parser("info", help="versions, the exact kernel (compiled or NumPy, and why), threads, JAX devices")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=_info)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PiecewiseError as e:
        print(f"piecewise: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("piecewise: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

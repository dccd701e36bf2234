"""The decision that ``piecewise homeo`` prints: layer theorem, exact PL check, smooth proofs and collisions."""
from __future__ import annotations

from ..errors import PiecewiseError
from ..nets import MLP, Params, mlp
from ..regions.domain import Domain
from ..staged import StagedNet, as_staged
from .layers import check_layers, require_square_map
from .pl import WHOLE, pl_homeomorphism
from .results import HomeoResult, describe_box
from .smooth import constructive_collision, gale_nikaido, search_collision


def as_mlp(sn: StagedNet) -> tuple[MLP, Params] | None:
    """The MLP (spec, params) of a StagedNet that is a plain chain -- stage s reads only stage s - 1, the output
    only the last stage, one elementwise activation, no per-unit slopes -- or None. A network read from ONNX
    and the same network read from .npz then take the same route and get the same certificate."""
    stages = sn.stages
    acts = {st.activation for st in stages}
    if len(acts) > 1 or any(st.groups is not None or st.slopes is not None for st in stages):
        return None
    if any(set(st.weights) != {s} for s, st in enumerate(stages)) or set(sn.out_weights) != {len(stages)}:
        return None
    act = next(iter(acts)) if acts else "relu"
    params = tuple((st.weights[s], st.bias) for s, st in enumerate(stages)) + \
        ((sn.out_weights[len(stages)], sn.out_bias),)
    return mlp(sn.n_in, [st.width for st in stages], sn.n_out, act), params


def homeomorphism(net: MLP, params: Params = None, domain: Domain | str | None = None, *,
                  progress: bool | None = None) -> HomeoResult:
    """Is the network map R^n -> R^n a homeomorphism?

    ``domain``: a box (the question is then asked on it), ``"whole"`` (the whole input space) or None (the
    whole input space for smooth nets; the box [-1, 1]^n for piecewise-linear ones, as :func:`pl_homeomorphism`).
    ``net``: an MLP spec with ``params``, or a graph / StagedNet (``params`` None; a plain chain is turned into
    its MLP first, :func:`as_mlp`).

    1. Every layer passes the layer theorem: yes, on all of R^n (onto the image for tanh/sigmoid/softplus).
    2. Piecewise-linear activation: the exact check on ``domain`` (:func:`pl_homeomorphism`).
    3. Otherwise (smooth nets failing the theorem): one hidden layer whose Jacobian is a P-matrix up to a fixed
       factor (Gale--Nikaido) gives a yes on R^n; a singular or narrowing layer after homeomorphic layers gives a
       constructive collision; else a multi-start search; no collision found: undecided (None). With a box,
       collisions are looked for inside it, and the certificate says so.
    """
    if not isinstance(net, MLP):
        sn = as_staged(net, params)
        m = as_mlp(sn)
        if m is None:  # a graph that is not a plain chain: piecewise linear, decided exactly
            return pl_homeomorphism(sn, None, domain, progress=progress)
        net, params = m
    require_square_map(net)
    box = domain if isinstance(domain, Domain) else None
    if isinstance(domain, str) and domain != WHOLE:
        raise PiecewiseError(f"domain must be a box or {WHOLE!r}, got {domain!r}")
    if box is not None and box.kind != "box":
        raise PiecewiseError("the homeomorphism check runs on a box")
    rep = check_layers(net, params)
    if rep.certified:
        where = "on all of R^n" if net.activation.piecewise_linear else "onto its image"
        on_box = " (so on the given box too)" if box is not None else ""
        return HomeoResult(True, "layerwise: every layer is a homeomorphism (square nonsingular weights, continuous "
                                 f"strictly monotone activation), so is their composition, {where}{on_box}",
                           coherently_oriented=True if net.activation.piecewise_linear else None, layers=rep.layers,
                           scope="R^n")
    if net.activation.piecewise_linear:
        out = pl_homeomorphism(net, params, domain, progress=progress)
        out.layers = rep.layers
        return out
    why = rep.first_failure["reason"]
    gn = gale_nikaido(net, params)
    if gn is not None:
        return HomeoResult(True, gn + (" (so on the given box too)" if box is not None else ""), layers=rep.layers,
                           scope="R^n")
    inside = f" inside the box {describe_box(box.describe())}" if box is not None else ""
    dom = box.describe() if box is not None else None
    w = constructive_collision(net, params, rep, box)
    if w is not None:
        return HomeoResult(False, f"collision{inside}: {why}, after layers that are homeomorphisms, so two inputs "
                                  "reach the same point", witness=w, layers=rep.layers, domain=dom)
    w = search_collision(net, params, domain=box)
    if w is not None:
        return HomeoResult(False, f"collision found{inside} by a multi-start search ({why})", witness=w,
                           layers=rep.layers, domain=dom)
    where = (f" on the box {describe_box(dom)}: a multi-start search inside the box found no collision, and smooth "
             "maps have no exact check here" if box is not None else
             ": smooth maps have no exact check here, and a multi-start search found no collision")
    return HomeoResult(None, f"undecided{where} (the layer theorem does not apply: {why}; no Gale-Nikaido "
                             "certificate)", witness=rep.first_failure, layers=rep.layers, domain=dom,
                       scope="box" if box is not None else None)

"""The decision that ``piecewise homeo`` prints: layer theorem, exact PL check, smooth collisions."""
from __future__ import annotations

from ..nets import MLP, Params
from ..regions.domain import Domain
from .layers import check_layers, require_square_map
from .pl import pl_homeomorphism
from .results import HomeoResult
from .smooth import constructive_collision, search_collision


def homeomorphism(net: MLP, params: Params, domain: Domain | None = None, *,
                  progress: bool | None = None) -> HomeoResult:
    """Is the network map R^n -> R^n a homeomorphism?

    1. Every layer passes the layer theorem: yes, on all of R^n (onto the image for tanh/sigmoid/softplus).
    2. Piecewise-linear activation: the exact check on ``domain`` (:func:`pl_homeomorphism`).
    3. Otherwise (smooth nets failing the theorem): a singular or narrowing layer after homeomorphic layers
       gives a constructive collision; else a multi-start search; no collision found: undecided (None).
    """
    if not isinstance(net, MLP):  # a graph or StagedNet: piecewise linear, decided exactly on the box
        return pl_homeomorphism(net, None, domain, progress=progress)
    require_square_map(net)
    rep = check_layers(net, params)
    if rep.certified:
        where = "on all of R^n" if net.activation.piecewise_linear else "onto its image"
        return HomeoResult(True, "layerwise: every layer is a homeomorphism (square nonsingular weights, continuous "
                                 f"strictly monotone activation), so is their composition, {where}",
                           coherently_oriented=True if net.activation.piecewise_linear else None, layers=rep.layers)
    if net.activation.piecewise_linear:
        out = pl_homeomorphism(net, params, domain, progress=progress)
        out.layers = rep.layers
        return out
    why = rep.first_failure["reason"]
    w = constructive_collision(net, params, rep)
    if w is not None:
        return HomeoResult(False, f"collision: {why}, after layers that are homeomorphisms, so two inputs reach the "
                                  "same point", witness=w, layers=rep.layers)
    w = search_collision(net, params)
    if w is not None:
        return HomeoResult(False, f"collision found by a multi-start search ({why})", witness=w, layers=rep.layers)
    return HomeoResult(None, f"undecided: the layer theorem does not apply ({why}), smooth maps have no exact check "
                             "here, and a multi-start search found no collision", witness=rep.first_failure,
                       layers=rep.layers)

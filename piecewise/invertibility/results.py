"""Typed results of the invertibility checks. Every verdict has the same fields whatever the route, and
``to_json()`` gives the JSON the CLI prints.

Witness format (one for every route): ``{"x1": [...], "x2": [...]}`` with x1 != x2 and f(x1) = f(x2)
checked by evaluating the network in float64, whenever a collision is known; ``{"layer": i | None,
"reason": "..."}`` only when none is (an undecided answer, or a layer that fails the layer theorem).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class LayerReport:
    """The layer theorem, layer by layer (:func:`~piecewise.invertibility.check_layers`)."""

    certified: bool
    layers: list = field(default_factory=list)  # one dict per layer: shape, det, sigma_min, condition, passes
    first_failure: dict | None = None  # {"layer": i, "reason": str}

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class HomeoResult:
    """Is a network map R^n -> R^n a homeomorphism? ``homeomorphism`` is True, False (then ``witness`` is a
    verified collision {x1, x2}) or None (undecided; ``witness`` is {layer, reason})."""

    homeomorphism: bool | None
    certificate: str
    coherently_oriented: bool | None = None
    witness: dict | None = None
    cells: int | None = None
    det_sign_counts: dict | None = None
    domain: dict | None = None
    layers: list | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class InjectivityResult:
    """Is x -> relu(x @ W + b) injective on R^n (:func:`~piecewise.invertibility.relu_layer_injective`)?"""

    injective: bool | None  # None: an LP said "not injective" but its collision failed the float64 check
    reason: str
    witness: dict | None = None  # {x1, x2} checked by evaluating the layer; {layer, reason} when undecided
    lps: int = 0  # linear programs solved

    def to_json(self) -> dict:
        return asdict(self)

"""Typed results of the invertibility checks. Every verdict has the same fields whatever the route, and
``to_json()`` gives the JSON the CLI prints.

Witness format (one for every route): ``{"x1": [...], "x2": [...]}`` with x1 != x2 and f(x1) = f(x2),
whenever a collision is known: for piecewise-linear maps exactly (then ``x2_exact`` holds the rationals of a
point x2* with f(x1) = f(x2*) exactly, x2 its float64 rounding), for smooth maps in float64 relative to the map's
scale (:mod:`.witness`); ``{"layer": i | None, "reason": "..."}`` only when none is (an undecided answer, or a
layer that fails the layer theorem).
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
    verified collision {x1, x2}) or None (undecided; ``witness`` is {layer, reason}).

    ``scope`` says where the question was decided: ``"R^n"`` (the whole input space), ``"box"`` (the box in
    ``domain``; outside it nothing is decided) or ``"box, sampled"`` (on the box only sampled targets were
    checked: an undecided answer, sampling never certifies). A False holds wherever its collision lies. ``answer`` (:meth:`answer`, also in the JSON) is the
    one-line verdict saying what was proven."""

    homeomorphism: bool | None
    certificate: str
    coherently_oriented: bool | None = None
    witness: dict | None = None
    cells: int | None = None
    det_sign_counts: dict | None = None
    domain: dict | None = None
    layers: list | None = None
    scope: str | None = None

    def answer(self) -> str:
        """The verdict in one line: "yes (proven on the whole input space)", "yes on the box [-1, 1]^2 (outside
        not decided)", "no (collision witness x1=..., x2=...)", "undecided (...)"."""
        if self.homeomorphism is True:
            if self.scope == "R^n":
                return "yes (proven on the whole input space)"
            where = describe_box(self.domain)
            if self.scope == "box, sampled":
                return f"yes on the box {where} (sampled, not proven; outside not decided)"
            return f"yes on the box {where} (outside not decided)"
        w = self.witness or {}
        if self.homeomorphism is False:
            if "x1" in w:
                return f"no (collision witness x1={_short(w['x1'])}, x2={_short(w['x2'])})"
            return f"no (layer {w.get('layer')}: {w.get('reason')})"
        reason = w.get("reason") or self.certificate
        where = f" on the box {describe_box(self.domain)}" if self.domain is not None and self.scope != "R^n" else ""
        return f"undecided{where} ({reason})"

    def to_json(self) -> dict:
        out = asdict(self)
        out["answer"] = self.answer()
        return out


def _short(x) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in x) + "]"


def describe_box(domain: dict | None) -> str:
    """``[lo, hi]^n`` for a cube, ``[lo0, hi0] x [lo1, hi1] x ...`` otherwise (a domain's ``describe()``)."""
    if not domain or "lo" not in domain:
        return "(none)"
    lo, hi = domain["lo"], domain["hi"]
    if len(set(lo)) == 1 and len(set(hi)) == 1:
        return f"[{lo[0]:g}, {hi[0]:g}]^{len(lo)}"
    return " x ".join(f"[{a:g}, {b:g}]" for a, b in zip(lo, hi))


@dataclass
class InjectivityResult:
    """Is x -> relu(x @ W + b) injective on R^n (:func:`~piecewise.invertibility.relu_layer_injective`)?"""

    injective: bool | None  # None: an LP said "not injective" but its collision failed the exact check
    reason: str
    witness: dict | None = None  # {x1, x2} checked exactly; {layer, reason} when undecided
    lps: int = 0  # linear programs solved

    def to_json(self) -> dict:
        return asdict(self)

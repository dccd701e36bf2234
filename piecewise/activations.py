"""Activation records: the function, its pieces, and how a pre-activation maps to a pattern state.

An :class:`Activation` is a small frozen (hashable) record, so it can live in a static network spec.
Build one with :func:`get_activation` from a CLI-style name (``"relu"``, ``"leaky_relu:0.1"``,
``"maxout:3"``, ...) or with the helpers :func:`relu`, :func:`leaky_relu`, ... .

Pattern states (per hidden unit):

========== ======= ====================================================
activation states  state of a pre-activation z
========== ======= ====================================================
relu       2       1 if z > 0 else 0
leaky_relu 2       1 if z > 0 else 0
abs        2       1 if z > 0 else 0
hardtanh   3       0 if z < -1, 2 if z > 1, else 1
maxout(k)  k       argmax over the k pieces (first index on ties)
tanh, ...  --      smooth: no pattern (not piecewise linear)
========== ======= ====================================================

A point whose pre-activation sits exactly on a breakpoint (or whose maxout pieces tie) lies on a region
boundary; the routines in :mod:`piecewise.regions` detect such points with the tolerance of
:mod:`piecewise.numerics` and never count their pattern as a region.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import PiecewiseError

_PL = ("relu", "leaky_relu", "abs", "hardtanh", "maxout")
_SMOOTH = ("tanh", "sigmoid", "softplus")
NAMES = _PL + _SMOOTH


@dataclass(frozen=True)
class Activation:
    """A hidden-layer activation.

    Attributes:
      name: one of ``relu, leaky_relu, abs, hardtanh, maxout, tanh, sigmoid, softplus``.
      slope: negative-side slope of ``leaky_relu`` (ignored otherwise).
      rank: number of pieces ``k`` of ``maxout`` (1 for every other activation).
    """

    name: str
    slope: float = 0.0
    rank: int = 1

    def __post_init__(self):
        if self.name not in NAMES:
            raise PiecewiseError(f"unknown activation {self.name!r}; known: {', '.join(NAMES)}")
        if self.name == "maxout" and self.rank < 2:
            raise PiecewiseError(f"maxout needs rank k >= 2, got {self.rank}")
        if self.name != "maxout" and self.rank != 1:
            raise PiecewiseError(f"rank applies to maxout only, got rank={self.rank} for {self.name}")
        if self.name == "leaky_relu" and not math.isfinite(self.slope):
            raise PiecewiseError(f"leaky_relu slope must be finite, got {self.slope}")

    # -- properties used by the regions and invertibility code -------------------------------------
    @property
    def is_maxout(self) -> bool:
        return self.name == "maxout"

    @property
    def piecewise_linear(self) -> bool:
        return self.name in _PL

    @property
    def continuous(self) -> bool:
        return True  # every activation offered here is continuous

    @property
    def strictly_monotone(self) -> bool:
        """Strictly increasing on R (the layer theorem's hypothesis). Maxout is not elementwise: False."""
        if self.name == "leaky_relu":
            return self.slope > 0
        return self.name in _SMOOTH

    @property
    def breakpoints(self) -> tuple[float, ...] | None:
        """Pre-activation values where an elementwise PL activation changes piece; None if smooth.

        For maxout the pieces are chosen by an argmax, not by breakpoints: ``()``.
        """
        if self.name in ("relu", "leaky_relu", "abs"):
            return (0.0,)
        if self.name == "hardtanh":
            return (-1.0, 1.0)
        if self.name == "maxout":
            return ()
        return None

    @property
    def slopes(self) -> tuple[float, ...] | None:
        """Slope on each piece, left to right (len(breakpoints) + 1 entries); None if not elementwise PL."""
        return {
            "relu": (0.0, 1.0),
            "leaky_relu": (float(self.slope), 1.0),
            "abs": (-1.0, 1.0),
            "hardtanh": (0.0, 1.0, 0.0),
        }.get(self.name)

    @property
    def n_states(self) -> int:
        """Number of pattern states of one unit (2, 3 for hardtanh, k for maxout)."""
        if not self.piecewise_linear:
            raise PiecewiseError(f"{self} is not piecewise linear: it has no activation pattern")
        if self.name == "hardtanh":
            return 3
        if self.name == "maxout":
            return self.rank
        return 2

    @property
    def bits(self) -> int:
        """Bits needed to store one unit's state."""
        return max(1, (self.n_states - 1).bit_length())

    # -- evaluation ---------------------------------------------------------------------------------
    def __call__(self, z, xp=None):
        """Apply to pre-activations. Elementwise on (..., width); maxout reduces (..., width, k) -> (..., width).
        ``xp``: None (jax.numpy) or ``numpy``, which evaluates with NumPy (no JAX dispatch or compilation: the
        exact engine's path)."""
        n = self.name
        if xp is np:
            return _numpy_forms[n](np.asarray(z), self)
        import jax
        import jax.numpy as jnp

        if n == "relu":
            return jax.nn.relu(z)
        if n == "leaky_relu":
            return jnp.where(z > 0, z, self.slope * z)
        if n == "abs":
            return jnp.abs(z)
        if n == "hardtanh":
            return jnp.clip(z, -1.0, 1.0)
        if n == "maxout":
            return jnp.max(z, axis=-1)
        if n == "tanh":
            return jnp.tanh(z)
        if n == "sigmoid":
            return jax.nn.sigmoid(z)
        return jax.nn.softplus(z)

    def derivative(self, z):
        """Derivative of an elementwise activation at z: the slope of the piece of z's pattern state
        (:meth:`states`), at a kink too (relu at 0: the left piece; hardtanh at -1 and at 1: the middle one).
        Not defined for maxout (use the argmax piece)."""
        import jax
        import jax.numpy as jnp

        n = self.name
        if n == "relu":
            return (z > 0).astype(z.dtype)
        if n == "leaky_relu":
            return jnp.where(z > 0, 1.0, self.slope).astype(z.dtype)
        if n == "abs":
            return jnp.where(z > 0, 1.0, -1.0).astype(z.dtype)
        if n == "hardtanh":
            return ((z >= -1) & (z <= 1)).astype(z.dtype)
        if n == "tanh":
            return 1.0 - jnp.tanh(z) ** 2
        if n == "sigmoid":
            s = jax.nn.sigmoid(z)
            return s * (1.0 - s)
        if n == "softplus":
            return jax.nn.sigmoid(z)
        raise PiecewiseError("maxout has no elementwise derivative")

    def states(self, z, xp=None):
        """Pattern state of every unit: int32 array (..., width). ``xp`` is jax.numpy (None) or numpy."""
        if xp is None:
            import jax.numpy as xp
        n = self.name
        if n in ("relu", "leaky_relu", "abs"):
            return (z > 0).astype(xp.int32)
        if n == "hardtanh":
            return ((z >= -1).astype(xp.int32) + (z > 1).astype(xp.int32))
        if n == "maxout":
            return xp.argmax(z, axis=-1).astype(xp.int32)
        raise PiecewiseError(f"{self} is not piecewise linear: it has no activation pattern")

    @property
    def spec(self) -> str:
        """``NAME[:PARAM]`` without rounding: ``get_activation(a.spec) == a`` (``str`` rounds the slope)."""
        return f"leaky_relu:{self.slope!r}" if self.name == "leaky_relu" else str(self)

    def __str__(self) -> str:
        if self.name == "leaky_relu":
            return f"leaky_relu:{self.slope:g}"
        if self.name == "maxout":
            return f"maxout:{self.rank}"
        return self.name


def relu() -> Activation:
    return Activation("relu")


def leaky_relu(slope: float = 0.01) -> Activation:
    return Activation("leaky_relu", slope=float(slope))


def abs_() -> Activation:
    return Activation("abs")


def hardtanh() -> Activation:
    return Activation("hardtanh")


def maxout(k: int) -> Activation:
    return Activation("maxout", rank=int(k))


def tanh() -> Activation:
    return Activation("tanh")


def sigmoid() -> Activation:
    return Activation("sigmoid")


def softplus() -> Activation:
    return Activation("softplus")


def get_activation(spec: "str | Activation", rank: int | None = None) -> Activation:
    """Parse ``NAME[:PARAM]`` (the CLI syntax): ``relu``, ``leaky_relu:0.1``, ``maxout`` / ``maxout:3``, ...

    ``rank`` supplies maxout's k when the name carries none (the CLI reads it from the weights).
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str) or not spec:
        got = repr(spec) if isinstance(spec, str) or spec is None else f"a {type(spec).__name__}"
        raise PiecewiseError(f"activation must be a name like 'relu' or 'leaky_relu:0.1', got {got}")
    name, _, param = spec.strip().partition(":")
    name = name.strip().lower().replace("-", "_")
    if name == "leakyrelu":
        name = "leaky_relu"
    if name not in NAMES:
        raise PiecewiseError(f"unknown activation {spec!r}; known: {', '.join(NAMES)}")
    if name == "leaky_relu":
        try:
            slope = float(param) if param else 0.01
        except ValueError:
            raise PiecewiseError(f"leaky_relu slope must be a number, got {param!r}") from None
        return Activation("leaky_relu", slope=slope)
    if name == "maxout":
        if param:
            try:
                k = int(param)
            except ValueError:
                raise PiecewiseError(f"maxout rank must be an integer, got {param!r}") from None
            if rank is not None and rank != k:
                raise PiecewiseError(f"maxout:{k} does not match the weights' rank {rank}")
        elif rank is not None:
            k = rank
        else:
            raise PiecewiseError("maxout needs its rank: write maxout:K or give 3-D weights")
        return Activation("maxout", rank=k)
    if param:
        raise PiecewiseError(f"activation {name} takes no parameter, got {spec!r}")
    return Activation(name)


_numpy_forms = {
    "relu": lambda z, a: np.maximum(z, 0.0),
    "leaky_relu": lambda z, a: np.where(z > 0, z, a.slope * z),
    "abs": lambda z, a: np.abs(z),
    "hardtanh": lambda z, a: np.clip(z, -1.0, 1.0),
    "maxout": lambda z, a: np.max(z, axis=-1),
    "tanh": lambda z, a: np.tanh(z),
    "sigmoid": lambda z, a: 0.5 * (1.0 + np.tanh(0.5 * z)),
    "softplus": lambda z, a: np.logaddexp(0.0, z),
}

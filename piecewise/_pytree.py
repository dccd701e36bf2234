"""Networks as JAX pytrees: static structure, array leaves.

:class:`~piecewise.staged.StagedNet` and :class:`~piecewise.graph.Graph` are registered as pytrees: their
float arrays (weights, biases, kernels, slopes) are the leaves, everything else (the ops, shapes, activations,
index tables of windows and max groups) is the static structure, compared by content. A jit-compiled function
that takes a network therefore compiles once per *structure*: a new object with new weights of the same shape
(a training checkpoint, a re-imported model) reuses the compilation, and the weights are arguments, not
constants baked into the compiled code. :func:`skeleton` gives the structure as a hashable stand-in of the
network for the functions that take the network as a static argument and its arrays as params.

The registration waits for JAX (importing it costs seconds, and the exact engine never needs it): it happens
when a module of piecewise that uses JAX is imported (:mod:`piecewise.graph`, :mod:`piecewise.patterns`) or a
lazily jit-compiled function first runs; :func:`register` does it by hand.
"""
from __future__ import annotations

import hashlib

import numpy as np

_CLASSES: list = []  # (cls, flatten, unflatten) waiting for JAX
_DONE: set = set()


def _key(v):
    """A hashable key of a static value: arrays by dtype, shape and a digest of their bytes."""
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        return ("nd", a.dtype.str, a.shape, hashlib.sha256(a.view(np.uint8).reshape(-1)).hexdigest())
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_key(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple(sorted((k, _key(x)) for k, x in v.items())))
    hash(v)  # anything else must be hashable itself (numbers, strings, None, activations)
    return v


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and bool(np.array_equal(a, b)))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


class Frozen:
    """A static value (array, container, scalar) as part of a pytree's structure: hashable, equal to another
    iff the values are equal (digests first, then the values themselves: never equal by a digest alone)."""

    __slots__ = ("value", "_k", "_h")

    def __init__(self, value):
        self.value = value
        self._k = _key(value)
        self._h = hash(self._k)

    def __hash__(self):
        return self._h

    def __eq__(self, other):
        if self is other:
            return True
        return (isinstance(other, Frozen) and self._h == other._h and self._k == other._k
                and _equal(self.value, other.value))

    def __repr__(self):
        return f"Frozen({self._k[0] if isinstance(self._k, tuple) else self._k!r})"


class Placeholder:
    """A leaf's shape and dtype, in place of its values (the leaves of a :func:`skeleton`)."""

    __slots__ = ("shape", "dtype")

    def __init__(self, a):
        self.shape, self.dtype = tuple(np.shape(a)), np.dtype(getattr(a, "dtype", np.float64))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self):
        return f"Placeholder({self.shape}, {self.dtype})"


def add(cls, flatten, unflatten) -> None:
    """Register ``cls`` as a pytree once JAX is in use (now, if it already is)."""
    _CLASSES.append((cls, flatten, unflatten))
    import sys

    if "jax" in sys.modules:
        register()


def register() -> None:
    """Register the waiting classes with JAX (imports it; idempotent)."""
    import jax

    for cls, flatten, unflatten in _CLASSES:
        if cls not in _DONE:
            jax.tree_util.register_pytree_node(cls, flatten, unflatten)
            _DONE.add(cls)


def flat(obj, flatten):
    """``flatten(obj)`` computed once per object (kept on it: its arrays do not change)."""
    got = obj.__dict__.get("_pytree")
    if got is None:
        got = flatten(obj)
        object.__setattr__(obj, "_pytree", got)
    return got


def skeleton(obj, flatten, unflatten, cls):
    """The network's structure as a hashable stand-in (an instance of ``cls``, a subclass of the network's
    class that hashes and compares by :class:`Keyed`): equal for any two networks of one structure, whatever
    their weights; its leaves are :class:`Placeholder` s (shapes and dtypes). For a jit-compiled function
    that takes the network as a static argument and its arrays as params: it compiles once per structure,
    not once per object. Computed once per object."""
    got = obj.__dict__.get("_skeleton")
    if got is None:
        leaves, aux = flat(obj, flatten)
        holders = [Placeholder(a) for a in leaves]
        got = unflatten(aux, holders, cls)
        object.__setattr__(got, "_skeleton_key", (aux, tuple((p.shape, p.dtype.str) for p in holders)))
        object.__setattr__(obj, "_skeleton", got)
    return got


class Keyed:
    """Mixin of a skeleton class: hash and equality by the structure key (not by identity)."""

    def __hash__(self):
        return hash(self.__dict__["_skeleton_key"])

    def __eq__(self, other):
        return isinstance(other, Keyed) and type(self) is type(other) and \
            self.__dict__["_skeleton_key"] == other.__dict__["_skeleton_key"]

"""Deferred imports: JAX costs about two seconds to import, and the exact engine, the .npz reader and the
command line need none of it (NumPy only). Modules on that path import JAX inside the functions that use it,
and jit-compile their hot routines with :func:`lazy_jit`, which imports JAX on the first call."""
from __future__ import annotations

import functools
import importlib
import threading


class _LazyJit:
    """``jax.jit(fn, **options)``, built on first use: calls and attributes (``lower``, ``_cache_size``, ...)
    go to the jitted function."""

    def __init__(self, fn, options):
        functools.update_wrapper(self, fn)
        self._fn, self._options, self._jitted, self._lock = fn, options, None, threading.Lock()

    def _get(self):
        if self._jitted is None:
            with self._lock:
                if self._jitted is None:
                    import jax

                    from . import _pytree

                    _pytree.register()  # networks as pytrees, now that JAX is here
                    self._jitted = jax.jit(self._fn, **self._options)
        return self._jitted

    def __call__(self, *args, **kwargs):
        return self._get()(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._get(), name)


def lazy_jit(fn=None, **options):
    """``jax.jit`` without importing JAX until the function is first called: ``@lazy_jit`` or
    ``@lazy_jit(static_argnums=(0,))``."""
    if fn is None:
        return lambda f: _LazyJit(f, options)
    return _LazyJit(fn, options)


def module_getattr(package: str, exports: dict[str, str]):
    """A PEP 562 ``__getattr__`` for ``package``: ``exports`` maps a public name to the submodule (relative,
    ``".nets"``) it lives in; any other name that is a submodule is imported. The value is cached in the
    package's namespace, so each name is resolved once."""
    import sys

    def __getattr__(name: str):
        mod = sys.modules[package]
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
        elif not name.startswith("__"):
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(mod, name, value)
        return value

    return __getattr__

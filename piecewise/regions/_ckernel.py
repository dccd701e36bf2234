"""The compiled kernel of an elementwise stage (``_kernel.c``, built at install time when a C compiler is
there, or shipped built in a platform wheel), loaded with ctypes, and its driver.

The kernel is the extension module ``piecewise.regions._pwkernel`` (setup.py: ``_kernel.c`` and its module
definition ``_pwkernel_module.c`` in one shared library). :func:`_find` asks the import system where that
module is (``importlib.util.find_spec``: the file under this interpreter's extension suffix, wherever the
package is installed) and the library is loaded from there with ``ctypes.CDLL``; the module itself is not
imported (it has no Python functions).

The kernel is optional: without it (no compiler at install, or ``PIECEWISE_KERNEL=numpy`` in the
environment) the engine runs its NumPy path, which gives the same cells (tests compare the two on random
and degenerate nets). :func:`available` says which path a count takes; ``PIECEWISE_KERNEL=c`` makes a
missing kernel an error instead of a fallback (CI sets it, so a broken build cannot pass unnoticed).

The C side keeps no state between calls. A stage's stage-start cells are cut into chunks; each chunk is one
call (ctypes releases the GIL, so the engine's threads run chunks side by side), whose pieces are copied
into padded NumPy arrays; the split events are then registered in chunk order, so labels and results do
not depend on the threads.
"""
from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import os
import sys

import numpy as np

from .._shared import F, NEWBASE, NOLAB  # facet slots; padding label; new facets: NEWBASE + event index
from ..errors import PiecewiseError

_LIB = None
_TRIED = False
_WHY = None  # why no kernel was loaded (set by _load)
_NOTICED = False  # the NumPy-fallback notice was printed (once per process)
_OFF = ("numpy", "off", "0")
_REQUIRED = ("c", "require", "1")
MODULE = "piecewise.regions._pwkernel"  # the extension module that is the compiled kernel


def _find():
    """The path of the compiled kernel's shared library (the extension module :data:`MODULE`, as the import
    system finds it), or None where it is not built (or not an extension module: the file must end in one
    of this interpreter's extension suffixes, e.g. ``.cpython-311-x86_64-linux-gnu.so``)."""
    try:
        spec = importlib.util.find_spec(MODULE)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return None
    return origin


def _load():
    global _LIB, _TRIED, _WHY
    if _TRIED:
        return _LIB
    _TRIED = True
    path = _find()
    if path is None:
        _WHY = (f"the compiled kernel was not built (the import system finds no extension module {MODULE}, "
                f"_pwkernel{importlib.machinery.EXTENSION_SUFFIXES[0]} in {os.path.dirname(os.path.abspath(__file__))}; "
                "it is built at install where a C compiler is found: reinstall with one, pip install -e ., or "
                "install a platform wheel)")
        return None
    try:
        lib = _declare(ctypes.CDLL(path))
    except (OSError, AttributeError) as e:  # not loadable here, or a stale build missing a function
        _WHY = f"the compiled kernel {path} could not be loaded ({e}); rebuild it: pip install -e ."
        return None
    _LIB = lib
    return lib


def _declare(lib):
    """The C functions' signatures on the loaded library ``lib``."""
    p = ctypes.c_void_p
    i64, i32 = ctypes.c_int64, ctypes.c_int
    lib.pw_stage.restype = p
    lib.pw_stage.argtypes = [i32, i64, p, p, i32, p, p, p, p, p, p, p, i32, p, p, p, p, i32, p, p, p, p, p, p, p, i64]
    lib.pw_sizes.restype = None
    lib.pw_sizes.argtypes = [p, p]
    lib.pw_fetch.restype = None
    lib.pw_fetch.argtypes = [p, i32, i32, i64, p, p, p, p, p, p, p, p, p, p, p, p]
    lib.pw_pad.restype = None
    lib.pw_pad.argtypes = [i64, i32, i32, p, p, p, i32, p, p, p, p, p]
    lib.pw_hmap.restype = None
    lib.pw_hmap.argtypes = [i64, i32, i32, p, p, p, p, p, p, p, p]
    lib.pw_extras.restype = None
    lib.pw_extras.argtypes = [i64, i32, i32, i32, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p]
    lib.pw_base.restype = None
    lib.pw_base.argtypes = [i64, i32, i32, i32, p, p, p, p, p, p, p, p, p, p]
    lib.pw_vary.restype = None
    lib.pw_vary.argtypes = [i64, i32, p, p, p, p]
    lib.pw_free.restype = None
    lib.pw_free.argtypes = [p]
    lib.pw_max_winners.restype = i32
    lib.pw_max_winners.argtypes = [i64, i64, i64, i32, i64, i64, i32] + [p] * 13 + [i32, p, p, p]
    return lib


def available() -> bool:
    """Whether counts use the compiled kernel (built, and not turned off by ``PIECEWISE_KERNEL=numpy``).

    The exact engines ask this before each elementwise stage: where the kernel is missing (and was not turned
    off on purpose) the first call prints a one-line notice on stderr, once per process."""
    lib = _lib()
    if lib is None and not _NOTICED and _mode() not in _OFF:
        _notice()
    return lib is not None


def _mode() -> str:
    return os.environ.get("PIECEWISE_KERNEL", "").strip().lower()


def _notice() -> None:
    global _NOTICED
    _NOTICED = True
    print(f"piecewise: note: exact counts run on the NumPy path (same cells, slower): {_WHY or 'no compiled kernel'}",
          file=sys.stderr)


def _lib():
    mode = _mode()
    if mode in _OFF:
        return None
    lib = _load()
    if lib is None and mode in _REQUIRED:
        why = _WHY or "the compiled kernel piecewise/regions/_pwkernel was not built (reinstall with a C compiler: pip install -e .)"
        raise PiecewiseError(f"PIECEWISE_KERNEL=c but {why}")
    return lib


def status() -> dict:
    """Which path exact counts take and why (``piecewise info``), without printing the notice or raising:
    ``kind`` (``"c"``: the compiled kernel, ``"numpy"``: the NumPy path), ``reason`` (one line), ``library``
    (the shared library's path, or None), ``folder`` (where it is looked for), ``PIECEWISE_KERNEL`` (the
    variable's value, or None)."""
    raw = os.environ.get("PIECEWISE_KERNEL")
    mode = _mode()
    lib = _load()
    path = _find() if lib is not None else None
    if mode in _OFF:
        kind = "numpy"
        reason = f"PIECEWISE_KERNEL={raw.strip()} turns the compiled kernel off" + (
            f" (it is built: {_find()})" if lib is not None else f"; besides, {_WHY}")
    elif lib is not None:
        kind, reason = "c", f"compiled kernel loaded from {path}"
        if mode in _REQUIRED:
            reason += f" (required by PIECEWISE_KERNEL={raw.strip()})"
    else:
        kind, reason = "numpy", _WHY or "no compiled kernel"
        if mode in _REQUIRED:
            reason += f"; PIECEWISE_KERNEL={raw.strip()} makes exact counts fail instead of falling back"
    if mode and mode not in _OFF + _REQUIRED:
        reason += f" (PIECEWISE_KERNEL={raw!r} is not one of numpy, c: ignored)"
    return {"kind": kind, "compiled": lib is not None, "reason": reason, "library": path,
            "folder": os.path.dirname(os.path.abspath(__file__)), "PIECEWISE_KERNEL": raw}


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p) if a is not None and a.size else None


class Ragged:
    """Cells in the kernel's ragged form, kept between kernel stages instead of padded arrays (a few cells
    with many vertices would pad all the others): vertices ``x (V, d)`` cell after cell, counts ``n (C,)``,
    per vertex ``lab`` (2-D edge labels) or ``inc`` (n-D incidences) and the error bound ``dv``, and
    ``flab (C, 64)`` (n-D)."""

    def __init__(self, x, n, per_vertex, dv, flab=None, pad=0):
        self.x, self.n, self.pv, self.dv, self.flab, self.pad = x, n, per_vertex, dv, flab, pad
        self.voff = np.zeros(len(n), np.int64)
        np.cumsum(n[:-1], out=self.voff[1:])

    @property
    def size(self) -> int:
        return len(self.n)

    @classmethod
    def from_padded(cls, geo, size: int):
        """From the backend's padded geometry: [X, n, per-vertex (lab / inc), (flab,) D]."""
        X, n = geo[0][:size], np.ascontiguousarray(geo[1][:size], np.int64)
        valid = np.arange(X.shape[1])[None, :] < n[:, None]
        flab = np.ascontiguousarray(geo[3][:size], np.int32) if len(geo) > 4 else None
        pv = np.ascontiguousarray(geo[2][:size][valid])
        dv = np.ascontiguousarray(geo[-1][:size][valid], np.float64)
        return cls(np.ascontiguousarray(X[valid], np.float64), n, pv, dv, flab, pad=_pad_of(pv))

    @classmethod
    def concat(cls, parts):
        parts = [p for p in parts if p.size] or parts[:1]
        if len(parts) == 1:
            return parts[0]
        flab = np.concatenate([p.flab for p in parts]) if parts[0].flab is not None else None
        return cls(np.concatenate([p.x for p in parts]), np.concatenate([p.n for p in parts]),
                   np.concatenate([p.pv for p in parts]), np.concatenate([p.dv for p in parts]), flab, parts[0].pad)

    def take(self, rows):
        """The cells ``rows`` as a new Ragged."""
        rows = np.asarray(rows, np.int64)
        n = self.n[rows]
        vidx = np.repeat(self.voff[rows] - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(int(n.sum()))
        flab = self.flab[rows] if self.flab is not None else None
        return Ragged(self.x[vidx], n, self.pv[vidx], self.dv[vidx], flab, self.pad)

    def padded(self):
        """The backend's padded geometry list (vertex axes padded to the largest count)."""
        C, d = len(self.n), self.x.shape[1]
        K = max(int(self.n.max()) if C else 1, 1)
        X = np.zeros((C, K, d))
        P = np.full((C, K), self.pad, self.pv.dtype)
        D = np.zeros((C, K))
        if C:
            _load().pw_pad(C, K, d, _ptr(self.x), _ptr(self.n), _ptr(self.voff), self.pv.itemsize, _ptr(self.pv),
                           _ptr(self.dv), _ptr(X), _ptr(P), _ptr(D))
        return [X, self.n, P] + ([self.flab] if self.flab is not None else []) + [D]


def extras(cells, anc, state, indptr, units, G, E, slope, const, A, B, Be, g, e, absA=None, Bs=None, s=None):
    """Rows g (n, d, m), e (n, m) of a stage's output map = the base of their stage-start cell (B, Be) plus
    the varying units' terms (``pw_extras``), and with ``s`` the sums of the terms' magnitudes (base Bs,
    terms |.| @ |A|); ``cells`` (n,): each row's stage-end cell. All arrays C-contiguous, of the kernel's
    dtypes."""
    n, d, m = g.shape
    _load().pw_extras(n, d, state.shape[1], m, _ptr(np.ascontiguousarray(cells, np.int64)),
                      _ptr(np.ascontiguousarray(anc, np.int64)), _ptr(np.ascontiguousarray(state, np.int8)),
                      _ptr(indptr), _ptr(units), _ptr(G), _ptr(E), _ptr(slope), _ptr(const), _ptr(A), _ptr(B), _ptr(Be),
                      _ptr(g), _ptr(e), _ptr(absA), _ptr(Bs), _ptr(s))


def base(rows, G, E, s, slope, const, A, absA, B, Be, Bs):
    """The fixed units' terms into few outputs (``pw_base``) for the stage-start rows ``rows`` (a slice of
    consecutive rows: r0:r1) with pieces s (r1 - r0, w); B, Be, Bs: the zeroed output rows."""
    P = B.shape[0]
    d, w = G.shape[1], G.shape[2]
    _load().pw_base(P, d, w, A.shape[1], _ptr(G[rows]), _ptr(E[rows]), _ptr(np.ascontiguousarray(s, np.int8)),
                    _ptr(slope), _ptr(const), _ptr(A), _ptr(absA), _ptr(B), _ptr(Be), _ptr(Bs))


def vary(anc, state, ref, P: int):
    """(P, w) bool: the units whose state differs, in some stage-end cell, from its stage-start cell's
    reference cell ``ref`` (``pw_vary``)."""
    C, w = state.shape
    out = np.zeros((P, w), np.uint8)
    if C and w:
        _load().pw_vary(C, w, _ptr(np.ascontiguousarray(anc, np.int64)), _ptr(np.ascontiguousarray(state, np.int8)),
                        _ptr(np.ascontiguousarray(ref, np.int64)), _ptr(out))
    return out.view(bool)


def max_winners(V, n, D, vinf, rows, G, E, Dg, De, groups, known, threads: int):
    """(C, w) int64: the whole-cell winner of every cell and max unit, or -1 (``pw_max_winners``; the rule of
    :func:`._engine._max_winners`). ``known``: None, or (flat (C, m) bool, cval (C, m), punit (m,), vertex
    units (C, K, S) or None, their values (C, K, S))."""
    C, K, d = V.shape
    w, k = groups.shape
    m = E.shape[1]
    out = np.full((C, w), -1, np.int64)
    c64 = lambda a, t=np.float64: np.ascontiguousarray(a, t)  # noqa: E731
    V, D, vinf, G, E, Dg, De = (c64(a) for a in (V, D, vinf, G, E, Dg, De))
    n, rows, groups = (c64(a, np.int64) for a in (n, rows, groups))
    flat = cval = punit = vu = bpv = None
    S = 0
    if known is not None:
        flat, cval, punit = c64(known[0], np.uint8), c64(known[1]), c64(known[2], np.int64)
        if known[3] is not None:
            vu, bpv = c64(known[3], np.int64), c64(known[4])
            S = vu.shape[-1]
    lib = _load()

    def one(span):
        return lib.pw_max_winners(span[0], span[1], K, d, m, w, k, _ptr(V), _ptr(n), _ptr(D), _ptr(vinf), _ptr(rows),
                                  _ptr(G), _ptr(E), _ptr(Dg), _ptr(De), _ptr(groups), _ptr(flat), _ptr(cval),
                                  _ptr(punit), S, _ptr(vu), _ptr(bpv), _ptr(out))

    step = max(1, -(-C // max(1, 4 * threads)))
    from .parallel import pmap

    if any(pmap(one, [(c, min(c + step, C)) for c in range(0, C, step)], threads)):
        raise MemoryError("the compiled kernel ran out of memory (max-stage winners)")
    return out


def _pad_of(pv):
    """The padding of the per-vertex array: no label (2-D edge labels, int32) or no facet (n-D incidences)."""
    return np.int32(NOLAB) if pv.dtype == np.int32 else np.uint64(0)


def hmap(a, state, G, E, slope, const):
    """The compiled form of ``_StageMap._h`` for elementwise stages (same values, bit for bit): the output
    map (M (B, d, w), m (B, w)) of cells with stage-start rows ``a`` and states ``state`` (B, w) int8."""
    B, (P, d, w) = len(a), G.shape
    M, m = np.empty((B, d, w)), np.empty((B, w))
    _load().pw_hmap(B, d, w, _ptr(np.ascontiguousarray(a, np.int64)), _ptr(np.ascontiguousarray(state, np.int8)),
                    _ptr(G), _ptr(E), _ptr(slope), _ptr(const), _ptr(M), _ptr(m))
    return M, m


def stage(backend, rag: Ragged, G, E, Dg, De, stage_no: int, act, flat, events, bar, threads: int, max_cells: int,
          pmap, check):
    """One elementwise stage on the cells ``rag`` (rows of G, E = their indices; Dg, De (w,) the error bounds
    of their coefficients): returns (cells after it (Ragged), their stage-start rows, states (C, w) int8,
    deferred): as the NumPy path does, except for the stage-start cells ``deferred`` (rows) where some sign
    was too close to zero for float64, which the kernel leaves to the NumPy path (their cells are not among
    the returned ones). ``check(n)`` raises the engine's max_cells error; ``pmap`` runs the chunks on the
    engine's threads."""
    lib = _lib()
    nd = 1 if backend.KERNEL == "polytope" else 0
    C0 = rag.size
    d, w = G.shape[1], G.shape[2]
    if rag.pv.size and np.issubdtype(rag.pv.dtype, np.signedinteger) and rag.pv.max() >= NEWBASE:
        raise PiecewiseError("too many split events for the kernel's int32 labels")
    if nd and rag.flab.size and rag.flab.max() >= NEWBASE:
        raise PiecewiseError("too many split events for the kernel's int32 labels")
    G = np.ascontiguousarray(G, np.float64)
    E = np.ascontiguousarray(E, np.float64)
    Dg = np.ascontiguousarray(Dg, np.float64)
    De = np.ascontiguousarray(De, np.float64)
    rows = np.arange(C0, dtype=np.int64)
    bps = np.ascontiguousarray(act.breakpoints, np.float64)
    flat = np.ascontiguousarray(flat, np.int8)
    counter = np.array([C0], np.int64)
    # chunks: a few per thread (dynamic load balance), more on large stages (progress), few on small ones
    # (each call has a fixed cost of ~0.1 ms)
    n_chunks = 1 if C0 < 1024 else max(2 * threads, min(64, C0 // 4096))
    bounds = np.linspace(0, C0, n_chunks + 1).astype(np.int64)
    chunks = [np.arange(bounds[i], bounds[i + 1], dtype=np.int64) for i in range(n_chunks)]
    lab, inc = (None, rag.pv) if nd else (rag.pv, None)
    events.finish()  # the hyperplanes of earlier labels (new vertices' error bounds)
    evg, eve = np.ascontiguousarray(events.g, np.float64), np.ascontiguousarray(events.e, np.float64)
    evdg, evde = np.ascontiguousarray(events.dg, np.float64), np.ascontiguousarray(events.de, np.float64)
    head = (_ptr(rag.voff), d, _ptr(rag.x), _ptr(rag.dv), _ptr(rag.n), _ptr(lab), _ptr(inc), _ptr(rag.flab), _ptr(rows),
            w, _ptr(G), _ptr(E), _ptr(Dg), _ptr(De), len(bps), _ptr(bps), _ptr(flat), _ptr(evg), _ptr(eve), _ptr(evdg),
            _ptr(evde), counter.ctypes.data_as(ctypes.c_void_p), int(max_cells))

    def one(idx):
        h = lib.pw_stage(nd, len(idx), _ptr(idx), *head)
        if not h:
            raise MemoryError("the exact kernel could not allocate its buffers")
        sizes = np.zeros(6, np.int64)
        lib.pw_sizes(h, _ptr(sizes))
        bar.update(w * len(idx) / C0)
        return h, sizes

    results = pmap(one, chunks, threads)
    errs = [int(s[3]) for _, s in results]
    if any(errs):
        for h, _ in results:
            lib.pw_free(h)
        if 1 in errs:
            check(max_cells + 1)
        if 2 in errs:
            raise PiecewiseError(f"a cell has more than {F} facets: the exact n-D engine cannot represent it; use "
                                 "the grid method or a smaller box")
        raise MemoryError("the exact kernel ran out of memory")
    N = sum(int(s[0]) for _, s in results)
    NV = sum(int(s[4]) for _, s in results)
    NE = sum(int(s[2]) for _, s in results)
    ND = sum(int(s[5]) for _, s in results)
    check(N)
    x = np.empty((NV, d))
    dv = np.empty(NV)
    n = np.empty(N, np.int64)
    pv = np.empty(NV, np.uint64 if nd else np.int32)
    flab = np.empty((N, F), np.int32) if nd else None
    row = np.empty(N, np.int64)
    state = np.empty((N, w), np.int8)
    ev_row, ev_unit, ev_q = np.empty(NE, np.int64), np.empty(NE, np.int32), np.empty(NE, np.int8)
    deferred = np.empty(ND, np.int64)
    c0 = v0 = e0 = f0 = 0
    base = events.n  # the ids the events of this stage get (registered below, in chunk order)
    for h, s in results:
        c1, v1, e1, f1 = c0 + int(s[0]), v0 + int(s[4]), e0 + int(s[2]), f0 + int(s[5])
        lib.pw_fetch(h, d, w, base + e0, _ptr(x[v0:v1]), _ptr(dv[v0:v1]), _ptr(n[c0:c1]),
                     None if nd else _ptr(pv[v0:v1]), _ptr(pv[v0:v1]) if nd else None,
                     _ptr(flab[c0:c1]) if nd else None, _ptr(row[c0:c1]), _ptr(state[c0:c1]), _ptr(ev_row[e0:e1]),
                     _ptr(ev_unit[e0:e1]), _ptr(ev_q[e0:e1]), _ptr(deferred[f0:f1]))
        c0, v0, e0, f0 = c1, v1, e1, f1
    if NE:
        ids = events.add(G[ev_row, :, ev_unit], E[ev_row, ev_unit] - bps[ev_q], stage_no, ev_unit, ev_q,
                         Dg[ev_unit], De[ev_unit])
        if ids[0] != base:
            raise RuntimeError("internal error: split events were registered during a kernel stage")
    return Ragged(x, n, pv, dv, flab, pad=_pad_of(pv)), row, state, deferred

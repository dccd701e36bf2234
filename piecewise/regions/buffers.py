"""The engine's buffers: the cells in flight (:class:`Cells`: a backend's geometry arrays, a parent index, the
sides fixed within the current stage), the table of split events (:class:`Events`: one hyperplane per facet
label) and the packed pattern words (:class:`Packer`)."""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError


class Cells:
    """Cells during enumeration, in buffers with spare capacity (grown by doubling). ``geo`` is the
    backend's list of per-cell arrays (first axis cells; arrays flagged in ``kaxis`` have a vertex axis 1
    that grows as needed, padded with ``pad``); ``n`` = geo[1] is the vertex count. Also ``parent`` (the
    cell at the start of the current stage), ``side`` (per unit and breakpoint of the current stage: the
    side fixed by a split, or -1) and ``lab`` (max-stage labels). Rows ``[:size]`` are live."""

    def __init__(self, geo, kaxis, pad, max_cells: int, bytes_per_cell: float):
        self.kaxis, self.pad, self.max_cells, self.bpc = kaxis, pad, max_cells, bytes_per_cell
        self.geo = list(geo)
        self.rag = None
        self.size = len(geo[1])
        self.parent = np.arange(self.size)
        self.anc = np.arange(self.size)  # the cell at the last re-rooting within the stage
        self.side = np.zeros((self.size, 0), np.int8)
        self.lab = np.zeros((self.size, 0), np.int8)

    def unrag(self):
        """The kernel's ragged cells as the backend's padded geometry."""
        self.geo, self.rag = self.rag.padded(), None

    def live(self, i: int):
        return self.geo[i][: self.size]

    def take(self, idx, K=None):
        """The geometry of cells ``idx``; vertex axes cut to K (the largest count among them) if given."""
        return [a[idx, :K] if (K is not None and ka) else a[idx] for a, ka in zip(self.geo, self.kaxis)]

    def new_stage(self, n_side_cols: int, start=None):
        """Start a stage; ``start``: the rows of the stage's maps (G, E) of the current cells (default:
        their own indices)."""
        s = self.size
        self.geo = [a[:s] for a in self.geo]
        self.parent = np.arange(s) if start is None else np.array(start[:s], np.intp)
        self.anc = np.arange(s)
        self.side = np.full((s, n_side_cols), -1, np.int8)
        self.lab = np.zeros((s, 0), np.int8)

    def reset(self, geo, parent, lab, rag=None):
        """The cells of the next stage: padded geometry ``geo``, or (geo None) the compiled kernel's ragged
        cells ``rag`` (:class:`._ckernel.Ragged`), kept so until :meth:`unrag`."""
        self._check(len(parent))
        self.geo = None if geo is None else list(geo)
        self.rag = rag
        self.parent, self.lab = parent, lab
        self.anc = np.arange(len(parent))
        self.side = np.zeros((len(parent), 0), np.int8)
        self.size = len(parent)

    def _check(self, need: int):
        if need > self.max_cells:
            raise PiecewiseError(
                f"more than max_cells={self.max_cells:,} cells (about {self.bpc / 1e3:.1f} kB each, "
                f"{need * self.bpc / 1e9:.2f} GB): use the grid method (--method grid), a smaller domain, or raise max_cells")

    def _fit(self, *lists):
        """Pad the geometry buffers and the given lists of arrays so their vertex axes agree."""
        out = [list(x) for x in lists]
        for i in range(len(self.geo)):
            if self.kaxis[i]:
                K = max([self.geo[i].shape[1]] + [x[i].shape[1] for x in out])
                if self.geo[i].shape[1] < K:
                    self.geo[i] = _pad_axis1(self.geo[i], K, self.pad[i])
                for x in out:
                    if x[i].shape[1] < K:
                        x[i] = _pad_axis1(x[i], K, self.pad[i])
        return out

    def _reserve(self, extra: int):
        need = self.size + extra
        cap = len(self.geo[1])
        if need <= cap:
            return
        self._check(need)
        cap2 = min(max(need, 2 * cap), max(need, self.max_cells))
        grow = lambda a: np.concatenate([a[: self.size], np.zeros((cap2 - self.size, *a.shape[1:]), a.dtype)])
        self.geo = [grow(a) for a in self.geo]
        self.parent, self.side, self.lab = grow(self.parent), grow(self.side), grow(self.lab)
        self.anc = grow(self.anc)

    def split(self, idx, plus, minus, col: int):
        """Cells ``idx`` become their + pieces; their - pieces are appended. ``col``: the side column."""
        self._reserve(len(idx))
        plus, minus = self._fit(plus, minus)
        a = np.arange(self.size, self.size + len(idx))
        for g, p, m in zip(self.geo, plus, minus):
            g[idx] = p
            g[a] = m
        self.parent[a] = self.parent[idx]
        self.anc[a] = self.anc[idx]
        self.side[a] = self.side[idx]
        self.lab[a] = self.lab[idx]
        self.side[idx, col], self.side[a, col] = 1, 0
        self.size += len(idx)


def _pad_axis1(a, K, value):
    out = np.full((a.shape[0], K, *a.shape[2:]), value, a.dtype)
    out[:, : a.shape[1]] = a
    return out


def concat_geo(parts, kaxis, pad):
    """Concatenate lists of geometry arrays along cells, padding vertex axes."""
    out = []
    for i in range(len(parts[0])):
        arrs = [p[i] for p in parts]
        if kaxis[i]:
            K = max(a.shape[1] for a in arrs)
            arrs = [_pad_axis1(a, K, pad[i]) if a.shape[1] < K else a for a in arrs]
        out.append(np.concatenate(arrs))
    return out


class Events:
    """Hyperplanes ``c.g + e = 0`` of the split events, by label id (>= 0), with what made them (``meta_of``:
    stage, unit, and breakpoint index or max-piece pair), which determines them exactly. Box facets have
    labels ``-1 - i`` (``c_i = -1/2``) and ``-1 - d - i`` (``c_i = 1/2``)."""

    def __init__(self, d: int):
        import threading

        self.d = d
        self.g = np.zeros((0, d))
        self.e = np.zeros(0)
        self.meta = np.zeros((0, 3), np.int64)
        self.dg = np.zeros(0)
        self.de = np.zeros(0)
        self._parts = []
        self.n = 0
        self._lock = threading.Lock()

    def add(self, g, e, stage: int, unit, sub, dg, de) -> np.ndarray:
        """Register hyperplanes (g (P, d), e (P,), with error bounds dg, de of their coefficients) of
        ``stage``'s ``unit`` (P,) and ``sub`` (P,); returns their ids (P,). Thread-safe."""
        P = len(e)
        meta = np.empty((P, 3), np.int64)
        meta[:, 0], meta[:, 1], meta[:, 2] = stage, unit, sub
        dg = np.broadcast_to(np.asarray(dg, np.float64), (P,))
        de = np.broadcast_to(np.asarray(de, np.float64), (P,))
        with self._lock:
            start = self.n
            self.n += P
            self._parts.append((start, np.asarray(g, np.float64), np.asarray(e, np.float64), meta, dg, de))
        return np.arange(start, start + P)

    def finish(self):
        """Move the added parts into the arrays (buffers grown by doubling, so that finishing often, as the
        operator engine does after every chunk, costs only what was added)."""
        with self._lock:
            if self._parts:
                parts = sorted(self._parts, key=lambda t: t[0])
                self._parts = []
                n0 = len(self.e)
                n1 = parts[-1][0] + len(parts[-1][2])
                buf = getattr(self, "_buf", None)
                if buf is None or len(buf[1]) < n1:
                    cap = max(n1, 2 * (0 if buf is None else len(buf[1])), 64)
                    new = [np.empty((cap, self.d)), np.empty(cap), np.empty((cap, 3), np.int64), np.empty(cap),
                           np.empty(cap)]
                    for a, old in zip(new, (self.g, self.e, self.meta, self.dg, self.de)):
                        a[:n0] = old
                    buf = self._buf = new
                for start, *arrs in parts:
                    k = len(arrs[1])
                    for a, x in zip(buf, arrs):
                        a[start:start + k] = x
                self.g, self.e, self.meta, self.dg, self.de = (a[:n1] for a in buf)
        return self

    def meta_of(self, label: int) -> tuple[int, int, int]:
        if label >= len(self.meta):
            self.finish()
        m = self.meta[label]
        return int(m[0]), int(m[1]), int(m[2])

    def plane(self, labels):
        """(g, e) of the given labels (box facets included): (P, d), (P,)."""
        self.finish()
        labels = np.asarray(labels)
        d = self.d
        g = np.zeros((len(labels), d))
        e = np.zeros(len(labels))
        ev = labels >= 0
        g[ev], e[ev] = self.g[labels[ev]], self.e[labels[ev]]
        bi = -1 - labels[~ev]
        gb = np.zeros((len(bi), d))
        gb[np.arange(len(bi)), bi % d] = 1.0
        g[~ev], e[~ev] = gb, np.where(bi >= d, -0.5, 0.5)
        return g, e

    def planes_err(self, labels):
        """(g, e, dg, de) of the given labels (any shape; box facets exact): (..., d), (...), (...), (...)."""
        labels = np.asarray(labels)
        g, e = self.plane(labels.ravel())
        dg, de = np.zeros(labels.size), np.zeros(labels.size)
        ev = labels.ravel() >= 0
        dg[ev], de[ev] = self.dg[labels.ravel()[ev]], self.de[labels.ravel()[ev]]
        sh = labels.shape
        return g.reshape(*sh, self.d), e.reshape(sh), dg.reshape(sh), de.reshape(sh)


class Packer:
    """Packs per-unit states into uint32 words, ``bits`` per unit, in the layout of
    :func:`piecewise.patterns.pack_states` (units counted over all stages; each word is two 16-bit halves of
    ``16 // bits`` units)."""

    def __init__(self, n_units: int, bits: int):
        if bits > 16:
            raise PiecewiseError("too many states per unit to pack (at most 2^16)")
        self.bits, self.ph = bits, 16 // bits
        self.n_words = max(1, -(-n_units // (2 * self.ph)))
        self.offset = 0

    def add(self, words, states):
        """OR the states (C, w) of the next ``w`` units into words (C, n_words) in place."""
        w = states.shape[1]
        if self.bits == 1 and w and len(states):  # unit u is bit u % 32 of word u // 32: pack bytes directly
            o = self.offset
            b = np.zeros((len(states), o % 32 + w), bool)
            np.not_equal(states, 0, out=b[:, o % 32:])
            packed = np.packbits(b, axis=1, bitorder="little")
            nb = -(-packed.shape[1] // 4) * 4
            if nb > packed.shape[1]:
                packed = np.concatenate([packed, np.zeros((len(packed), nb - packed.shape[1]), np.uint8)], 1)
            k0 = o // 32
            words[:, k0:k0 + nb // 4] |= np.ascontiguousarray(packed).view("<u4").astype(np.uint32, copy=False)
            self.offset += w
            return words
        u = self.offset + np.arange(w)
        half, pos = np.divmod(u, self.ph)
        word, shift = np.divmod(half, 2)
        shift = shift * 16 + pos * self.bits
        s = states.astype(np.uint32) << shift.astype(np.uint32)
        for k in np.unique(word):
            words[:, k] |= np.bitwise_or.reduce(s[:, word == k], axis=1)
        self.offset += w
        return words

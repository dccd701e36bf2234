"""Per-activation rules, written once: the slope and constant of each piece of an elementwise activation, the
side a unit identically on a breakpoint takes, and the bits one unit's state needs in a packed pattern. Every
engine (the vertex engine, the graph engine, the compiled kernel's callers, the exact rational arithmetic)
reads them from here."""
from __future__ import annotations

import functools

import numpy as np

from ..activations import Activation


def flat_sides(act: Activation) -> np.ndarray:
    """Side (1 above, 0 below) taken for each breakpoint by a unit identically on it: the state *at* the
    breakpoint, from :meth:`Activation.states` (relu at 0 -> 0; hardtanh at -1 -> above, at 1 -> below)."""
    bps = np.asarray(act.breakpoints, np.float64)
    st = np.asarray(act.states(bps, np))
    return (st > np.arange(len(bps))).astype(np.int8)


@functools.lru_cache(maxsize=None)
def _pieces(act: Activation):
    bps = np.asarray(act.breakpoints, np.float64)
    sl = np.asarray(act.slopes, np.float64)
    reps = np.concatenate([[bps[0] - 1.0], (bps[:-1] + bps[1:]) / 2, [bps[-1] + 1.0]])  # one z per piece
    vals = np.asarray(act(reps, np), np.float64)
    return sl, vals - sl * reps


def piece_tables(act: Activation, width: int, slopes=None) -> tuple[np.ndarray, np.ndarray]:
    """Slope and constant of an elementwise PL activation on each piece: (n_pieces, width) each, so that
    ``act(z) = slope[q] * z + const[q]`` on piece ``q``. ``slopes`` (width,): per-unit negative slopes
    (PReLU). Constants come from the activation itself (continuity), not from hard-coded values."""
    sl, const = _pieces(act)
    S = np.repeat(sl[:, None], width, 1)
    K = np.repeat(const[:, None], width, 1)
    if slopes is not None:
        S[0] = np.asarray(slopes, np.float64)  # leaky_relu: piece 0 is the negative side, constant 0
    return S, K


def state_bits(st) -> int:
    """Bits of one unit's state in a packed pattern: a stage of maxout / max-pool rank k (``st.groups``), or an
    elementwise activation with ``n_states`` pieces."""
    k = st.groups.shape[1] if st.groups is not None else st.activation.n_states
    return max(1, (k - 1).bit_length())

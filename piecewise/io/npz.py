"""The .npz weights contract.

Arrays ``W0, b0, W1, b1, ..., WL, bL``. ``Wi`` is (fan_in, fan_out) and ``bi`` (fan_out,); for maxout
hidden layers ``Wi`` is (fan_in, fan_out, k) and ``bi`` (fan_out, k). Forward: ``h = act(h @ Wi + bi)``
for every pair but the last; the last pair is the linear output layer. Optional: a 0-d string array
``activation`` (e.g. ``"leaky_relu:0.1"``), written by :func:`save_npz`; when present it is the network's
activation, and asking for a different one is an error.

:func:`load_npz` validates names, shapes, dtypes and finiteness and raises :class:`PiecewiseError` with a
one-line message naming the problem. Loaded arrays are float64 NumPy arrays (exact work needs them).
"""
from __future__ import annotations

import os
import re
import zipfile

import numpy as np

from ..activations import Activation, get_activation
from ..errors import PiecewiseError
from ..nets import MLP, Params, check_params

_NAME = re.compile(r"^([Wb])(\d+)$")


def save_npz(path: "str | os.PathLike", params: Params, activation: "str | Activation | MLP | None" = None) -> None:
    """Write params (a tuple of (W, b) pairs) to ``path`` in the .npz contract. ``activation`` (a name, an
    :class:`Activation` or the :class:`MLP` spec) is stored with them, so readers need not be told."""
    if isinstance(params, MLP):
        raise PiecewiseError("save_npz(path, params, activation): params come second (got the MLP spec there)")
    arrays = {}
    if activation is not None:
        act = activation.activation if isinstance(activation, MLP) else get_activation(activation)
        arrays["activation"] = np.array(act.spec)
    for i, (W, b) in enumerate(params):
        arrays[f"W{i}"] = np.asarray(W)
        arrays[f"b{i}"] = np.asarray(b)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def params_from_arrays(arrays: dict, activation: "str | Activation | None" = None,
                       source: str = "weights") -> tuple[MLP, Params]:
    """Validate a dict of contract arrays and build (spec, params). See :func:`load_npz`."""
    layers: dict[int, dict[str, np.ndarray]] = {}
    for name, arr in arrays.items():
        m = _NAME.match(name)
        if not m:
            raise PiecewiseError(f"{source}: unexpected array {name!r} (expected only W0, b0, W1, b1, ...)")
        layers.setdefault(int(m.group(2)), {})[m.group(1)] = arr
    if not layers:
        raise PiecewiseError(f"{source}: no arrays W0, b0, ... found")
    n = max(layers) + 1
    params = []
    for i in range(n):
        for kind in "Wb":
            if kind not in layers.get(i, {}):
                raise PiecewiseError(f"{source}: missing array {kind}{i}")
        W, b = layers[i]["W"], layers[i]["b"]
        for kind, a in (("W", W), ("b", b)):
            if a.dtype.kind not in "fiu":
                raise PiecewiseError(f"{source}: {kind}{i} has dtype {a.dtype}, expected a real number type")
        W = W.astype(np.float64)
        b = b.astype(np.float64)
        for kind, a in (("W", W), ("b", b)):
            if not np.all(np.isfinite(a)):
                raise PiecewiseError(f"{source}: {kind}{i} contains NaN or inf")
            if a.size == 0:
                raise PiecewiseError(f"{source}: {kind}{i} is empty (shape {a.shape})")
        params.append((W, b))

    hidden = params[:-1]
    ranks = {W.shape[2] for W, _ in hidden if W.ndim == 3}
    if any(W.ndim not in (2, 3) for W, _ in params):
        bad = next(i for i, (W, _) in enumerate(params) if W.ndim not in (2, 3))
        raise PiecewiseError(f"{source}: W{bad} has {params[bad][0].ndim} dimensions, expected 2 (or 3 for maxout)")
    if params[-1][0].ndim != 2:
        raise PiecewiseError(f"{source}: the output layer W{n - 1} must be 2-D (fan_in, fan_out), got shape "
                             f"{params[-1][0].shape}")
    if len(ranks) > 1:
        raise PiecewiseError(f"{source}: maxout layers disagree on the rank k: {sorted(ranks)}")
    rank = ranks.pop() if ranks else None
    if rank is not None and any(W.ndim == 2 for W, _ in hidden):
        raise PiecewiseError(f"{source}: some hidden layers are 3-D (maxout) and some 2-D")
    if activation is None:
        activation = "maxout" if rank is not None else "relu"
    act = get_activation(activation, rank=rank)
    if act.is_maxout and rank is None:
        raise PiecewiseError(f"{source}: activation maxout needs 3-D hidden weights (fan_in, fan_out, k)")
    if not act.is_maxout and rank is not None:
        raise PiecewiseError(f"{source}: 3-D hidden weights need --activation maxout, got {act}")

    n_in = params[0][0].shape[0]
    widths = tuple(W.shape[1] for W, _ in hidden)
    net = MLP(n_in, widths, params[-1][0].shape[1], act)
    for i in range(1, n):
        if params[i][0].shape[0] != params[i - 1][0].shape[1]:
            raise PiecewiseError(f"{source}: shape mismatch: W{i - 1} has {params[i - 1][0].shape[1]} outputs "
                                 f"but W{i} expects {params[i][0].shape[0]} inputs")
    try:
        check_params(net, params)  # names the offending bias shape
    except PiecewiseError as e:
        raise PiecewiseError(f"{source}: {e}") from None
    return net, tuple(params)


def load_npz(path: "str | os.PathLike", activation: "str | Activation | None" = None) -> tuple[MLP, Params]:
    """Read a weights file. Returns (spec, params) with float64 NumPy params.

    ``activation``: the file's stored activation when it has one (asking for a different one raises
    :class:`PiecewiseError`); otherwise relu (maxout when the hidden weights are 3-D).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise PiecewiseError(f"weights file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise PiecewiseError(f"cannot read {path} as .npz: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy holds one array, not the named W0, b0, ...
        raise PiecewiseError(f"{path} holds a single array (.npy), not a .npz archive of W0, b0, W1, b1, ...")
    try:
        with data as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise PiecewiseError(f"cannot read {path} as .npz: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    source = os.path.basename(path)
    if "activation" in arrays:
        activation = _stored_activation(arrays.pop("activation"), activation, arrays, source)
    return params_from_arrays(arrays, activation, source=source)


def _stored_activation(arr: np.ndarray, asked, arrays: dict, source: str) -> Activation:
    """The activation stored in a weights file, checked against the one asked for (if any)."""
    if arr.ndim != 0 or arr.dtype.kind != "U":
        raise PiecewiseError(f"{source}: 'activation' must be a 0-d string array, got dtype {arr.dtype} shape {arr.shape}")
    rank = next((a.shape[2] for k, a in arrays.items() if k.startswith("W") and a.ndim == 3), None)
    try:
        stored = get_activation(str(arr[()]), rank=rank)
    except PiecewiseError as e:
        raise PiecewiseError(f"{source}: stored activation: {e}") from None
    if asked is not None and get_activation(asked, rank=rank) != stored:
        raise PiecewiseError(f"{source} stores activation {stored.spec} but {asked} was asked for "
                             f"(drop --activation or use {stored.spec})")
    return stored

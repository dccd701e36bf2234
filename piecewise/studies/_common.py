"""Shared pieces of the studies: a ``lax.scan`` trainer that records a probe over training, JSON and
figure helpers.

The trainer takes any loss ``params -> scalar`` (a closure over the data) and any probe
``params -> array`` (e.g. the network output on the training grid); it runs ``record_every`` optimizer steps
inside one ``lax.scan``, records the probe, and repeats, with one host sync per block of records (so a
progress bar can advance). Like :func:`piecewise.train.fit`, but for models that are not MLP specs and for
curves recorded densely over training.
"""
from __future__ import annotations

import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import PiecewiseError


def train_scan(loss, params, optimizer: optax.GradientTransformation, *, steps: int, record_every: int | None = None,
               probe=None, progress: bool | None = None, desc: str = "training") -> dict:
    """Full-batch training of ``params`` on ``loss(params) -> scalar``.

    Returns ``{"params", "steps" (n_rec + 1,) int, "loss" (n_rec + 1,) float, "probe" (n_rec + 1, ...)}``
    with record 0 the initial state; ``steps`` must be a multiple of ``record_every`` (default: ``steps``).
    ``progress``: False hides the bar, None/True shows it (tqdm).
    """
    every = int(record_every or steps)
    if steps < 1 or every < 1 or steps % every:
        raise PiecewiseError(f"steps ({steps}) must be a positive multiple of record_every ({every})")
    n_rec = steps // every
    probe = probe if probe is not None else (lambda p: jnp.zeros(()))
    block = max(1, math.ceil(n_rec / 25))  # ~25 host syncs at most

    @jax.jit
    def one(p):
        return loss(p), probe(p)

    def run_block(p, s, k):
        def inner(carry, _):
            q, st = carry
            val, g = jax.value_and_grad(loss)(q)
            upd, st = optimizer.update(g, st, q)
            return (optax.apply_updates(q, upd), st), val

        def outer(carry, _):
            carry, _ = jax.lax.scan(inner, carry, None, length=every)
            return carry, (loss(carry[0]), probe(carry[0]))

        return jax.lax.scan(outer, (p, s), None, length=k)

    run_block = jax.jit(run_block, static_argnums=2)
    state = optimizer.init(params)
    l0, p0 = one(params)
    losses, probes = [np.asarray(l0)[None]], [np.asarray(p0)[None]]
    from tqdm.auto import tqdm

    done = 0
    with tqdm(total=steps, desc=desc, unit="step", leave=False, disable=progress is False) as bar:
        while done < n_rec:
            k = min(block, n_rec - done)
            (params, state), (ls, ps) = run_block(params, state, k)
            losses.append(np.asarray(ls))
            probes.append(np.asarray(ps))  # one host sync per block
            done += k
            bar.update(k * every)
    return {"params": params, "steps": np.arange(n_rec + 1) * every, "loss": np.concatenate(losses),
            "probe": np.concatenate(probes)}


def to_json(obj):
    """numpy/jax scalars and arrays -> plain Python (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        return to_json(np.asarray(obj).tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def out_path(out: str, name: str) -> str:
    os.makedirs(out, exist_ok=True)
    return os.path.join(out, name)


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return round(time.perf_counter() - self.t0, 2)

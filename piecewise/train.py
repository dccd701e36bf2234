"""Training loops with optax: ``lax.scan`` over steps, one host sync per chunk of steps.

Example::

    >>> import jax, optax, piecewise as pw
    >>> X, y = pw.datasets.playground("circle", 200)
    >>> net = pw.mlp(2, (8, 8), 2)
    >>> params = net.init(key=jax.random.key(0))
    >>> run = pw.train.fit(net, params, X, y, optax.adam(1e-2), steps=200, checkpoints=4)
    >>> [c["step"] for c in run]
    [0, 50, 100, 150, 200]
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .errors import PiecewiseError
from .nets import MLP, Params


def loss_fn(net: MLP, params: Params, X, y, kind: str):
    """``xent``: softmax cross-entropy with integer labels (n_out classes); ``mse``: mean squared error."""
    out = net.apply(params, X)
    if kind == "xent":
        return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
    return jnp.mean((out - y.reshape(out.shape)) ** 2)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _chunk(net, opt, kind, n_steps, params, state, X, y):
    def step(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(lambda q: loss_fn(net, q, X, y, kind))(p)
        updates, s = opt.update(g, s, p)
        return (optax.apply_updates(p, updates), s), loss

    (params, state), losses = jax.lax.scan(step, (params, state), None, length=n_steps)
    return params, state, losses


def fit(net: MLP, params: Params, X, y, optimizer: optax.GradientTransformation, *, steps: int,
        checkpoints: int = 1, loss: str | None = None) -> list[dict]:
    """Full-batch training. Returns ``checkpoints + 1`` records ``{"step", "params", "loss"}`` (step 0 =
    the initial params), evenly spaced; the loss is the one at that step. ``loss`` defaults to ``xent``
    for integer labels with n_out >= 2, else ``mse``."""
    X = jnp.asarray(X, jnp.float32)
    y = jnp.asarray(y)
    kind = loss or ("xent" if jnp.issubdtype(y.dtype, jnp.integer) and net.n_out >= 2 else "mse")
    if kind not in ("xent", "mse"):
        raise PiecewiseError(f"unknown loss {kind!r}: xent or mse")
    if steps < 1 or checkpoints < 1 or steps % checkpoints:
        raise PiecewiseError(f"steps ({steps}) must be a positive multiple of checkpoints ({checkpoints})")
    if kind == "mse":
        y = y.astype(jnp.float32)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
    state = optimizer.init(params)
    every = steps // checkpoints
    records = [{"step": 0, "params": params, "loss": float(loss_fn(net, params, X, y, kind))}]
    for c in range(checkpoints):
        params, state, losses = _chunk(net, optimizer, kind, every, params, state, X, y)
        records.append({"step": (c + 1) * every, "params": params,
                        "loss": float(loss_fn(net, params, X, y, kind))})  # one host sync per chunk
    return records


def accuracy(net: MLP, params: Params, X, y, threshold: float | None = None) -> float:
    """Fraction of correct predictions (:func:`piecewise.decision.predict`: argmax for n_out >= 2, output
    above ``threshold`` (default :data:`piecewise.decision.THRESHOLD`, 0.5) against 0/1 labels for n_out = 1)."""
    from .decision import THRESHOLD, predict

    out = np.asarray(net.apply(params, jnp.asarray(X, jnp.float32)))
    pred = predict(out, THRESHOLD if threshold is None else threshold)
    return float(np.mean(pred == np.asarray(y)))

"""Any piecewise-linear network as a graph of affine, activation, max and add/concat nodes.

A :class:`Graph` is a list of :class:`Node` in topological order; node 0 is the input. Every node's value is
a tensor of a fixed ``shape`` (no batch axis; images are (C, H, W), feature vectors (n,)). Node kinds:

=============== ================================================================================================
affine          ``dense`` (last axis: ``x @ W + b``), ``conv`` (2-D: stride, padding, dilation, groups),
                ``avgpool`` (padding, ``count_include_pad``, ``ceil_mode``), ``global_avgpool``, ``scale_shift``
                (``x * a + c`` with constants broadcast to the node's shape: batch-norm in inference mode,
                constant add / sub / mul / div), ``reshape`` (flatten), ``gather`` (a fixed permutation or
                selection of the flattened input: transpose), ``const``
multi-input     ``add`` (``sum_i coef_i x_i``: residual adds), ``concat`` (along a non-batch axis)
activation      ``act`` elementwise: relu, leaky_relu (one slope, or per unit / per channel: PReLU), abs,
                clip(lo, hi) (hardtanh with any bounds; a one-sided clip is a shifted relu)
max             ``max``: ``y[i] = max_r x_flat[groups[i, r]]`` (max-pool with overlapping windows and padding,
                maxout)
=============== ================================================================================================

Build one with :class:`GraphBuilder` (or an importer in :mod:`piecewise.io`). Evaluation:

* :meth:`Graph.forward` -- float64 NumPy, points ``x`` (..., n_in) *flattened in C order* -> (..., n_out);
* :meth:`Graph.apply` -- JAX, jit-compiled once per graph *structure* (a Graph is a pytree: its float arrays
  are the leaves, passed as arguments; ops, shapes and index tables are static, :mod:`piecewise._pytree`), so
  a new graph of the same shapes (a checkpoint) reuses the compilation; float32 or float64 following ``x``;
* :meth:`Graph.to_staged` -- the exact engine's view (:class:`piecewise.staged.StagedNet`): every affine node
  is composed away, each ``act``/``max`` node becomes one stage whose pre-activation is affine in the input
  and earlier stages' outputs. Stage order = node order, so the activation pattern of a point is the
  concatenation of the act/max nodes' states in node order. Clip nodes are rescaled to hardtanh (the stage's
  pre-activation is ``(2 z - hi - lo) / (hi - lo)``, its output mapped back by the next affine map); a
  one-sided clip becomes relu (``max(z, lo) = lo + relu(z - lo)``, ``min(z, hi) = hi - relu(hi - z)``). A max
  over a single element is a selection (affine, no stage).

The matrices of the staged form are dense: (size of the source, size of the stage) float64. That suits the
small CNNs and residual nets whose regions are counted exactly; a large image net would need gigabytes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from . import _pytree
from .activations import abs_, hardtanh, leaky_relu, maxout, relu
from .errors import PiecewiseError
from .staged import Stage, StagedNet

AFFINE_OPS = ("dense", "conv", "avgpool", "global_avgpool", "scale_shift", "reshape", "gather")


@dataclass(frozen=True, eq=False)
class Node:
    """One node: ``op`` (see the module docstring), ``inputs`` (indices of earlier nodes), output ``shape``
    (no batch axis), ``attrs`` (float64 / int64 NumPy arrays and Python scalars) and a ``name``."""

    op: str
    inputs: tuple
    shape: tuple
    attrs: dict = field(default_factory=dict, repr=False)
    name: str = ""

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class Graph:
    """A PL network graph (module docstring). ``nodes[0]`` is the input, ``output`` the output node's index."""

    nodes: tuple
    output: int

    @property
    def input_shape(self) -> tuple:
        return self.nodes[0].shape

    @property
    def output_shape(self) -> tuple:
        return self.nodes[self.output].shape

    @property
    def n_in(self) -> int:
        return self.nodes[0].size

    @property
    def n_out(self) -> int:
        return self.nodes[self.output].size

    @property
    def nonlinear_nodes(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.op in ("act", "max")]

    def summary(self) -> str:
        """One line per node: index, op, inputs, shape, name."""
        return "\n".join(f"{i:3d} {n.op:14s} {list(n.inputs)!s:10s} {n.shape} {n.name}" for i, n in enumerate(self.nodes))

    # -- evaluation ----------------------------------------------------------------------------------------
    def _run(self, x, xp, keep_pre=False):
        lead = x.shape[:-1]
        if x.shape[-1] != self.n_in:
            raise PiecewiseError(f"points have {x.shape[-1]} coordinates, the network has {self.n_in} inputs")
        vals = [x.reshape((-1, *self.input_shape))]
        pre = []
        for node in self.nodes[1:]:
            ins = [vals[i] for i in node.inputs]
            if keep_pre and node.op in ("act", "max"):
                pre.append(ins[0].reshape(ins[0].shape[0], -1))
            vals.append(_eval(node, ins, xp, True, vals[0].shape[0]))
        y = vals[self.output].reshape((*lead, self.n_out))
        return y, [p.reshape((*lead, p.shape[-1])) for p in pre]

    def forward(self, x) -> np.ndarray:
        """Float64 NumPy forward pass: x (..., n_in) flattened inputs (C order) -> (..., n_out)."""
        return self._run(np.asarray(x, np.float64), np)[0]

    def __call__(self, x):
        return self.forward(x)

    def preactivations(self, x) -> list[np.ndarray]:
        """Float64 inputs of every act/max node, flattened: one (..., size) array per node, in node order."""
        return self._run(np.asarray(x, np.float64), np, keep_pre=True)[1]

    def apply(self, x):
        """JAX forward pass (jit-compiled once per structure): x (..., n_in) float32/float64 -> (..., n_out)."""
        return _jax_apply(self, jnp.asarray(x))

    # -- lowering ------------------------------------------------------------------------------------------
    def to_staged(self) -> StagedNet:
        """The :class:`~piecewise.staged.StagedNet` of this graph (float64; see the module docstring). Cached."""
        cached = self.__dict__.get("_staged")
        if cached is None:
            cached = _lower(self)
            object.__setattr__(self, "_staged", cached)
        return cached


@jax.jit
def _jax_apply(g: Graph, x):  # g a pytree: compiled once per structure, its weights are arguments
    return g._run(x, jnp)[0]


# -- a pytree: float arrays of the attributes are the leaves, the rest is static (piecewise._pytree) ----------
def _is_leaf(v) -> bool:
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"


def _flatten(g: Graph):
    leaves, nodes = [], []
    for nd in g.nodes:
        keys = tuple(sorted(k for k, v in nd.attrs.items() if _is_leaf(v)))
        rest = {k: v for k, v in nd.attrs.items() if k not in keys}
        leaves += [nd.attrs[k] for k in keys]
        nodes.append((nd.op, nd.inputs, nd.shape, nd.name, keys, _pytree.Frozen(rest)))
    return leaves, (g.output, tuple(nodes))


def _unflatten(aux, leaves, cls=None):
    output, nodes_aux = aux
    it = iter(leaves)
    nodes = []
    for op, inputs, shape, name, keys, rest in nodes_aux:
        attrs = dict(rest.value)
        attrs.update({k: next(it) for k in keys})
        nodes.append(Node(op, inputs, shape, attrs, name))
    g = object.__new__(cls or Graph)
    object.__setattr__(g, "nodes", tuple(nodes))
    object.__setattr__(g, "output", output)
    return g


_pytree.add(Graph, lambda g: _pytree.flat(g, _flatten), _unflatten)


# ---------------------------------------------------------------------------------------------------------
# node evaluation: one xp-generic implementation (NumPy float64 and jax.numpy), batch axis first
def _c(a, xp, like):
    """A constant as an array of ``like``'s dtype."""
    return xp.asarray(a, dtype=like.dtype)


def _ix(idx, xp):
    """Index arrays as int32 for jax.numpy (its gathers want one index dtype whatever x64 says)."""
    return idx if xp is np else np.asarray(idx, np.int32)


def _gather_flat(x, idx, xp):
    """x (B, ...) flattened with a trailing zero (index ``size`` reads 0), gathered at idx."""
    xf = x.reshape(x.shape[0], -1)
    xf = xp.concatenate([xf, xp.zeros((xf.shape[0], 1), xf.dtype)], axis=1)
    return xf[:, _ix(idx, xp)]


def _eval(node: Node, ins, xp, bias: bool, batch: int):
    """Value of ``node`` (B, *shape) from its inputs' values. ``bias=False``: the linear part only (affine
    nodes; used by the lowering)."""
    a = node.attrs
    op = node.op
    B = batch
    if op == "const":
        v = a["value"] if bias else np.zeros(node.shape)
        return xp.broadcast_to(xp.asarray(v, dtype=xp.float64 if xp is np else jnp.result_type(float)), (B, *node.shape))
    x = ins[0]
    if op == "dense":
        y = x @ _c(a["W"], xp, x)
        return y + _c(a["b"], xp, x) if bias and a.get("b") is not None else y
    if op == "conv":
        g, P, K = a["idx"].shape
        patches = _gather_flat(x, a["idx"], xp)  # (B, g, P, K)
        W = a["W"]
        Wr = _c(W.reshape(g, W.shape[0] // g, K), xp, x)
        y = xp.einsum("bgpk,gok->bgop", patches, Wr).reshape((B, *node.shape))
        if bias and a.get("b") is not None:
            y = y + _c(a["b"], xp, x)[:, None, None]
        return y
    if op == "avgpool":
        y = _gather_flat(x, a["idx"], xp).sum(-1) * _c(1.0 / a["div"], xp, x)
        return y.reshape((B, *node.shape))
    if op == "global_avgpool":
        return x.reshape(B, x.shape[1], -1).mean(-1).reshape((B, *node.shape))
    if op == "scale_shift":
        y = x * _c(a["scale"], xp, x)
        return y + _c(a["shift"], xp, x) if bias else y
    if op == "reshape":
        return x.reshape((B, *node.shape))
    if op == "gather":
        return x.reshape(B, -1)[:, _ix(a["idx"], xp)].reshape((B, *node.shape))
    if op == "add":
        y = None
        for c, v in zip(a["coefs"], ins):
            t = v * c if c != 1.0 else v
            y = t if y is None else y + t
        return y
    if op == "concat":
        return xp.concatenate(ins, axis=a["axis"] + 1)
    if op == "act":
        kind = a["kind"]
        if kind == "relu":
            return xp.maximum(x, 0)
        if kind == "abs":
            return xp.abs(x)
        if kind == "leaky":
            return xp.where(x > 0, x, _c(a["slopes"], xp, x) * x)
        if kind == "clip":
            return xp.minimum(xp.maximum(x, _c(a["lo"], xp, x)), _c(a["hi"], xp, x))
        raise AssertionError(kind)
    if op == "max":
        return x.reshape(B, -1)[:, _ix(a["groups"], xp)].max(-1).reshape((B, *node.shape))
    raise AssertionError(op)


# ---------------------------------------------------------------------------------------------------------
# index tables of convolution and pooling windows
def _out_len(n, k, s, p0, p1, d, ceil_mode=False):
    span = n + p0 + p1 - d * (k - 1) - 1
    if span < 0:
        raise PiecewiseError(f"window of size {k} (dilation {d}) does not fit an input of length {n} with padding {p0}+{p1}")
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p0:  # the last window must start inside the input or the left padding
        o -= 1
    return o


def _windows(C, H, W, k, s, pads, d, ceil_mode=False):
    """Flat indices (C, Ho, Wo, kh, kw) into a (C, H, W) tensor, ``C*H*W`` (the zero slot) for padding, plus
    masks of the positions inside the padded extent and inside the input."""
    (kh, kw), (sh, sw), (dh, dw) = k, s, d
    pt, pl, pb, pr = pads
    Ho = _out_len(H, kh, sh, pt, pb, dh, ceil_mode)
    Wo = _out_len(W, kw, sw, pl, pr, dw, ceil_mode)
    ih = (np.arange(Ho) * sh)[:, None] + np.arange(kh) * dh - pt  # (Ho, kh)
    iw = (np.arange(Wo) * sw)[:, None] + np.arange(kw) * dw - pl
    inside = ((ih >= 0) & (ih < H))[:, None, :, None] & ((iw >= 0) & (iw < W))[None, :, None, :]  # (Ho, Wo, kh, kw)
    padded = ((ih >= -pt) & (ih < H + pb))[:, None, :, None] & ((iw >= -pl) & (iw < W + pr))[None, :, None, :]
    flat = np.clip(ih, 0, H - 1)[:, None, :, None] * W + np.clip(iw, 0, W - 1)[None, :, None, :]
    idx = np.arange(C)[:, None, None, None, None] * (H * W) + flat[None]
    idx = np.where(inside[None], idx, C * H * W)
    return idx.astype(np.int64), inside, padded, (Ho, Wo)


def _pair(v, name):
    v = (v, v) if np.ndim(v) == 0 else tuple(v)
    if len(v) != 2:
        raise PiecewiseError(f"{name} must have 2 entries (2-D), got {v}")
    return tuple(int(t) for t in v)


def _pads(p):
    """Padding as (top, left, bottom, right) from an int, (ph, pw) or the 4-tuple itself."""
    if np.ndim(p) == 0:
        return (int(p),) * 4
    p = tuple(int(t) for t in p)
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    if len(p) == 4:
        return p
    raise PiecewiseError(f"padding must have 1, 2 or 4 entries, got {p}")


# ---------------------------------------------------------------------------------------------------------
class GraphBuilder:
    """Build a :class:`Graph` node by node; every method returns the new node's index.

    Example (a tiny CNN)::

        gb = GraphBuilder((1, 8, 8))
        h = gb.conv(gb.input, W1, b1, padding=1)     # W1 (4, 1, 3, 3)
        h = gb.max_pool(gb.relu(h), 2)
        h = gb.dense(gb.flatten(h), W2, b2)          # W2 (64, 10): (in, out)
        net = gb.build(h)
    """

    def __init__(self, input_shape):
        shape = (int(input_shape),) if np.ndim(input_shape) == 0 else tuple(int(s) for s in input_shape)
        if not shape or any(s < 1 for s in shape):
            raise PiecewiseError(f"input shape must be positive, got {input_shape}")
        self.nodes = [Node("input", (), shape, {}, "input")]
        self.input = 0

    def shape(self, i: int) -> tuple:
        return self.nodes[i].shape

    def _add(self, op, inputs, shape, attrs=None, name=""):
        for i in inputs:
            if not (0 <= i < len(self.nodes)):
                raise PiecewiseError(f"{op}: unknown input node {i}")
        self.nodes.append(Node(op, tuple(int(i) for i in inputs), tuple(int(s) for s in shape), attrs or {}, name))
        return len(self.nodes) - 1

    def build(self, output: int) -> Graph:
        if not (0 <= output < len(self.nodes)):
            raise PiecewiseError(f"unknown output node {output}")
        return Graph(tuple(self.nodes), int(output))

    # -- affine ----------------------------------------------------------------------------------------------
    def const(self, value, name=""):
        v = np.asarray(value, np.float64)
        _finite(v, name or "constant")
        return self._add("const", (), v.shape, {"value": v}, name)

    def dense(self, x, W, b=None, name=""):
        """``x @ W + b`` on the last axis. W is (in, out) -- PyTorch's ``nn.Linear.weight`` is (out, in):
        pass its transpose."""
        W = np.asarray(W, np.float64)
        s = self.shape(x)
        if W.ndim != 2 or W.shape[0] != s[-1]:
            raise PiecewiseError(f"dense {name}: weight of shape {W.shape} does not fit an input of shape {s} "
                                 f"(expected ({s[-1]}, out); PyTorch's Linear.weight is (out, in): transpose it)")
        b = None if b is None else np.asarray(b, np.float64).reshape(-1)
        if b is not None and b.shape != (W.shape[1],):
            raise PiecewiseError(f"dense {name}: bias of shape {b.shape}, expected ({W.shape[1]},)")
        _finite(W, name or "dense weight")
        _finite(b, name or "dense bias")
        return self._add("dense", (x,), (*s[:-1], W.shape[1]), {"W": W, "b": b}, name)

    def conv(self, x, W, b=None, stride=1, padding=0, dilation=1, groups=1, name=""):
        """2-D convolution (cross-correlation, as in PyTorch/ONNX) of x (C, H, W) with W (O, C/groups, kh, kw).
        ``padding``: int, (ph, pw) or (top, left, bottom, right)."""
        W = np.asarray(W, np.float64)
        s = self.shape(x)
        if len(s) != 3:
            raise PiecewiseError(f"conv {name}: input must be (C, H, W), got shape {s}")
        C, H, Wd = s
        g = int(groups)
        if W.ndim != 4 or g < 1 or C % g or W.shape[0] % g or W.shape[1] * g != C:
            raise PiecewiseError(f"conv {name}: weight {W.shape} with groups={g} does not fit {C} input channels")
        b = None if b is None else np.asarray(b, np.float64).reshape(-1)
        if b is not None and b.shape != (W.shape[0],):
            raise PiecewiseError(f"conv {name}: bias of shape {b.shape}, expected ({W.shape[0]},)")
        _finite(W, name or "conv weight")
        _finite(b, name or "conv bias")
        idx, _, _, (Ho, Wo) = _windows(C, H, Wd, W.shape[2:], _pair(stride, "stride"), _pads(padding),
                                       _pair(dilation, "dilation"))
        Cg = C // g
        # (C, Ho, Wo, kh, kw) -> (g, Cg, P, kk) -> (g, P, Cg * kk): matches W.reshape(g, O/g, Cg * kh * kw)
        idx = idx.reshape(g, Cg, Ho * Wo, -1).transpose(0, 2, 1, 3).reshape(g, Ho * Wo, -1)
        attrs = {"W": W, "b": b, "idx": idx, "stride": _pair(stride, "stride"), "pads": _pads(padding),
                 "dilation": _pair(dilation, "dilation"), "groups": g}
        return self._add("conv", (x,), (W.shape[0], Ho, Wo), attrs, name)

    def avg_pool(self, x, kernel, stride=None, padding=0, count_include_pad=True, ceil_mode=False, name=""):
        s = self.shape(x)
        if len(s) != 3:
            raise PiecewiseError(f"average pool {name}: input must be (C, H, W), got shape {s}")
        k = _pair(kernel, "kernel")
        idx, inside, padded, (Ho, Wo) = _windows(*s, k, _pair(k if stride is None else stride, "stride"), _pads(padding),
                                                 (1, 1), ceil_mode)
        div = (padded if count_include_pad else inside).sum((-1, -2)).astype(np.float64)  # (Ho, Wo)
        return self._add("avgpool", (x,), (s[0], Ho, Wo),
                         {"idx": idx.reshape(s[0], Ho, Wo, -1), "div": np.broadcast_to(div, (s[0], Ho, Wo)).copy()}, name)

    def global_avg_pool(self, x, name=""):
        s = self.shape(x)
        if len(s) < 2:
            raise PiecewiseError(f"global average pool {name}: input must be (C, H, W), got shape {s}")
        return self._add("global_avgpool", (x,), (s[0],) + (1,) * (len(s) - 1), {}, name)

    def scale_shift(self, x, scale=1.0, shift=0.0, name=""):
        """``x * scale + shift`` with constants broadcast (NumPy rules) to x's shape."""
        s = self.shape(x)
        try:
            a = np.broadcast_to(np.asarray(scale, np.float64), s).copy()
            c = np.broadcast_to(np.asarray(shift, np.float64), s).copy()
        except ValueError:
            raise PiecewiseError(f"{name or 'scale/shift'}: constants of shape {np.shape(scale)}, {np.shape(shift)} "
                                 f"do not broadcast to the tensor's shape {s}") from None
        _finite(a, name or "scale")
        _finite(c, name or "shift")
        return self._add("scale_shift", (x,), s, {"scale": a, "shift": c}, name)

    def batch_norm(self, x, gamma, beta, mean, var, eps=1e-5, name=""):
        """Batch-norm in inference mode over the channel axis (the first axis of x's shape)."""
        s = self.shape(x)
        g, b, m, v = (np.asarray(t, np.float64).reshape(-1) for t in (gamma, beta, mean, var))
        if not all(t.shape == (s[0],) for t in (g, b, m, v)):
            raise PiecewiseError(f"batch norm {name}: parameters must have {s[0]} entries (one per channel)")
        if np.any(v + eps <= 0):
            raise PiecewiseError(f"batch norm {name}: variance + eps must be positive")
        a = g / np.sqrt(v + eps)
        tail = (1,) * (len(s) - 1)
        return self.scale_shift(x, a.reshape(-1, *tail), (b - m * a).reshape(-1, *tail), name)

    def reshape(self, x, shape, name=""):
        shape = tuple(int(t) for t in shape)
        n = self.nodes[x].size
        if -1 in shape:
            rest = int(np.prod([t for t in shape if t != -1]))
            if shape.count(-1) > 1 or rest == 0 or n % rest:
                raise PiecewiseError(f"reshape {name}: cannot reshape {self.shape(x)} to {shape}")
            shape = tuple(n // rest if t == -1 else t for t in shape)
        if int(np.prod(shape)) != n or any(t < 1 for t in shape):
            raise PiecewiseError(f"reshape {name}: cannot reshape {self.shape(x)} (size {n}) to {shape}")
        return self._add("reshape", (x,), shape, {}, name)

    def flatten(self, x, name=""):
        return self.reshape(x, (self.nodes[x].size,), name)

    def transpose(self, x, perm, name=""):
        """Permute the (non-batch) axes of x."""
        s = self.shape(x)
        perm = tuple(int(p) for p in perm)
        if sorted(perm) != list(range(len(s))):
            raise PiecewiseError(f"transpose {name}: {perm} is not a permutation of {len(s)} axes")
        idx = np.arange(int(np.prod(s))).reshape(s).transpose(perm).reshape(-1)
        return self._add("gather", (x,), tuple(s[p] for p in perm), {"idx": idx}, name)

    def select(self, x, idx, shape, name=""):
        """y (shape) = x_flat[idx]: any fixed selection / permutation of entries."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        if idx.size != int(np.prod(shape)) or (idx.size and (idx.min() < 0 or idx.max() >= self.nodes[x].size)):
            raise PiecewiseError(f"select {name}: bad indices for an input of size {self.nodes[x].size}")
        return self._add("gather", (x,), tuple(shape), {"idx": idx}, name)

    def add(self, *xs, coefs=None, name=""):
        """``sum_i coefs[i] * xs[i]`` of tensors of one shape (residual adds; ``coefs`` default all 1)."""
        coefs = (1.0,) * len(xs) if coefs is None else tuple(float(c) for c in coefs)
        shapes = {self.shape(i) for i in xs}
        if len(shapes) != 1 or len(coefs) != len(xs) or not xs:
            raise PiecewiseError(f"add {name}: operands must have one shape, got {sorted(shapes)}")
        return self._add("add", xs, shapes.pop(), {"coefs": coefs}, name)

    def concat(self, xs, axis=0, name=""):
        """Concatenate along a non-batch axis (0 = channels of (C, H, W))."""
        shapes = [self.shape(i) for i in xs]
        r = len(shapes[0])
        ax = axis + r if axis < 0 else axis
        if not (0 <= ax < r) or any(len(s) != r or s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:] for s in shapes):
            raise PiecewiseError(f"concat {name}: shapes {shapes} do not concatenate on axis {axis}")
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        return self._add("concat", xs, out, {"axis": ax}, name)

    # -- activations -----------------------------------------------------------------------------------------
    def relu(self, x, name=""):
        return self._add("act", (x,), self.shape(x), {"kind": "relu"}, name)

    def abs(self, x, name=""):
        return self._add("act", (x,), self.shape(x), {"kind": "abs"}, name)

    def leaky_relu(self, x, slope=0.01, name=""):
        """Leaky ReLU / PReLU: ``slope`` a scalar or an array broadcast to x's shape (per channel: (C, 1, 1))."""
        s = self.shape(x)
        try:
            a = np.broadcast_to(np.asarray(slope, np.float64), s).copy()
        except ValueError:
            raise PiecewiseError(f"PReLU {name}: slopes of shape {np.shape(slope)} do not broadcast to {s}") from None
        _finite(a, name or "slope")
        return self._add("act", (x,), s, {"kind": "leaky", "slopes": a}, name)

    def clip(self, x, lo=-1.0, hi=1.0, name=""):
        """``min(max(x, lo), hi)``; ``lo = -inf`` or ``hi = inf`` for a one-sided clip (hardtanh: -1, 1)."""
        s = self.shape(x)
        lo = np.broadcast_to(np.asarray(-np.inf if lo is None else lo, np.float64), s).copy()
        hi = np.broadcast_to(np.asarray(np.inf if hi is None else hi, np.float64), s).copy()
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)) or np.any(lo > hi):
            raise PiecewiseError(f"clip {name}: need min <= max")
        return self._add("act", (x,), s, {"kind": "clip", "lo": lo, "hi": hi}, name)

    hardtanh = clip

    def max_pool(self, x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, name=""):
        """Max-pool of x (C, H, W); padding never wins (it is -inf in PyTorch and ONNX)."""
        s = self.shape(x)
        if len(s) != 3:
            raise PiecewiseError(f"max pool {name}: input must be (C, H, W), got shape {s}")
        k = _pair(kernel, "kernel")
        idx, inside, _, (Ho, Wo) = _windows(*s, k, _pair(k if stride is None else stride, "stride"), _pads(padding),
                                            _pair(dilation, "dilation"), ceil_mode)
        idx = idx.reshape(s[0] * Ho * Wo, -1)
        ok = np.broadcast_to(inside.reshape(1, Ho * Wo, -1), (s[0], Ho * Wo, inside[0, 0].size)).reshape(idx.shape)
        if not ok.any(1).all():
            raise PiecewiseError(f"max pool {name}: a window lies entirely in the padding")
        first = idx[np.arange(len(idx)), ok.argmax(1)]
        idx = np.where(ok, idx, first[:, None])
        return self.max_groups(x, idx, (s[0], Ho, Wo), name)

    def maxout(self, x, k, name=""):
        """Maxout over consecutive groups of ``k`` entries of the last axis: (..., n*k) -> (..., n)."""
        s = self.shape(x)
        if k < 1 or s[-1] % k:
            raise PiecewiseError(f"maxout {name}: last axis {s[-1]} is not a multiple of k = {k}")
        n = self.nodes[x].size
        return self.max_groups(x, np.arange(n).reshape(-1, k), (*s[:-1], s[-1] // k), name)

    def max_groups(self, x, groups, shape, name=""):
        """``y_flat[i] = max_r x_flat[groups[i, r]]``, y of the given shape."""
        groups = np.asarray(groups, np.int64)
        shape = tuple(int(t) for t in shape)
        if groups.ndim != 2 or groups.shape[0] != int(np.prod(shape)) or groups.min() < 0 or groups.max() >= self.nodes[x].size:
            raise PiecewiseError(f"max {name}: bad groups of shape {groups.shape} for output {shape}")
        if groups.shape[1] == 1:
            return self._add("gather", (x,), shape, {"idx": groups[:, 0]}, name)
        return self._add("max", (x,), shape, {"groups": groups}, name)


def _finite(a, what):
    if a is not None and not np.all(np.isfinite(a)):
        raise PiecewiseError(f"{what} contains NaN or inf")


# ---------------------------------------------------------------------------------------------------------
# lowering to stages
def _lin(node, A, fan):
    """Apply the linear part of an affine node to the rows of A (fan, size_in) -> (fan, size_out)."""
    if fan == 0:
        return np.zeros((0, node.size))
    return _eval(node, [A], np, False, fan).reshape(fan, node.size)


def _lower(g: Graph) -> StagedNet:
    exprs = []  # per node: (dict source -> (fan, size) matrix, bias (size,))
    widths = [g.n_in]
    stages = []
    for node in g.nodes:
        op = node.op
        if op == "input":
            exprs.append(({0: np.eye(g.n_in)}, np.zeros(g.n_in)))
            continue
        if op == "const":
            exprs.append(({}, np.asarray(node.attrs["value"], np.float64).reshape(-1)))
            continue
        if op in AFFINE_OPS:
            inp = g.nodes[node.inputs[0]]
            A, c = exprs[node.inputs[0]]
            newA = {j: _lin(node, M.reshape(M.shape[0], *inp.shape), M.shape[0]) for j, M in A.items()}
            newc = _eval(node, [c.reshape(1, *inp.shape)], np, True, 1).reshape(-1)
            exprs.append((newA, newc))
            continue
        if op == "add":
            A, c = {}, np.zeros(node.size)
            for coef, i in zip(node.attrs["coefs"], node.inputs):
                Ai, ci = exprs[i]
                c = c + coef * ci
                for j, M in Ai.items():
                    A[j] = A[j] + coef * M if j in A else coef * M
            exprs.append((A, c))
            continue
        if op == "concat":
            ax = node.attrs["axis"] + 1
            srcs = sorted({j for i in node.inputs for j in exprs[i][0]})
            A = {}
            for j in srcs:
                parts = []
                for i in node.inputs:
                    M = exprs[i][0].get(j)
                    shp = g.nodes[i].shape
                    parts.append(np.zeros((widths[j], *shp)) if M is None else M.reshape(widths[j], *shp))
                A[j] = np.concatenate(parts, axis=ax).reshape(widths[j], -1)
            c = np.concatenate([exprs[i][1].reshape(1, *g.nodes[i].shape) for i in node.inputs], axis=ax).reshape(-1)
            exprs.append((A, c))
            continue
        # nonlinear: a new stage reading the input's affine expression
        A, c = exprs[node.inputs[0]]
        s = len(stages) + 1
        if op == "max":
            groups = node.attrs["groups"]
            st = Stage(maxout(groups.shape[1]), _weights(A, c.size, g.n_in), c.copy(), groups)
            stages.append(st)
            widths.append(st.width)
            exprs.append(({s: np.eye(st.width)}, np.zeros(st.width)))
            continue
        spec = act_stage(node)
        if spec is None:  # no clipping at all: identity
            exprs.append((A, c))
            continue
        act, in_scale, in_shift, out_scale, out_shift, slopes = spec
        m = c.size
        W = _weights({j: M * in_scale for j, M in A.items()}, m, g.n_in)
        st = Stage(act, W, c * in_scale + in_shift, None, slopes)
        stages.append(st)
        widths.append(st.width)
        exprs.append(({s: np.diag(out_scale)}, out_shift.copy()))
    A, c = exprs[g.output]
    return StagedNet(g.n_in, tuple(stages), _weights(A, c.size, g.n_in), c.copy())


def act_stage(node):
    """How an ``act`` node becomes a stage of the exact engine (shared by :func:`_lower` and the operator
    engine, so both give one unit the same hyperplane and orientation): (activation, in_scale, in_shift,
    out_scale, out_shift, slopes) with the stage's pre-activation ``z * in_scale + in_shift`` and the node's
    value ``out_scale * act(...) + out_shift`` (per unit, (m,) each; ``slopes`` per-unit leaky slopes or None),
    or None for a clip without finite bounds (the identity)."""
    kind = node.attrs["kind"]
    m = node.size
    out_scale, out_shift = np.ones(m), np.zeros(m)
    in_scale, in_shift = np.ones(m), np.zeros(m)
    slopes = None
    if kind == "relu":
        act = relu()
    elif kind == "abs":
        act = abs_()
    elif kind == "leaky":
        sl = node.attrs["slopes"].reshape(-1)
        if np.all(sl == sl[0]):
            act = relu() if sl[0] == 0 else leaky_relu(float(sl[0]))
        else:
            act, slopes = leaky_relu(float(sl[0])), sl.copy()
    else:  # clip
        lo, hi = node.attrs["lo"].reshape(-1), node.attrs["hi"].reshape(-1)
        flo, fhi = np.isfinite(lo), np.isfinite(hi)
        if not flo.any() and not fhi.any():
            return None
        if flo.all() and fhi.all():
            if np.any(hi <= lo):
                raise PiecewiseError(f"clip {node.name}: min == max makes a constant unit; unsupported")
            act = hardtanh()
            in_scale, in_shift = 2.0 / (hi - lo), -(hi + lo) / (hi - lo)
            out_scale, out_shift = (hi - lo) / 2.0, (hi + lo) / 2.0
        elif flo.all() and not fhi.any():  # max(z, lo) = lo + relu(z - lo)
            act = relu()
            in_shift, out_shift = -lo, lo
        elif fhi.all() and not flo.any():  # min(z, hi) = hi - relu(hi - z)
            act = relu()
            in_scale, in_shift, out_scale, out_shift = -np.ones(m), hi, -np.ones(m), hi
        else:
            raise PiecewiseError(f"clip {node.name}: bounds mix finite and infinite values across units; unsupported")
    return act, in_scale, in_shift, out_scale, out_shift, slopes


def _weights(A: dict, m: int, n_in: int) -> dict:
    """Drop all-zero sources (a constant pre-activation keeps a zero matrix from the input: a stage needs one)."""
    W = {j: np.ascontiguousarray(M, np.float64) for j, M in A.items() if np.any(M)}
    return W if W else {0: np.zeros((n_in, m))}


def from_mlp(net, params) -> Graph:
    """The graph of an :class:`~piecewise.nets.MLP` (dense -> activation -> ... -> dense)."""
    act = net.activation
    gb = GraphBuilder((net.n_in,))
    h = gb.input
    for W, b in params[:-1]:
        W, b = np.asarray(W, np.float64), np.asarray(b, np.float64)
        if act.is_maxout:
            fi, w, k = W.shape
            h = gb.maxout(gb.dense(h, W.reshape(fi, w * k), b.reshape(w * k)), k)
            continue
        h = gb.dense(h, W, b)
        if act.name == "relu":
            h = gb.relu(h)
        elif act.name == "abs":
            h = gb.abs(h)
        elif act.name == "leaky_relu":
            h = gb.leaky_relu(h, act.slope)
        elif act.name == "hardtanh":
            h = gb.clip(h, -1.0, 1.0)
        else:
            raise PiecewiseError(f"activation {act} is not piecewise linear")
    W, b = params[-1]
    return gb.build(gb.dense(h, W, b))

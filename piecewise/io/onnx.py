"""ONNX models as :class:`~piecewise.graph.Graph` (needs the ``onnx`` package; no runtime).

The model has one input of shape (1, n) or (1, C, H, W) and one output. A symbolic batch dimension is read
as 1, and so is a static batch B > 1 (a model exported with ``torch.zeros(4, ...)``): the network is the same
for each sample, so reshapes to a leading B (``x.view(B, -1)`` exported as a constant shape) are read with 1.
Network points are the input flattened in C order (``x.reshape(-1)``), so a ``--plane P.npy`` for an image
model holds three flattened images, shape (3, C*H*W).

Operators on the network's tensors: Gemm, MatMul (tensor @ constant), Add, Sub (tensor +- tensor or
constant), Mul, Div (by constants), Neg, Conv (1-D and 2-D: strides, pads, auto_pad, dilations, group),
Relu, LeakyRelu, PRelu, Clip, Abs, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization (inference),
Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Identity, Dropout (inference: identity), Concat, Max and Min
(elementwise, of tensors of one shape). Computations on constants alone (Constant, Shape, Gather, Cast,
Concat, Unsqueeze, ...: exporters' shape arithmetic) are folded with NumPy. Anything else is a one-line
:class:`~piecewise.errors.PiecewiseError` naming the operator. Weights are read as float64.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import PiecewiseError
from ..graph import Graph, GraphBuilder

SUPPORTED = ("Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Conv", "Relu", "LeakyRelu", "PRelu", "Clip",
             "Abs", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "Flatten", "Reshape",
             "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Concat", "Max", "Min", "Constant",
             "Shape", "Gather", "Cast")

_FOLD = {  # operators folded when every input is a constant
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Neg": np.negative,
    "Div": lambda a, b: a // b if a.dtype.kind in "iu" and b.dtype.kind in "iu" else a / b,
}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise PiecewiseError("reading .onnx needs the onnx package: pip install 'piecewise[onnx]'") from None
    return onnx


def load_onnx(path: "str | os.PathLike") -> Graph:
    """Read an ONNX model file into a :class:`~piecewise.graph.Graph` (see the module docstring)."""
    onnx = _onnx()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise PiecewiseError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf decode errors have many types
        raise PiecewiseError(f"cannot read {path} as ONNX: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return from_onnx_model(model, source=os.path.basename(path))


def from_onnx_model(model, source: str = "model") -> Graph:
    """A loaded ``onnx.ModelProto`` as a Graph."""
    onnx = _onnx()
    from onnx import numpy_helper

    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    vals: dict = {}
    for t in g.initializer:
        vals[t.name] = numpy_helper.to_array(t)
    inputs = [i for i in g.input if i.name not in vals]
    if len(inputs) != 1:
        raise PiecewiseError(f"{source}: expected one network input, found {len(inputs)}: {[i.name for i in inputs]}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = []
    for k, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(int(d.dim_value))
        elif k == 0:
            shape.append(1)  # symbolic batch dimension
        else:
            raise PiecewiseError(f"{source}: input dimension {k} is not fixed ({d.dim_param or '?'}); export with a fixed shape")
    if len(shape) < 2:
        raise PiecewiseError(f"{source}: input shape must be (1, n) or (1, C, H, W), got {tuple(shape)}")
    batch, shape[0] = shape[0], 1  # a static batch B > 1: one sample of it (the network is the same per sample)
    gb = GraphBuilder(tuple(shape[1:]))
    vals[inputs[0].name] = _T(gb.input)
    imp = _Importer(gb, vals, opset, source, batch)
    for node in g.node:
        imp.node(node, onnx)
    if len(g.output) != 1:
        raise PiecewiseError(f"{source}: expected one output, found {len(g.output)}")
    out = vals.get(g.output[0].name)
    if not isinstance(out, _T):
        raise PiecewiseError(f"{source}: the output does not depend on the input")
    return gb.build(out.i)


class _T:
    """A network tensor: a node of the graph (shape = (1, *node shape))."""

    def __init__(self, i):
        self.i = int(i)


class _Importer:
    def __init__(self, gb: GraphBuilder, vals: dict, opset: int, source: str, batch: int = 1):
        self.gb, self.vals, self.opset, self.source = gb, vals, opset, source
        self.batch = batch  # the model's static batch (read as 1)

    def err(self, node, msg):
        return PiecewiseError(f"{self.source}: {node.op_type} node {node.name or node.output[0]!r}: {msg}")

    def full(self, t: _T) -> tuple:
        return (1, *self.gb.shape(t.i))

    def node(self, node, onnx):
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED:
            raise PiecewiseError(f"{self.source}: unsupported ONNX operator {op}"
                                 f"{'' if node.domain in ('', 'ai.onnx') else ' (domain ' + node.domain + ')'} "
                                 f"(node {node.name or node.output[0]!r}); supported: {', '.join(SUPPORTED)}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ins = []
        for name in node.input:
            if name == "":
                ins.append(None)
            elif name not in self.vals:
                raise self.err(node, f"input {name!r} is not produced by any earlier node")
            else:
                ins.append(self.vals[name])
        outs = getattr(self, "op_" + op)(node, ins, attrs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        for name, v in zip(node.output, outs):
            if name:
                self.vals[name] = v

    # -- helpers -------------------------------------------------------------------------------------------
    def const(self, node, v, what="this input"):
        if isinstance(v, _T):
            raise self.err(node, f"{what} must be a constant, but it depends on the network input")
        return np.asarray(v)

    def to_node_shape(self, node, t: _T, c):
        """A constant broadcast (ONNX rules) against tensor t, as an array of t's node shape."""
        full = self.full(t)
        c = np.asarray(c, np.float64)
        try:
            if np.broadcast_shapes(full, c.shape) != full:
                raise ValueError
            return np.broadcast_to(c, full)[0]
        except ValueError:
            raise self.err(node, f"constant of shape {c.shape} does not broadcast to the tensor's shape {full}") from None

    def all_const(self, ins):
        return all(not isinstance(v, _T) for v in ins if v is not None)

    # -- constants and shapes ------------------------------------------------------------------------------
    def op_Constant(self, node, ins, a):
        from onnx import numpy_helper

        if "value" in a:
            return numpy_helper.to_array(a["value"])
        for k, dt in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                      ("value_ints", np.int64)):
            if k in a:
                return np.asarray(a[k], dt)
        raise self.err(node, f"unsupported constant attribute {sorted(a)}")

    def op_Shape(self, node, ins, a):
        s = np.asarray(self.full(ins[0]) if isinstance(ins[0], _T) else np.shape(ins[0]), np.int64)
        start, end = a.get("start", 0), a.get("end", None)
        return s[start:end]

    def op_Gather(self, node, ins, a):
        data, idx = self.const(node, ins[0], "the data"), self.const(node, ins[1], "the indices")
        return np.take(data, idx, axis=a.get("axis", 0))

    def op_Cast(self, node, ins, a):
        from onnx import helper

        v = ins[0]
        if isinstance(v, _T):
            return v  # the graph computes in float; a cast to another float type changes nothing here
        return np.asarray(v).astype(helper.tensor_dtype_to_np_dtype(a["to"]))

    def _axes(self, node, ins, a):
        if len(ins) > 1 and ins[1] is not None:
            return [int(t) for t in self.const(node, ins[1], "axes").reshape(-1)]
        return list(a.get("axes", []))

    def op_Unsqueeze(self, node, ins, a):
        axes = self._axes(node, ins, a)
        if not isinstance(ins[0], _T):
            v = np.asarray(ins[0])
            r = v.ndim + len(axes)
            for ax in sorted(x % r for x in axes):
                v = np.expand_dims(v, ax)
            return v
        full = list(self.full(ins[0]))
        r = len(full) + len(axes)
        for ax in sorted(x % r for x in axes):
            full.insert(ax, 1)
        return self.reshape_to(node, ins[0], full)

    def op_Squeeze(self, node, ins, a):
        axes = self._axes(node, ins, a)
        if not isinstance(ins[0], _T):
            v = np.asarray(ins[0])
            return np.squeeze(v, tuple(axes)) if axes else np.squeeze(v)
        full = list(self.full(ins[0]))
        axes = {x % len(full) for x in axes} if axes else {k for k, d in enumerate(full) if d == 1 and k > 0}
        if 0 in axes:
            axes.discard(0)  # the batch axis stays
        return self.reshape_to(node, ins[0], [d for k, d in enumerate(full) if k not in axes])

    def reshape_to(self, node, t: _T, full):
        full = [int(d) for d in full]
        if len(full) < 2 or full[0] != 1:
            raise self.err(node, f"the result's shape {tuple(full)} moves the batch axis; unsupported")
        if tuple(full[1:]) == self.gb.shape(t.i):
            return t
        return _T(self.gb.reshape(t.i, full[1:], node.name))

    # -- arithmetic ------------------------------------------------------------------------------------------
    def op_Identity(self, node, ins, a):
        return ins[0]

    def op_Dropout(self, node, ins, a):
        if len(node.output) > 1 and node.output[1]:
            raise self.err(node, "the dropout mask output is unsupported (inference only)")
        return ins[0]

    def op_Neg(self, node, ins, a):
        if self.all_const(ins):
            return -np.asarray(ins[0])
        return _T(self.gb.scale_shift(ins[0].i, -1.0, 0.0, node.name))

    def _addsub(self, node, ins, sign):
        x, y = ins
        if self.all_const(ins):
            return _FOLD["Add" if sign > 0 else "Sub"](np.asarray(x), np.asarray(y))
        if isinstance(x, _T) and isinstance(y, _T):
            if self.full(x) != self.full(y):
                raise self.err(node, f"operands of shapes {self.full(x)} and {self.full(y)}: broadcasting two network "
                                     "tensors is unsupported")
            return _T(self.gb.add(x.i, y.i, coefs=(1.0, float(sign)), name=node.name))
        if isinstance(x, _T):
            return _T(self.gb.scale_shift(x.i, 1.0, sign * self.to_node_shape(node, x, y), node.name))
        return _T(self.gb.scale_shift(y.i, float(sign), self.to_node_shape(node, y, x), node.name))

    def op_Add(self, node, ins, a):
        return self._addsub(node, ins, 1)

    def op_Sub(self, node, ins, a):
        return self._addsub(node, ins, -1)

    def op_Mul(self, node, ins, a):
        x, y = ins
        if self.all_const(ins):
            return np.multiply(x, y)
        if isinstance(x, _T) and isinstance(y, _T):
            raise self.err(node, "the product of two network tensors is not piecewise linear")
        t, c = (x, y) if isinstance(x, _T) else (y, x)
        return _T(self.gb.scale_shift(t.i, self.to_node_shape(node, t, c), 0.0, node.name))

    def op_Div(self, node, ins, a):
        x, y = ins
        if self.all_const(ins):
            return _FOLD["Div"](np.asarray(x), np.asarray(y))
        if isinstance(y, _T):
            raise self.err(node, "division by a network tensor is not piecewise linear")
        c = self.to_node_shape(node, x, y)
        if np.any(c == 0):
            raise self.err(node, "division by zero")
        return _T(self.gb.scale_shift(x.i, 1.0 / c, 0.0, node.name))

    def op_Gemm(self, node, ins, a):
        A, B = ins[0], ins[1]
        C = ins[2] if len(ins) > 2 else None
        if not isinstance(A, _T) or a.get("transA", 0):
            raise self.err(node, "only network tensor @ constant (transA = 0) is supported")
        B = self.const(node, B, "B").astype(np.float64)
        W = a.get("alpha", 1.0) * (B.T if a.get("transB", 0) else B)
        if len(self.full(A)) != 2 or W.ndim != 2:
            raise self.err(node, f"Gemm needs 2-D operands, got {self.full(A)} and {B.shape}")
        b = None
        if C is not None:
            b = a.get("beta", 1.0) * np.broadcast_to(self.const(node, C, "C").astype(np.float64), (1, W.shape[1]))[0]
        return _T(self.gb.dense(A.i, W, b, node.name))

    def op_MatMul(self, node, ins, a):
        x, W = ins
        if self.all_const(ins):
            return np.matmul(x, W)
        if not isinstance(x, _T) or isinstance(W, _T):
            raise self.err(node, "only network tensor @ constant matrix is supported")
        W = np.asarray(W, np.float64)
        if W.ndim != 2:
            raise self.err(node, f"the constant matrix must be 2-D, got shape {W.shape}")
        return _T(self.gb.dense(x.i, W, None, node.name))

    # -- convolution and pooling -----------------------------------------------------------------------------
    def _spatial(self, node, x, a, k):
        """Strides, pads (ONNX order, 2-D: top, left, bottom, right), dilations for an input (1, C, *sp)."""
        full = self.full(x)
        sp = full[2:]
        r = len(sp)
        if r not in (1, 2):
            raise self.err(node, f"only 1-D and 2-D inputs are supported, got shape {full}")
        strides = list(a.get("strides", [1] * r))
        dil = list(a.get("dilations", [1] * r))
        pads = list(a.get("pads", [0] * 2 * r))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0] * 2 * r
            for d in range(r):
                out = -(-sp[d] // strides[d])
                tot = max(0, (out - 1) * strides[d] + (k[d] - 1) * dil[d] + 1 - sp[d])
                lo = tot // 2 if auto == "SAME_UPPER" else tot - tot // 2
                pads[d], pads[d + r] = lo, tot - lo
        elif auto == "VALID":
            pads = [0] * 2 * r
        elif auto != "NOTSET":
            raise self.err(node, f"unknown auto_pad {auto}")
        if r == 1:
            return (1, strides[0]), (0, pads[0], 0, pads[1]), (1, dil[0])
        return tuple(strides), tuple(pads), tuple(dil)

    def _as2d(self, node, x):
        """(1, C, L) tensors are treated as (1, C, 1, L)."""
        full = self.full(x)
        if len(full) == 3:
            return _T(self.gb.reshape(x.i, (full[1], 1, full[2]), node.name)), True
        return x, False

    def _back(self, node, y, was1d):
        if was1d:
            C, _, L = self.gb.shape(y)
            return _T(self.gb.reshape(y, (C, L), node.name))
        return _T(y)

    def op_Conv(self, node, ins, a):
        x = ins[0]
        if not isinstance(x, _T):
            raise self.err(node, "the convolved tensor must depend on the network input")
        W = self.const(node, ins[1], "the kernel").astype(np.float64)
        b = None if len(ins) < 3 or ins[2] is None else self.const(node, ins[2], "the bias")
        s, p, d = self._spatial(node, x, a, W.shape[2:])
        x2, was1d = self._as2d(node, x)
        if was1d:
            W = W[:, :, None, :]
        y = self.gb.conv(x2.i, W, b, stride=s, padding=p, dilation=d, groups=a.get("group", 1), name=node.name)
        return self._back(node, y, was1d)

    def op_MaxPool(self, node, ins, a):
        if len(node.output) > 1 and node.output[1]:
            raise self.err(node, "the Indices output of MaxPool is unsupported")
        x = ins[0]
        k = list(a["kernel_shape"])
        s, p, d = self._spatial(node, x, a, k)
        x2, was1d = self._as2d(node, x)
        k2 = (1, k[0]) if was1d else tuple(k)
        y = self.gb.max_pool(x2.i, k2, s, p, d, bool(a.get("ceil_mode", 0)), node.name)
        return self._back(node, y, was1d)

    def op_AveragePool(self, node, ins, a):
        x = ins[0]
        k = list(a["kernel_shape"])
        s, p, d = self._spatial(node, x, a, k)
        if any(t != 1 for t in d):
            raise self.err(node, "dilated average pooling is unsupported")
        x2, was1d = self._as2d(node, x)
        k2 = (1, k[0]) if was1d else tuple(k)
        y = self.gb.avg_pool(x2.i, k2, s, p, bool(a.get("count_include_pad", 0)), bool(a.get("ceil_mode", 0)), node.name)
        return self._back(node, y, was1d)

    def op_GlobalAveragePool(self, node, ins, a):
        return _T(self.gb.global_avg_pool(ins[0].i, node.name))

    def op_BatchNormalization(self, node, ins, a):
        if a.get("training_mode", 0) or any(o for o in node.output[1:]):
            raise self.err(node, "only inference mode (no running-statistics outputs) is supported")
        x = ins[0]
        g, b, m, v = (self.const(node, t, "the statistics").astype(np.float64) for t in ins[1:5])
        return _T(self.gb.batch_norm(x.i, g, b, m, v, a.get("epsilon", 1e-5), node.name))

    # -- shapes ----------------------------------------------------------------------------------------------
    def op_Flatten(self, node, ins, a):
        x = ins[0]
        full = self.full(x) if isinstance(x, _T) else np.shape(x)
        ax = a.get("axis", 1) % (len(full) + 1) if a.get("axis", 1) < 0 else a.get("axis", 1)
        new = (int(np.prod(full[:ax], dtype=np.int64)), int(np.prod(full[ax:], dtype=np.int64)))
        if not isinstance(x, _T):
            return np.reshape(x, new)
        return self.reshape_to(node, x, new)

    def op_Reshape(self, node, ins, a):
        x = ins[0]
        shp = [int(t) for t in self.const(node, ins[1], "the shape").reshape(-1)]
        full = list(self.full(x)) if isinstance(x, _T) else list(np.shape(x))
        if isinstance(x, _T) and self.batch > 1 and shp and shp[0] == self.batch:
            shp[0] = 1  # a shape written for the exported batch B (torch folds x.view(B, -1) to a constant)
        if not a.get("allowzero", 0):
            shp = [full[k] if t == 0 and k < len(full) else t for k, t in enumerate(shp)]
        if -1 in shp:
            n = int(np.prod(full))
            rest = int(np.prod([t for t in shp if t != -1]))
            if shp.count(-1) > 1 or rest == 0 or n % rest:
                raise self.err(node, f"cannot reshape {tuple(full)} to {tuple(shp)}")
            shp = [n // rest if t == -1 else t for t in shp]
        if int(np.prod(shp)) != int(np.prod(full)):
            raise self.err(node, f"cannot reshape {tuple(full)} to {tuple(shp)}")
        if not isinstance(x, _T):
            return np.reshape(x, shp)
        return self.reshape_to(node, x, shp)

    def op_Transpose(self, node, ins, a):
        x = ins[0]
        if not isinstance(x, _T):
            return np.transpose(x, a.get("perm"))
        r = len(self.full(x))
        perm = list(a.get("perm", list(range(r))[::-1]))
        if perm[0] != 0:
            raise self.err(node, f"permutation {perm} moves the batch axis; unsupported")
        return _T(self.gb.transpose(x.i, [p - 1 for p in perm[1:]], node.name))

    def op_Concat(self, node, ins, a):
        if self.all_const(ins):
            return np.concatenate([np.asarray(v) for v in ins], axis=a["axis"])
        r = max(len(self.full(v)) if isinstance(v, _T) else np.ndim(v) for v in ins)
        ax = a["axis"] % r
        if ax == 0:
            raise self.err(node, "concatenation along the batch axis is unsupported")
        ids = []
        for v in ins:
            if isinstance(v, _T):
                ids.append(v.i)
            else:
                c = np.asarray(v, np.float64)
                if c.ndim != r or c.shape[0] != 1:
                    raise self.err(node, f"constant operand of shape {c.shape} does not fit")
                ids.append(self.gb.const(c[0], node.name))
        return _T(self.gb.concat(ids, ax - 1, node.name))

    # -- activations -----------------------------------------------------------------------------------------
    def _act(self, node, x):
        if not isinstance(x, _T):
            raise self.err(node, "activation of a constant: fold it before export")
        return x

    def op_Relu(self, node, ins, a):
        return _T(self.gb.relu(self._act(node, ins[0]).i, node.name))

    def op_Abs(self, node, ins, a):
        return _T(self.gb.abs(self._act(node, ins[0]).i, node.name))

    def op_LeakyRelu(self, node, ins, a):
        return _T(self.gb.leaky_relu(self._act(node, ins[0]).i, a.get("alpha", 0.01), node.name))

    def op_PRelu(self, node, ins, a):
        x = self._act(node, ins[0])
        return _T(self.gb.leaky_relu(x.i, self.to_node_shape(node, x, self.const(node, ins[1], "the slope")), node.name))

    def op_Clip(self, node, ins, a):
        x = self._act(node, ins[0])
        if self.opset < 11:
            lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        else:
            lo = -np.inf if len(ins) < 2 or ins[1] is None else float(self.const(node, ins[1], "min"))
            hi = np.inf if len(ins) < 3 or ins[2] is None else float(self.const(node, ins[2], "max"))
        if lo > hi:
            raise self.err(node, f"min {lo} > max {hi}")
        return _T(self.gb.clip(x.i, lo, hi, node.name))

    def _maxmin(self, node, ins, sign):
        if self.all_const(ins):
            return (np.maximum if sign > 0 else np.minimum).reduce([np.asarray(v) for v in ins])
        if not all(isinstance(v, _T) for v in ins) or len({self.full(v) for v in ins}) != 1:
            raise self.err(node, "operands must be network tensors of one shape")
        if len(ins) == 1:
            return ins[0]
        gb = self.gb
        shape = gb.shape(ins[0].i)
        n = int(np.prod(shape))
        flat = [gb.flatten(v.i if sign > 0 else gb.scale_shift(v.i, -1.0, 0.0)) for v in ins]
        cat = gb.concat(flat, 0, node.name)
        y = gb.max_groups(cat, np.arange(len(ins) * n).reshape(len(ins), n).T, shape, node.name)
        return _T(y if sign > 0 else gb.scale_shift(y, -1.0, 0.0, node.name))

    def op_Max(self, node, ins, a):
        return self._maxmin(node, ins, 1)

    def op_Min(self, node, ins, a):
        return self._maxmin(node, ins, -1)

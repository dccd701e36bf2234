"""PyTorch modules as :class:`~piecewise.graph.Graph` (optional extra: ``torch``).

:func:`from_torch` traces the module with ``torch.fx`` and maps every step onto graph nodes, so
``nn.Sequential`` stacks and simple residual blocks (a custom ``forward`` returning ``x + self.body(x)``,
``torch.cat``, ``x.view(x.size(0), -1)``, ...) are read as written. Supported layers: Linear, Conv1d, Conv2d
(zero padding, stride, dilation, groups, ``padding="same"``), ReLU, ReLU6, LeakyReLU, PReLU, Hardtanh, MaxPool1d/2d,
AvgPool1d/2d, AdaptiveAvgPool2d(1), BatchNorm1d/2d (in eval mode), Flatten, Identity, Dropout (eval); functions
relu, leaky_relu, hardtanh, abs, clamp, flatten, cat, maximum/minimum, max_pool2d, avg_pool2d and + - * / with
constants. For anything else export to ONNX (``torch.onnx.export``) and use :func:`piecewise.io.load_onnx`.

**Transpose convention.** ``nn.Linear`` stores ``weight`` as (out, in) and computes ``x @ weight.T + bias``;
piecewise's dense layers (and the .npz contract) store W as (in, out) and compute ``x @ W + b``. The importer
transposes; when writing .npz files by hand from a PyTorch model use ``W = linear.weight.detach().numpy().T``.

Points are the module's input without the batch axis, flattened in C order: for an image model of input
(1, C, H, W) a point is ``x.reshape(-1)`` of length C*H*W.
"""
from __future__ import annotations

import operator

import numpy as np

from ..errors import PiecewiseError
from ..graph import Graph, GraphBuilder

_HINT = "export the model with torch.onnx.export and read it with piecewise.io.load_onnx"


def _torch():
    try:
        import torch
    except ImportError:
        raise PiecewiseError("from_torch needs PyTorch: pip install 'piecewise[torch]'") from None
    return torch


def _np(t):
    return t.detach().cpu().double().numpy()


def from_torch(module, input_shape=None) -> Graph:
    """A PyTorch module as a Graph (module docstring).

    Args:
      module: an ``nn.Module`` in eval mode (batch-norm must use its running statistics).
      input_shape: the input's shape without the batch axis, e.g. (1, 8, 8) or (64,); optional when the
        first layer is an ``nn.Linear`` (its ``in_features``).
    Returns:
      :class:`~piecewise.graph.Graph` whose forward equals ``module(x.reshape(1, *input_shape))``.
    """
    torch = _torch()
    import torch.fx as fx

    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise PiecewiseError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    if input_shape is None:
        first = next((m for m in module.modules() if not list(m.children())), None)
        if not isinstance(first, nn.Linear):
            raise PiecewiseError("from_torch: give input_shape (without the batch axis), e.g. (1, 8, 8)")
        input_shape = (first.in_features,)
    input_shape = (int(input_shape),) if np.ndim(input_shape) == 0 else tuple(int(s) for s in input_shape)
    try:
        traced = fx.symbolic_trace(module)
    except Exception as e:
        raise PiecewiseError(f"from_torch: cannot trace the module ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}); {_HINT}") from None
    gb = GraphBuilder(input_shape)
    mods = dict(traced.named_modules())
    env = {}
    out = None
    conv = _Converter(gb, torch)
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if env:
                raise PiecewiseError(f"from_torch: the module takes more than one input; {_HINT}")
            env[node.name] = _T(gb.input)
            continue
        args = _map(node.args, env)
        kwargs = _map(node.kwargs, env)
        if node.op == "get_attr":
            obj = traced
            for part in node.target.split("."):
                obj = getattr(obj, part)
            env[node.name] = _np(obj) if isinstance(obj, torch.Tensor) else obj
        elif node.op == "call_module":
            env[node.name] = conv.module(mods[node.target], node.target, *args, **kwargs)
        elif node.op == "call_function":
            env[node.name] = conv.function(node.target, node.name, *args, **kwargs)
        elif node.op == "call_method":
            env[node.name] = conv.method(node.target, node.name, *args, **kwargs)
        elif node.op == "output":
            out = args[0]
    if not isinstance(out, _T):
        raise PiecewiseError(f"from_torch: the module must return one tensor; {_HINT}")
    return gb.build(out.i)


class _T:
    def __init__(self, i):
        self.i = int(i)


def _map(a, env):
    if isinstance(a, (list, tuple)):
        return type(a)(_map(v, env) for v in a)
    if isinstance(a, dict):
        return {k: _map(v, env) for k, v in a.items()}
    if hasattr(a, "op") and hasattr(a, "name") and a.name in env:  # an fx.Node
        return env[a.name]
    return a


class _Converter:
    def __init__(self, gb: GraphBuilder, torch):
        self.gb, self.torch = gb, torch

    def full(self, t):
        return (1, *self.gb.shape(t.i))

    def err(self, what, name):
        return PiecewiseError(f"from_torch: unsupported {what} ({name}); {_HINT}")

    def reshape_full(self, t, full, name):
        full = [int(d) for d in full]
        n = int(np.prod(self.full(t)))
        if -1 in full:
            rest = int(np.prod([d for d in full if d != -1]))
            full = [n // rest if d == -1 else d for d in full]
        if len(full) < 2 or full[0] != 1 or int(np.prod(full)) != n:
            raise PiecewiseError(f"from_torch: reshape of {self.full(t)} to {tuple(full)} is unsupported ({name})")
        return t if tuple(full[1:]) == self.gb.shape(t.i) else _T(self.gb.reshape(t.i, full[1:], name))

    def flatten(self, t, start, end, name):
        full = list(self.full(t))
        r = len(full)
        start, end = start % r, end % r
        new = full[:start] + [int(np.prod(full[start:end + 1]))] + full[end + 1:]
        return self.reshape_full(t, new, name)

    def const_like(self, t, c, name):
        c = np.asarray(_np(c) if isinstance(c, self.torch.Tensor) else c, np.float64)
        full = self.full(t)
        try:
            if np.broadcast_shapes(full, c.shape) != full:
                raise ValueError
        except ValueError:
            raise PiecewiseError(f"from_torch: constant of shape {c.shape} does not broadcast to {full} ({name})") from None
        return np.broadcast_to(c, full)[0]

    def arith(self, fn, name, x, y):
        gb = self.gb
        if not isinstance(x, _T) and not isinstance(y, _T):
            return fn(x, y)
        if fn in (operator.add, operator.sub):
            sign = 1.0 if fn is operator.add else -1.0
            if isinstance(x, _T) and isinstance(y, _T):
                if self.full(x) != self.full(y):
                    raise PiecewiseError(f"from_torch: adding tensors of shapes {self.full(x)}, {self.full(y)} ({name})")
                return _T(gb.add(x.i, y.i, coefs=(1.0, sign), name=name))
            if isinstance(x, _T):
                return _T(gb.scale_shift(x.i, 1.0, sign * self.const_like(x, y, name), name))
            return _T(gb.scale_shift(y.i, sign, self.const_like(y, x, name), name))
        if isinstance(x, _T) and isinstance(y, _T):
            raise PiecewiseError(f"from_torch: product or quotient of two network tensors is not piecewise linear ({name})")
        if fn is operator.mul:
            t, c = (x, y) if isinstance(x, _T) else (y, x)
            return _T(gb.scale_shift(t.i, self.const_like(t, c, name), 0.0, name))
        if fn is operator.truediv and isinstance(x, _T):
            return _T(gb.scale_shift(x.i, 1.0 / self.const_like(x, y, name), 0.0, name))
        raise self.err("arithmetic", name)

    def as2d(self, x, name):
        full = self.full(x)
        if len(full) == 3:
            return _T(self.gb.reshape(x.i, (full[1], 1, full[2]), name)), True
        return x, False

    def back(self, y, was1d, name):
        if was1d:
            C, _, L = self.gb.shape(y)
            return _T(self.gb.reshape(y, (C, L), name))
        return _T(y)

    def pool(self, kind, name, x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False,
             count_include_pad=True, one_d=False):
        x2, was1d = self.as2d(x, name)
        if was1d:
            f = lambda v: (1, v if np.ndim(v) == 0 else v[0])  # noqa: E731
            kernel, stride, dilation = f(kernel), None if stride is None else f(stride), f(dilation)
            padding = (0, padding if np.ndim(padding) == 0 else padding[0])
        stride = kernel if stride is None or stride == [] or stride == () else stride
        if kind == "max":
            y = self.gb.max_pool(x2.i, kernel, stride, padding, dilation, ceil_mode, name)
        else:
            y = self.gb.avg_pool(x2.i, kernel, stride, padding, count_include_pad, ceil_mode, name)
        return self.back(y, was1d, name)

    def clip(self, x, lo, hi, name):
        return _T(self.gb.clip(x.i, -np.inf if lo is None else float(lo), np.inf if hi is None else float(hi), name))

    # -- modules ---------------------------------------------------------------------------------------------
    def module(self, m, name, x, *rest, **kw):
        nn = self.torch.nn
        gb = self.gb
        if rest or kw or not isinstance(x, _T):
            raise self.err(f"call of {type(m).__name__} with extra arguments", name)
        if isinstance(m, (nn.Identity, nn.Dropout)):
            return x
        if isinstance(m, nn.Linear):
            return _T(gb.dense(x.i, _np(m.weight).T, None if m.bias is None else _np(m.bias), name))
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            if m.padding_mode != "zeros":
                raise self.err(f"padding_mode {m.padding_mode!r}", name)
            W = _np(m.weight)
            x2, was1d = self.as2d(x, name)
            k, s, d = W.shape[2:], tuple(m.stride), tuple(m.dilation)
            if was1d:
                W, k, s, d = W[:, :, None, :], (1, W.shape[2]), (1, s[0]), (1, d[0])
            if m.padding == "valid":
                p = 0
            elif m.padding == "same":
                tot = [dd * (kk - 1) for kk, dd in zip(k, d)]
                p = (tot[0] // 2, tot[1] // 2, tot[0] - tot[0] // 2, tot[1] - tot[1] // 2)
            else:
                p = (0, m.padding[0]) if was1d else tuple(m.padding)
            y = gb.conv(x2.i, W, None if m.bias is None else _np(m.bias), s, p, d, m.groups, name)
            return self.back(y, was1d, name)
        if isinstance(m, nn.ReLU):
            return _T(gb.relu(x.i, name))
        if isinstance(m, nn.ReLU6):
            return self.clip(x, 0.0, 6.0, name)
        if isinstance(m, nn.LeakyReLU):
            return _T(gb.leaky_relu(x.i, m.negative_slope, name))
        if isinstance(m, nn.PReLU):
            w = _np(m.weight)
            r = len(gb.shape(x.i))
            slope = w.reshape(-1, *([1] * (r - 1))) if w.size > 1 else w.reshape(())
            return _T(gb.leaky_relu(x.i, slope, name))
        if isinstance(m, nn.Hardtanh):
            return self.clip(x, m.min_val, m.max_val, name)
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            if m.return_indices:
                raise self.err("MaxPool with return_indices", name)
            return self.pool("max", name, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
        if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
            if getattr(m, "divisor_override", None):
                raise self.err("AvgPool with divisor_override", name)
            return self.pool("avg", name, x, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode, m.count_include_pad)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            if m.output_size not in (1, (1, 1)):
                raise self.err(f"AdaptiveAvgPool2d({m.output_size}) (only output size 1)", name)
            return _T(gb.global_avg_pool(x.i, name))
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.training or m.running_mean is None:
                raise PiecewiseError(f"from_torch: batch norm {name} must be in eval mode with running statistics "
                                     "(call module.eval())")
            C = m.num_features
            g = _np(m.weight) if m.affine else np.ones(C)
            b = _np(m.bias) if m.affine else np.zeros(C)
            return _T(gb.batch_norm(x.i, g, b, _np(m.running_mean), _np(m.running_var), m.eps, name))
        if isinstance(m, nn.Flatten):
            return self.flatten(x, m.start_dim, m.end_dim, name)
        raise self.err(f"layer {type(m).__name__}", name)

    # -- functions and methods ---------------------------------------------------------------------------------
    def function(self, f, name, *args, **kw):
        torch, F = self.torch, self.torch.nn.functional
        x = args[0] if args else None
        if f in (operator.add, torch.add, operator.iadd):
            return self.arith(operator.add, name, *args[:2])
        if f in (operator.sub, torch.sub, operator.isub):
            return self.arith(operator.sub, name, *args[:2])
        if f in (operator.mul, torch.mul):
            return self.arith(operator.mul, name, *args[:2])
        if f in (operator.truediv, torch.div):
            return self.arith(operator.truediv, name, *args[:2])
        if f in (operator.neg, torch.neg):
            return _T(self.gb.scale_shift(x.i, -1.0, 0.0, name))
        if f is operator.getitem and not isinstance(x, _T):
            return x[args[1]]
        if not isinstance(x, (_T, list, tuple)):
            raise self.err(f"function {getattr(f, '__name__', f)} of constants", name)
        if f in (torch.relu, F.relu):
            return _T(self.gb.relu(x.i, name))
        if f is F.leaky_relu:
            return _T(self.gb.leaky_relu(x.i, kw.get("negative_slope", args[1] if len(args) > 1 else 0.01), name))
        if f is F.hardtanh:
            return self.clip(x, kw.get("min_val", args[1] if len(args) > 1 else -1.0),
                             kw.get("max_val", args[2] if len(args) > 2 else 1.0), name)
        if f is torch.abs:
            return _T(self.gb.abs(x.i, name))
        if f in (torch.clamp, torch.clip):
            return self.clip(x, kw.get("min", args[1] if len(args) > 1 else None),
                             kw.get("max", args[2] if len(args) > 2 else None), name)
        if f is torch.flatten:
            return self.flatten(x, kw.get("start_dim", args[1] if len(args) > 1 else 0),
                                kw.get("end_dim", args[2] if len(args) > 2 else -1), name)
        if f is torch.cat:
            dim = kw.get("dim", args[1] if len(args) > 1 else 0)
            r = len(self.full(x[0]))
            if dim % r == 0:
                raise self.err("concatenation along the batch axis", name)
            return _T(self.gb.concat([t.i for t in x], dim % r - 1, name))
        if f in (torch.maximum, torch.minimum, torch.max, torch.min) and len(args) == 2 and isinstance(args[1], _T):
            a, b = args
            s = 1.0 if f in (torch.maximum, torch.max) else -1.0
            shape = self.gb.shape(a.i)
            n = int(np.prod(shape))
            fl = [self.gb.flatten(self.gb.scale_shift(t.i, s, 0.0)) for t in (a, b)]
            y = self.gb.max_groups(self.gb.concat(fl, 0), np.stack([np.arange(n), n + np.arange(n)], 1), shape, name)
            return _T(self.gb.scale_shift(y, s, 0.0, name))
        if f in (F.max_pool1d, F.max_pool2d):
            p = dict(zip(("kernel", "stride", "padding", "dilation", "ceil_mode"), args[1:]))
            p.update({k.replace("kernel_size", "kernel"): v for k, v in kw.items() if k != "return_indices"})
            return self.pool("max", name, x, **p)
        if f in (F.avg_pool1d, F.avg_pool2d):
            p = dict(zip(("kernel", "stride", "padding", "ceil_mode", "count_include_pad"), args[1:]))
            p.update({k.replace("kernel_size", "kernel"): v for k, v in kw.items()})
            return self.pool("avg", name, x, **p)
        if f is F.adaptive_avg_pool2d and (args[1:] or (kw.get("output_size"),))[0] in (1, (1, 1)):
            return _T(self.gb.global_avg_pool(x.i, name))
        raise self.err(f"function {getattr(f, '__name__', f)}", name)

    def method(self, meth, name, x, *args, **kw):
        if meth == "size":
            s = self.full(x)
            return s[args[0]] if args else s
        if meth in ("view", "reshape"):
            shp = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            return self.reshape_full(x, list(shp), name)
        if meth == "flatten":
            return self.flatten(x, kw.get("start_dim", args[0] if args else 0), kw.get("end_dim", args[1] if len(args) > 1 else -1), name)
        if meth in ("contiguous", "float", "double"):
            return x
        if meth == "relu":
            return _T(self.gb.relu(x.i, name))
        if meth == "abs":
            return _T(self.gb.abs(x.i, name))
        if meth in ("clamp", "clip"):
            return self.clip(x, kw.get("min", args[0] if args else None), kw.get("max", args[1] if len(args) > 1 else None), name)
        import operator as op

        if meth in ("add", "sub", "mul", "div"):
            return self.arith({"add": op.add, "sub": op.sub, "mul": op.mul, "div": op.truediv}[meth], name, x, args[0])
        raise self.err(f"method .{meth}()", name)

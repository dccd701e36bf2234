"""Any JAX function of one array as a :class:`~piecewise.graph.Graph`, by reading its jaxpr.

Used by the Flax and Equinox importers. The function is traced with ``jax.make_jaxpr`` on an input of the
given shape (weights become constants) and every primitive is mapped onto graph nodes. Supported: dot_general
(tensor x constant), add / sub / mul / div / neg with constants, add / sub of two tensors, max / min (relu is
``max(x, 0)``; two tensors: an elementwise max node), abs, clamp, conv_general_dilated (any layout, groups,
padding, dilation), reduce_window_max (max-pool), reduce_window_sum (sum/avg-pool), reshape, squeeze,
expand_dims, broadcast_in_dim, transpose, convert_element_type, copy, and calls (pjit, custom_jvp /
custom_vjp: the primal function). Anything else is a one-line PiecewiseError naming the primitive.
Node shapes are the traced shapes themselves (no batch axis is removed).
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..graph import Graph, GraphBuilder


class _T:
    def __init__(self, i):
        self.i = int(i)


def from_jax(fn, input_shape, source: str = "function") -> Graph:
    import jax

    shape = tuple(int(s) for s in input_shape)
    try:
        closed = jax.make_jaxpr(fn)(np.zeros(shape, np.float32))
    except Exception as e:
        raise PiecewiseError(f"{source}: cannot trace the model on an input of shape {shape} "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    gb = GraphBuilder(shape)
    outs = _Interp(gb, source).run(closed.jaxpr, closed.consts, [_T(gb.input)])
    if len(outs) != 1 or not isinstance(outs[0], _T):
        raise PiecewiseError(f"{source}: the model must return one array that depends on its input")
    return gb.build(outs[0].i)


class _Interp:
    def __init__(self, gb: GraphBuilder, source: str):
        self.gb, self.source = gb, source

    def err(self, prim, msg="unsupported"):
        return PiecewiseError(f"{self.source}: {msg} JAX primitive {prim} (export to ONNX for other models)")

    def run(self, jaxpr, consts, args):
        from jax.extend.core import Literal

        env = {}

        def read(v):
            if isinstance(v, Literal):
                return np.asarray(v.val)
            return env[v]

        for v, c in zip(jaxpr.constvars, consts):
            env[v] = np.asarray(c)
        for v, a in zip(jaxpr.invars, args):
            env[v] = a
        for eqn in jaxpr.eqns:
            ins = [read(v) for v in eqn.invars]
            prim = eqn.primitive.name
            p = eqn.params
            if all(not isinstance(a, _T) for a in ins) and prim not in ("pjit", "jit", "closed_call"):
                outs = eqn.primitive.bind(*ins, **p)  # constant folding
                outs = outs if eqn.primitive.multiple_results else [outs]
                outs = [np.asarray(o) for o in outs]
            elif prim in ("pjit", "jit", "closed_call", "core_call", "remat", "checkpoint"):
                j = p.get("jaxpr") or p.get("call_jaxpr")
                outs = self.run(j.jaxpr, j.consts, ins) if hasattr(j, "jaxpr") else self.run(j, [], ins)
            elif prim in ("custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"):
                j = p.get("call_jaxpr") or p.get("fun_jaxpr")
                outs = self.run(j.jaxpr, j.consts, ins[-len(j.jaxpr.invars):])
            else:
                outs = [self.op(prim, p, ins, eqn)]
            for v, o in zip(eqn.outvars, outs):
                env[v] = o
        return [read(v) for v in jaxpr.outvars]

    def shape(self, t):
        return self.gb.shape(t.i)

    def const_to(self, t, c, prim):
        c = np.asarray(c, np.float64)
        try:
            return np.broadcast_to(c, self.shape(t))
        except ValueError:
            raise self.err(prim, f"constant of shape {c.shape} does not fit the tensor {self.shape(t)} in") from None

    def op(self, prim, p, ins, eqn):
        gb = self.gb
        if prim in ("convert_element_type", "copy", "copy_p", "reduce_precision", "optimization_barrier"):
            return ins[0]
        if prim in ("add", "sub", "add_any"):
            x, y = ins
            sign = -1.0 if prim == "sub" else 1.0
            if isinstance(x, _T) and isinstance(y, _T):
                if self.shape(x) != self.shape(y):
                    raise self.err(prim, "broadcasting two tensors in")
                return _T(gb.add(x.i, y.i, coefs=(1.0, sign)))
            if isinstance(x, _T):
                return _T(gb.scale_shift(x.i, 1.0, sign * self.const_to(x, y, prim)))
            return _T(gb.scale_shift(y.i, sign, self.const_to(y, x, prim)))
        if prim == "mul":
            x, y = ins
            if isinstance(x, _T) and isinstance(y, _T):
                raise self.err(prim, "a product of two tensors (not piecewise linear) in")
            t, c = (x, y) if isinstance(x, _T) else (y, x)
            return _T(gb.scale_shift(t.i, self.const_to(t, c, prim), 0.0))
        if prim == "div":
            x, y = ins
            if isinstance(y, _T):
                raise self.err(prim, "division by a tensor in")
            return _T(gb.scale_shift(x.i, 1.0 / self.const_to(x, y, prim), 0.0))
        if prim == "neg":
            return _T(gb.scale_shift(ins[0].i, -1.0, 0.0))
        if prim == "abs":
            return _T(gb.abs(ins[0].i))
        if prim in ("max", "min"):
            x, y = ins
            s = 1.0 if prim == "max" else -1.0
            if isinstance(x, _T) and isinstance(y, _T):
                shape = self.shape(x)
                n = int(np.prod(shape))
                fl = [gb.flatten(gb.scale_shift(t.i, s, 0.0)) for t in (x, y)]
                m = gb.max_groups(gb.concat(fl, 0), np.stack([np.arange(n), n + np.arange(n)], 1), shape)
                return _T(gb.scale_shift(m, s, 0.0))
            t, c = (x, y) if isinstance(x, _T) else (y, x)
            c = self.const_to(t, c, prim)
            if prim == "max":
                return _T(gb.clip(t.i, c, None) if np.any(c) else gb.relu(t.i))
            return _T(gb.clip(t.i, None, c))
        if prim == "clamp":
            lo, x, hi = ins
            return _T(gb.clip(x.i, self.const_to(x, lo, prim), self.const_to(x, hi, prim)))
        if prim == "reshape":
            return _T(gb.reshape(ins[0].i, p["new_sizes"]))
        if prim == "squeeze" or prim == "expand_dims":
            return _T(gb.reshape(ins[0].i, eqn.outvars[0].aval.shape))
        if prim == "transpose":
            return _T(gb.transpose(ins[0].i, p["permutation"]))
        if prim == "broadcast_in_dim":
            x = ins[0]
            src = self.shape(x)
            idx = np.arange(int(np.prod(src))).reshape(src)
            shape = tuple(p["shape"])
            exp = [1] * len(shape)
            for k, d in enumerate(p["broadcast_dimensions"]):
                exp[d] = src[k]
            idx = np.broadcast_to(idx.reshape(exp), shape)
            return _T(gb.select(x.i, idx.ravel(), shape))
        if prim == "dot_general":
            return self.dot(p, ins, prim)
        if prim == "conv_general_dilated":
            return self.conv(p, ins, prim)
        if prim in ("reduce_window_max", "reduce_window_sum"):
            return self.window(prim, p, ins[0], eqn.outvars[0].aval.shape)
        raise self.err(prim)

    def dot(self, p, ins, prim):
        (lc, rc), (lb, rb) = p["dimension_numbers"]
        x, y = ins
        if lb or rb or len(lc) != 1 or (isinstance(x, _T) and isinstance(y, _T)):
            raise self.err(prim, "this form of")
        if isinstance(x, _T):
            t, W, tc, wc = x, np.asarray(y, np.float64), lc[0], rc[0]
        else:
            t, W, tc, wc = y, np.asarray(x, np.float64), rc[0], lc[0]
        ts = self.shape(t)
        if W.ndim != 2 or tc != len(ts) - 1:
            raise self.err(prim, "this form of")
        W = W if wc == 0 else W.T  # (in, out)
        out = _T(self.gb.dense(t.i, W))
        if not isinstance(x, _T) and len(ts) > 1:  # const @ tensor: output dims (out, tensor's free dims)
            r = len(ts)
            out = _T(self.gb.transpose(out.i, [r - 1] + list(range(r - 1))))
        return out

    def conv(self, p, ins, prim):
        gb = self.gb
        x, k = ins
        if not isinstance(x, _T) or isinstance(k, _T):
            raise self.err(prim, "a convolution of a constant input in")
        if any(d != 1 for d in p["lhs_dilation"]) or p.get("batch_group_count", 1) != 1:
            raise self.err(prim, "transposed or batch-grouped")
        dn = p["dimension_numbers"]
        lhs, rhs, out = dn.lhs_spec, dn.rhs_spec, dn.out_spec
        if len(lhs) != 4:
            raise self.err(prim, "a non-2-D")
        xs = self.shape(x)
        if xs[lhs[0]] != 1:
            raise self.err(prim, "a batch larger than 1 in")
        nchw = gb.transpose(x.i, lhs)
        chw = gb.reshape(nchw, gb.shape(nchw)[1:])
        W = np.asarray(k, np.float64).transpose(rhs)
        (pt, pb), (pl, pr) = p["padding"]
        y = gb.conv(chw, W, None, p["window_strides"], (pt, pl, pb, pr), p["rhs_dilation"], p["feature_group_count"])
        y = gb.reshape(y, (1, *gb.shape(y)))
        perm = [0] * 4
        for i, d in enumerate(out):
            perm[d] = i
        return _T(gb.transpose(y, perm))

    def window(self, prim, p, x, out_shape):
        gb = self.gb
        s = self.shape(x)
        if any(d != 1 for d in p.get("base_dilation", (1,) * len(s))):
            raise self.err(prim, "base-dilated")
        win, st, pad = p["window_dimensions"], p["window_strides"], p["padding"]
        dil = p.get("window_dilation", (1,) * len(s))
        idx = np.arange(int(np.prod(s))).reshape(s)
        grids = np.indices(out_shape).reshape(len(s), -1)  # (r, P)
        offs = np.indices(win).reshape(len(s), -1)  # (r, K)
        pos = grids[:, :, None] * np.asarray(st)[:, None, None] + offs[:, None, :] * np.asarray(dil)[:, None, None] \
            - np.asarray([q[0] for q in pad])[:, None, None]  # (r, P, K)
        ok = np.all((pos >= 0) & (pos < np.asarray(s)[:, None, None]), axis=0)
        flat = idx[tuple(np.clip(pos[d], 0, s[d] - 1) for d in range(len(s)))]  # (P, K)
        if prim == "reduce_window_max":
            if not ok.any(1).all():
                raise self.err(prim, "a window entirely in the padding of")
            first = flat[np.arange(len(flat)), ok.argmax(1)]
            return _T(gb.max_groups(x.i, np.where(ok, flat, first[:, None]), out_shape))
        M = np.zeros((idx.size, len(flat)))
        for j in range(flat.shape[1]):
            np.add.at(M, (flat[ok[:, j], j], np.nonzero(ok[:, j])[0]), 1.0)
        return _T(gb.reshape(gb.dense(gb.flatten(x.i), M), out_shape))

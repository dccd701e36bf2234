"""A :class:`~piecewise.graph.Graph` as the engines see it: its activation and max nodes as stages, the affine
nodes between them, each value's last reader, and each affine node's norms (computed once). Read by the operator
engine (:mod:`.graph_engine`) and by the complex (:mod:`.cells`: the exact fallback's size limit)."""
from __future__ import annotations

import numpy as np

from .pieces import piece_tables

EXACT_UNITS_LIMIT = 20_000  # the exact fallback builds the dense staged net: only for graphs this small


class _Stage:
    """One stage of the program: the act/max node, its input, and its activation as the staged engine sees it."""

    def __init__(self, graph, k: int):
        from ..activations import maxout
        from ..graph import act_stage

        node = graph.nodes[k]
        self.node, self.src = k, node.inputs[0]
        self.m = graph.nodes[self.src].size
        if node.op == "max":
            self.groups = node.attrs["groups"]
            self.act = maxout(self.groups.shape[1])
            self.width = self.groups.shape[0]
            self.spec = None
        else:
            self.groups = None
            self.spec = act_stage(node)
            self.act = self.spec[0]
            self.width = self.m
            _, a, b, os_, ot, slopes = self.spec
            self.in_scale = None if np.all(a == 1.0) and np.all(b == 0.0) else (a, b)
            self.out = None if np.all(os_ == 1.0) and np.all(ot == 0.0) else (os_, ot)
            self.slope, self.const = piece_tables(self.act, self.m, slopes)


class Program:
    """A graph as stages and the affine nodes between them, with each value's last reader."""

    def norms(self, k: int):
        """:func:`.l2bounds.norms` of node k, computed once per graph (kept on it: a conv's operator norm
        costs an SVD per frequency, and local complexity runs many searches of one graph)."""
        cache = self.graph.__dict__.get("_l2norms")
        if cache is None:
            cache = {}
            object.__setattr__(self.graph, "_l2norms", cache)
        if k not in cache:
            from .l2bounds import norms

            cache[k] = norms(self.graph, k)
        return cache[k]

    def __init__(self, graph):
        from ..graph import act_stage
        from .jaxmaps import backend

        self.graph = graph
        self.maps = backend()  # the float64 maps' operators: "numpy" or "jax" (regions.jaxmaps)
        nodes = graph.nodes
        self.stages = []
        self.identity = set()  # act nodes without a finite bound: the identity
        for k, nd in enumerate(nodes):
            if nd.op == "max" or (nd.op == "act" and act_stage(nd) is not None):
                self.stages.append(_Stage(graph, k))
            elif nd.op == "act":
                self.identity.add(k)
        self.last = {k: k for k in range(len(nodes))}
        for k, nd in enumerate(nodes):
            for i in nd.inputs:
                self.last[i] = max(self.last[i], k)
        self.last[graph.output] = len(nodes)
        bounds = [0] + [st.node for st in self.stages] + [len(nodes) - 1]
        # the affine nodes evaluated before stage s (s = len(stages): before the output)
        self.segments = []
        for s in range(len(self.stages) + 1):
            lo = bounds[s] + 1 if s else 1
            hi = self.stages[s].node if s < len(self.stages) else len(nodes)
            self.segments.append([k for k in range(lo, hi) if nodes[k].op not in ("act", "max") or k in self.identity])
        self.n_units = sum(st.width for st in self.stages)
        self.bits = max([max(1, ((st.act.n_states if st.groups is None else st.groups.shape[1]) - 1).bit_length())
                         for st in self.stages] or [1])

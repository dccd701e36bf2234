"""piecewise: numerical analysis of piecewise-linear neural networks, in JAX."""
from . import activations as activations, bounds as bounds, constructions as constructions, regions as regions
from . import datasets as datasets, graph as graph, invertibility as invertibility, staged as staged, sweep as sweep
from . import decision as decision, train as train
from .activations import Activation as Activation, get_activation as get_activation
from .errors import PiecewiseError as PiecewiseError
from .graph import Graph as Graph, GraphBuilder as GraphBuilder
from .io import load_network as load_network, load_npz as load_npz, load_onnx as load_onnx
from .io import params_from_arrays as params_from_arrays, save_npz as save_npz
from .nets import MLP as MLP, mlp as mlp
from .patterns import classify as classify, pattern_words as pattern_words, unpack_states as unpack_states
from .regions import box as box, count_grid as count_grid, enumerate_cells as enumerate_cells, plane as plane, segment as segment

__version__ = "0.3.0"

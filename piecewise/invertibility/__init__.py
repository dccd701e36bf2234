"""Is a network map R^n -> R^n a homeomorphism? One module per idea:

* :mod:`.layers` — the layer theorem (:func:`check_layers`);
* :mod:`.pl` — the exact check of piecewise-linear maps, on a box or on the whole input space, with exact
  collisions (:func:`pl_homeomorphism`, :func:`auto_box`: a box holding every vertex of the cell complex);
* :mod:`.exact` — exact arithmetic for PL maps: collisions, determinant signs, preimage counts;
* :mod:`.smooth` — the Gale--Nikaido proof for one hidden layer, constructive and searched collisions of
  smooth nets;
* :mod:`.homeo` — the CLI's decision combining them (:func:`homeomorphism`);
* :mod:`.injectivity` — ReLU-layer injectivity by linear programs (Puthawala et al.);
* :mod:`.jacobians` — Jacobian fields, per-cell Jacobians, analytic log-determinants;
* :mod:`.inverses` — layerwise, per-cell and Newton inverses;
* :mod:`.results` — the typed results (``to_json()``, ``answer()``) and :mod:`.witness`, where smooth collisions
  are checked (relative to the map's scale).
"""
from .homeo import homeomorphism as homeomorphism
from .injectivity import injective_relu_layer as injective_relu_layer
from .injectivity import relu_layer_injective as relu_layer_injective
from .injectivity import relu_preimage_is_point as relu_preimage_is_point
from .inverses import invert_layerwise as invert_layerwise, invert_newton as invert_newton, invert_pl as invert_pl
from .jacobians import cell_jacobians as cell_jacobians, jacobian_field as jacobian_field, log_abs_det as log_abs_det
from .layers import check_layers as check_layers
from .pl import auto_box as auto_box, pl_homeomorphism as pl_homeomorphism
from .results import HomeoResult as HomeoResult, InjectivityResult as InjectivityResult, LayerReport as LayerReport
from .witness import verified as verified

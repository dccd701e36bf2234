"""The self-contained HTML explorer of a 2-D slice: :func:`explore` writes one page (data and scripts inlined,
no server, no network) with the exact cells of a network on a box of a 2-input network or on a plane slice.

``piecewise explore --weights F [--box LO HI | --plane P.npy] [--out page.html]`` does the same from the
command line. Scripts and tests read ``window.piecewise.regions`` and call ``window.piecewise.cellAt(s, t)``
(see :func:`explore`).

The package is callable: ``piecewise.explore(net, params, domain, out=...)`` is :func:`explore` (the package
``piecewise.explore`` and the function share the name, and the package's lazy attributes resolve
``piecewise.explore`` to this module).
"""
import sys as _sys
import types as _types

from ._page import MAX_CELLS as MAX_CELLS, build_page as build_page, explore as explore

__all__ = ["explore", "build_page", "MAX_CELLS"]


class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):
        return explore(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule

"""The optional compiled kernel of exact enumeration, built as a CPython extension module,
``piecewise.regions._pwkernel``: the kernel (piecewise/regions/_kernel.c) and its module definition
(_pwkernel_module.c) in one shared library, which ``pip wheel .`` puts in a platform wheel (it runs without a
compiler) and piecewise.regions._ckernel finds through importlib and loads with ctypes. The project's metadata
is in pyproject.toml; this file only declares the extension. ``optional=True``: where no C compiler is found,
the install still succeeds and the engine runs its NumPy path (same results, slower; ``piecewise info`` says
why)."""
import os

from setuptools import Extension, setup


def shared_macros():
    """The constants of piecewise/_shared.py (read, not imported: it needs nothing) as PW_<name> macros: ints as
    decimal, floats as exact hexadecimal literals (C99), so C and Python hold the same values bit for bit."""
    ns = {}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "piecewise", "_shared.py")) as f:
        exec(f.read(), ns)
    out = []
    for name in ns["C_MACROS"]:
        v = ns[name]
        out.append((f"PW_{name}", float.hex(v) if isinstance(v, float) else f"({int(v)})"))
    return out


setup(
    ext_modules=[
        Extension(
            "piecewise.regions._pwkernel",
            sources=["piecewise/regions/_kernel.c", "piecewise/regions/_pwkernel_module.c"],
            # no fused multiply-add: the kernel must round exactly as the NumPy path does
            extra_compile_args=["-O3", "-ffp-contract=off", "-std=c99"],
            define_macros=shared_macros(),
            optional=True,
        )
    ],
    # the C sources are in the sdist (MANIFEST.in), not in the wheel: it carries the built library
    exclude_package_data={"piecewise.regions": ["*.c"]},
)

"""The optional compiled kernel of exact enumeration (piecewise/regions/_kernel.c). The project's metadata is
in pyproject.toml; this file only declares the extension. ``optional=True``: where no C compiler is found,
the install still succeeds and the engine runs its NumPy path (same results, slower)."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "piecewise.regions._pwkernel",
            sources=["piecewise/regions/_kernel.c"],
            # no fused multiply-add: the kernel must round exactly as the NumPy path does
            extra_compile_args=["-O3", "-ffp-contract=off", "-std=c99"],
            optional=True,
        )
    ]
)

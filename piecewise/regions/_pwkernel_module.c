/* The module definition that makes the compiled kernel (_kernel.c, linked into the same shared library) a
 * real CPython extension module, piecewise.regions._pwkernel: the import system finds it under its
 * platform's extension suffix (importlib.util.find_spec gives the library's path) and
 * `import piecewise.regions._pwkernel` works. The module has no Python functions: the kernel's functions
 * (pw_stage, pw_fetch, ...) are called through ctypes by piecewise/regions/_ckernel.py, which loads this
 * same library with ctypes.CDLL, so that the GIL is released during a call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef pwkernel_module = {
    PyModuleDef_HEAD_INIT,
    "_pwkernel",
    "The compiled kernel of exact enumeration (piecewise/regions/_kernel.c). It has no Python functions: "
    "piecewise.regions._ckernel loads this library with ctypes and calls its C functions (pw_stage, ...).",
    0,
    NULL,
};

PyMODINIT_FUNC PyInit__pwkernel(void)
{
    return PyModule_Create(&pwkernel_module);
}

"""The constants the compiled kernel (``piecewise/regions/_kernel.c``) and the Python engine share, written
once, here. ``setup.py`` reads this file (it imports nothing) and passes each value to the C compiler as a
macro (``-DPW_NOLAB=...``; doubles as exact hexadecimal literals), and ``_kernel.c`` refuses to compile
without them; the Python modules import them from here.
"""

U = 2.0**-53  # unit roundoff of float64
SAFETY = 1.0 + 2.0**-20  # covers the rounding of the bounds' own float64 computation
NOLAB = -(2**30)  # padding label of polygon edges and polytope facet slots (no split event has it)
NEWBASE = 2**30  # labels of new facets in a kernel call's output: NEWBASE + the event's index in that call
F = 64  # facet slots per n-D cell (the bits of one uint64 incidence word)
UNSET_LABEL = -(2**31) + 7  # Python only: a max-piece line's event not registered yet (no facet carries it)

C_MACROS = ("U", "SAFETY", "NOLAB", "NEWBASE", "F")  # what setup.py passes to the compiler (as PW_<name>)

"""The one exception type for user mistakes (bad weights, bad domain, unknown activation, ...).

The CLI turns a :class:`PiecewiseError` into a single line on stderr and exit status 2; any other
exception is a bug and keeps its traceback.
"""


class PiecewiseError(ValueError):
    """A user-facing error: the message names the problem in one line."""

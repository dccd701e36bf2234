"""Writing result files atomically: a temporary file in the same folder (a unique name, so two writers
never collide), then ``os.replace``. A reader never sees a half-written file, and a killed run leaves the
previous version intact."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_open(path: "str | os.PathLike", mode: str = "w", **kwargs):
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``, on error it is
    removed. The parent folder must exist (a missing folder is the caller's decision to create)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: "str | os.PathLike", obj, *, indent: int | None = 1) -> str:
    """Write ``obj`` as JSON to ``path`` atomically; returns the path."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=indent)
    return os.fspath(path)

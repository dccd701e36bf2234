"""Writing result files atomically: a temporary file in the same folder (a unique name, so two writers
never collide), then ``os.replace``. A reader never sees a half-written file, and a killed run leaves the
previous version intact.

Permissions are those a plain ``open(path, "w")`` gives: a new file gets ``0o666 & ~umask`` (the temporary
file is created with mode 0o666 and the kernel applies the umask and the folder's default ACL, so the umask
is never read or changed), and a file that is replaced keeps its mode. (``tempfile.mkstemp`` would leave
every result 0600, unreadable to collaborators and CI.)

:func:`make_folder` checks an output folder before any work starts: a one-line
:class:`~piecewise.errors.PiecewiseError` when it cannot be created or written.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat

from .errors import PiecewiseError

# as tempfile's: exclusive creation, no following a planted link, binary on Windows, not inherited
_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
          | getattr(os, "O_NOINHERIT", 0))


def _create_temp(folder: str, prefix: str, suffix: str) -> tuple[int, str]:
    """A new file ``folder/prefix<random>suffix`` opened for writing, with the mode a plain ``open`` would
    give it; returns (fd, path)."""
    for _ in range(100):
        tmp = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder}")


def _existing_mode(path: str) -> int | None:
    """The permission bits of the regular file at ``path``, or None (no file there, or not a regular file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


@contextlib.contextmanager
def atomic_open(path: "str | os.PathLike", mode: str = "w", **kwargs):
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``, on error it is
    removed. The parent folder must exist (a missing folder is the caller's decision to create). The file
    gets the mode a plain ``open(path, mode)`` would give it (module docstring)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(folder, os.path.basename(path) + ".", ".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        keep = _existing_mode(path)
        if keep is not None:
            os.chmod(tmp, keep)
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


def make_folder(path: "str | os.PathLike", what: str = "output folder") -> str:
    """Create the folder ``path`` (and its parents) unless it exists, and check that files can be written in
    it (by creating and removing one). Raises a one-line :class:`PiecewiseError` naming the problem (``what``
    names the folder in it, e.g. ``"--out folder"``); returns the path."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise PiecewiseError(f"{what} {path} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise PiecewiseError(f"cannot create the {what} {path}: {e.strerror or e}") from None
    try:
        fd, probe = _create_temp(path, ".piecewise-write-test.", ".tmp")
    except OSError as e:
        raise PiecewiseError(f"cannot write in the {what} {path}: {e.strerror or e}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return path

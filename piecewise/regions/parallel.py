"""The engine's threads: how many (:func:`default_threads`), a map over work items on them (:func:`pmap`), the
pools, and one BLAS thread per engine thread (the engine's threads already use the cores)."""
from __future__ import annotations

import threading

from ..errors import PiecewiseError

_POOLS: dict = {}
_WORKER = threading.local()  # .inside is True in the pools' worker threads


def pmap(fn, items, threads: int):
    """Run fn over items on ``threads`` of the engine's worker threads (NumPy releases the GIL in its kernels).
    Called from one of those threads (a stage split among the threads whose compiled parts split again), it
    runs the items in the calling thread: the outer items already use the cores, and waiting on the same
    pool from inside it deadlocks once every worker waits."""
    items = list(items)
    if threads <= 1 or len(items) <= 1 or getattr(_WORKER, "inside", False):
        return [fn(x) for x in items]
    return list(_pool(threads).map(fn, items))


def default_threads() -> int:
    """The engine's default worker threads: the cores this process may run on (its CPU affinity, which
    containers and ``taskset`` restrict), or ``PIECEWISE_THREADS`` when set."""
    import os

    env = os.environ.get("PIECEWISE_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise PiecewiseError(f"PIECEWISE_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise PiecewiseError(f"PIECEWISE_THREADS must be a positive integer, got {env!r}")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _pool(n: int):
    if n not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor

        _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="piecewise-exact", initializer=_worker_init)
    return _POOLS[n]


def _worker_init():
    _WORKER.inside = True
    _one_blas_thread()


def _one_blas_thread():
    """In the engine's worker threads, BLAS runs on one thread: the blocks are already spread over the cores,
    and OpenBLAS's own threads on top of them oversubscribed the machine (2-128x4: 1.2 s -> 1.05 s). Uses
    OpenBLAS's per-thread setting (``openblas_set_num_threads_local``, OpenBLAS >= 0.3.27, as bundled with
    NumPy) where it is loaded; otherwise nothing changes."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return
    for path in sorted(paths):
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        fn(1)

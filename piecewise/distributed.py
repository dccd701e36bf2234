"""Running independent tasks (sweep cells, domain tiles) in-process or on a Dask cluster.

Three modes, one interface (:func:`run_tasks`):

* **in-process** (default): a plain loop in this process;
* ``workers=N``: a :class:`dask.distributed.LocalCluster` with N worker processes (one thread each), started
  for the call and shut down after it;
* ``scheduler="tcp://HOST:PORT"``: an existing Dask cluster (``dask scheduler`` / ``dask worker``, or any
  deployment); its workers must be able to ``import piecewise`` (same version). A
  :class:`dask.distributed.Client` may be passed instead of an address.

Dask is optional (``pip install 'piecewise[dask]'``); asking for workers or a scheduler without it is a
one-line :class:`~piecewise.errors.PiecewiseError`.

Failures: a task that raises, or whose worker dies (Dask's ``KilledWorker`` after the scheduler's retries),
becomes a :class:`TaskFailure` naming the task. With ``fail_fast=False`` the other tasks keep running and
their results are still handed to ``on_result`` (so a sweep keeps every finished cell and ``--resume`` does
the rest); :func:`run_tasks` then raises, listing the failures, one of two exceptions:

* :class:`TasksFailed` (a :class:`~piecewise.errors.PiecewiseError`: one line, exit status 2 on the command
  line) when every failure is a user mistake (a ``PiecewiseError`` raised by the task, e.g. a cap exceeded)
  or the infrastructure's: a worker that died (``KilledWorker``), a task cancelled or a connection lost with
  the cluster. Those have no traceback worth reading (the task did not raise; the process was killed, for
  memory or by the system) and the remedy is the user's: more memory, fewer workers, ``--resume``.
* :class:`TasksCrashed` (a ``RuntimeError``, not a PiecewiseError: the CLI prints its traceback and exits 1)
  when some task raised anything else -- a bug. Its message ends with the original traceback text of the
  first such task (from the worker on Dask), and ``exceptions`` holds the exception objects.

A progress bar (tqdm) counts finished tasks in every mode.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import logging
import os
import sys
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .errors import PiecewiseError

INSTALL_HINT = "pip install 'piecewise[dask]'"
CONNECT_TIMEOUT = "15s"  # how long to wait for a scheduler given by address


def have_dask() -> bool:
    """Whether ``dask.distributed`` can be imported."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _require_dask(what: str):
    try:
        import dask.distributed as dd
    except ImportError:
        raise PiecewiseError(f"{what} needs Dask, which is not installed: {INSTALL_HINT}") from None
    return dd


@dataclass(frozen=True)
class TaskFailure:
    """One failed task: its description (``label``) and the error, one line; ``traceback``: the task's
    traceback text when the error is a bug (not a PiecewiseError, not the infrastructure's), else None."""

    index: int
    label: str
    error: str
    traceback: str | None = None

    def __str__(self) -> str:
        return f"{self.label}: {self.error}"


class TasksFailed(PiecewiseError):
    """Some tasks failed; ``failures`` lists them (the message names the first)."""

    def __init__(self, failures: Sequence[TaskFailure], total: int, hint: str = ""):
        self.failures = list(failures)
        first = self.failures[0]
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        super().__init__(f"{len(self.failures)} of {total} tasks failed; {first}{more}{hint}")


class TasksCrashed(RuntimeError):
    """Some tasks raised an unexpected exception (a bug, not a user mistake). ``failures`` lists every failed
    task (user errors and lost workers included), ``exceptions`` maps a crashed task's index to its exception;
    the message names the first crashed task and ends with its traceback text."""

    def __init__(self, failures: Sequence[TaskFailure], total: int, hint: str = "", exceptions=None):
        self.failures = list(failures)
        self.exceptions = dict(exceptions or {})
        crashed = [f for f in self.failures if f.traceback is not None]
        first = crashed[0]
        n = len(self.failures)
        others = f" (and {n - 1} more failed task{'s' if n > 2 else ''})" if n > 1 else ""
        super().__init__(f"{n} of {total} tasks failed, {len(crashed)} with an unexpected error (a bug); "
                         f"{first}{others}{hint}\n\nTraceback of {first.label}:\n{first.traceback.rstrip()}")


def _infrastructure_errors() -> tuple:
    """Exception types of a task lost to the infrastructure rather than raised by its code: its worker died
    (``KilledWorker``), it was cancelled, the connection to the cluster closed."""
    types = [concurrent.futures.CancelledError]
    try:
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker
    except ImportError:
        return tuple(types)
    return (*types, KilledWorker, CommClosedError)


def _failure(i: int, label: str, exc: BaseException) -> TaskFailure:
    """The failure of task i: a user mistake or a lost task in one line, a bug with its traceback."""
    if isinstance(exc, (PiecewiseError, *_infrastructure_errors())):
        return TaskFailure(i, label, _one_line(exc))
    return TaskFailure(i, label, _one_line(exc), "".join(traceback.format_exception(exc)))


def _raise_failures(failures: list, exceptions: dict, total: int, hint: str) -> None:
    failures = sorted(failures, key=lambda f: f.index)
    if any(f.traceback is not None for f in failures):
        raise TasksCrashed(failures, total, hint, exceptions)
    raise TasksFailed(failures, total, hint)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


def check_mode(workers=None, scheduler=None) -> None:
    """Validate the execution options (before any work starts): at most one of them, a positive worker
    count, and Dask installed when either is given."""
    if workers is not None and scheduler is not None:
        raise PiecewiseError("give either workers (a local cluster) or a scheduler address, not both")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise PiecewiseError(f"workers must be a positive integer, got {workers!r}")
        _require_dask("--workers")
    if scheduler is not None:
        if isinstance(scheduler, str):
            if not scheduler.strip():
                raise PiecewiseError("scheduler address is empty: expected tcp://HOST:PORT")
        _require_dask("--scheduler")


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler=None):
    """A connected :class:`dask.distributed.Client` for the mode: a fresh LocalCluster of ``workers``
    processes (closed on exit), or the cluster at ``scheduler`` (an address, or a Client that is used as
    is and left open)."""
    check_mode(workers, scheduler)
    dd = _require_dask("--workers" if workers is not None else "--scheduler")
    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # a Client given by the caller
        return
    if scheduler is not None:
        try:
            client = dd.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise PiecewiseError(f"cannot connect to the Dask scheduler at {scheduler}: {_one_line(e)}") from None
        try:
            yield client
        finally:
            client.close()
        return
    with warnings.catch_warnings():  # no dashboard; Dask warns when its default HTTP port is taken
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = dd.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL)
    try:
        client = dd.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@contextlib.contextmanager
def reuse_freed_memory():
    """While a task runs on a Dask worker, let glibc keep freed memory for reuse. Dask starts its workers with
    ``MALLOC_TRIM_THRESHOLD_=65536``; setting it also pins glibc's mmap threshold at 128 kB, so every large
    NumPy temporary of the engine is a fresh mmap whose pages are faulted in again (a 2-256x3 tile count
    spent a quarter of its time in the kernel). The worker's settings are restored afterwards and the
    freed memory is handed back (``malloc_trim``). Only where that variable is set, on glibc."""
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = None
    if trim is not None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            libc = None
    if libc is None:
        yield
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, int(os.environ.get("MALLOC_MMAP_THRESHOLD_", 128 << 10)))
        libc.mallopt(M_TRIM_THRESHOLD, int(trim))
        libc.malloc_trim(0)


def run_tasks(fn: Callable, items: Sequence, *, shared: Any = None, workers: int | None = None, scheduler=None,
              on_result: Callable[[int, Any], None] | None = None, label: Callable[[Any], str] = str,
              progress: bool | None = None, desc: str = "tasks", unit: str = "task", fail_fast: bool = False,
              hint: str = "", prepare: Callable[[Any], Any] | None = None) -> list:
    """Run ``fn(item, shared)`` for every item; returns the results in the order of ``items``.

    Args:
      fn: a module-level function (pickled by reference for worker processes).
      items: the tasks' arguments (small, picklable).
      shared: one argument common to every task (e.g. the network's parameters), sent to each worker once.
      workers, scheduler: the execution mode (see the module docstring); neither means in-process.
      on_result: called in this process as ``on_result(index, result)`` when a task finishes (in completion
        order), e.g. to write results atomically as they arrive.
      label: how a failed task is named in the error (``label(item)``).
      progress: show a tqdm bar (None: tqdm's default, on when stderr is a terminal).
      fail_fast: stop at the first failure (cancelling the rest) instead of finishing the other tasks.
      hint: appended to the failure message (e.g. how to resume).
      prepare: computed in this process just before a task is submitted: the task then gets
        ``fn(prepare(item), shared)`` (e.g. initial parameters, made once per shape here rather than
        compiled again on every worker). Dask mode keeps a bounded number of tasks in flight, so prepared
        arguments never pile up.
    Raises:
      TasksFailed: after the other tasks finished (or at once with ``fail_fast``), naming the failed ones, when
        each raised a PiecewiseError or was lost with its worker (module docstring).
      TasksCrashed: the same, when some task raised any other exception (a bug): with its traceback.
    """
    from tqdm.auto import tqdm

    check_mode(workers, scheduler)
    items = list(items)
    results: list = [None] * len(items)
    failures: list[TaskFailure] = []
    exceptions: dict[int, BaseException] = {}  # the crashed tasks' exceptions (bugs)

    def failed(i, item, exc):
        f = _failure(i, label(item), exc)
        failures.append(f)
        if f.traceback is not None:
            exceptions[i] = exc

    bar = tqdm(total=len(items), desc=desc, unit=unit, leave=False,
               disable=(not progress) if progress is not None else None)

    def done(i, value):
        results[i] = value
        if on_result is not None:
            on_result(i, value)
        bar.update(1)

    try:
        if workers is None and scheduler is None:
            for i, item in enumerate(items):
                try:
                    value = fn(item if prepare is None else prepare(item), shared)
                except Exception as e:  # noqa: BLE001 - reported with the task that failed
                    failed(i, item, e)
                    if fail_fast:
                        break
                    continue
                done(i, value)
        else:
            _run_dask(fn, items, shared, workers, scheduler, done, failed, failures, fail_fast, prepare)
    finally:
        bar.close()
    if failures:
        _raise_failures(failures, exceptions, len(items), hint)
    return results


def _run_dask(fn, items, shared, workers, scheduler, done, failed, failures, fail_fast, prepare):
    import uuid

    dd = _require_dask("--workers" if workers is not None else "--scheduler")
    with dask_client(workers, scheduler) as client:
        token = uuid.uuid4().hex[:8]
        common = client.scatter(shared, broadcast=True, hash=False) if shared is not None else None
        window = max(8, 4 * sum(client.nthreads().values()))  # tasks in flight (workers may join later)
        futures = {}
        todo = iter(enumerate(items))

        def submit_next():
            for i, item in todo:
                try:
                    arg = item if prepare is None else prepare(item)
                except Exception as e:  # noqa: BLE001 - reported with the task that failed
                    failed(i, item, e)
                    if fail_fast:
                        return None
                    continue
                f = client.submit(fn, arg, common, key=f"{getattr(fn, '__name__', 'task')}-{token}-{i}", pure=False)
                futures[f.key] = (i, f)
                return f
            return None

        first = [f for f in (submit_next() for _ in range(window)) if f is not None]
        if fail_fast and failures:
            first = []
        queue = dd.as_completed(first, loop=client.loop)
        try:
            for f in queue:
                i, _ = futures.pop(f.key)
                try:
                    value = f.result()  # waits if the result was lost with its worker and is being recomputed
                except Exception as e:  # noqa: BLE001 - the task's error, KilledWorker, CancelledError
                    failed(i, items[i], e)
                    f.release()
                    if fail_fast:
                        break
                else:
                    f.release()
                    done(i, value)
                n_fail = len(failures)
                nxt = submit_next()
                if fail_fast and len(failures) > n_fail:
                    break
                if nxt is not None:
                    queue.add(nxt)
        finally:
            for _, f in futures.values():
                f.cancel()

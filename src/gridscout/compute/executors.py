"""The executor interface and its two back-ends: in-process and Dask distributed."""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

DEFAULT_RETRIES = 2
"""Extra attempts after a task's first failure (a worker lost mid-task counts as one)."""
LOCAL_THREADS = 2
"""Threads of the default in-process executor: one exposure assessed while the next is taken.
More gain little where assessments are bound by memory bandwidth (BENCHMARKS.md, compute)."""


class ComputeAddressError(ValueError):
    """The compute address is not one GridScout understands."""


@dataclass(frozen=True)
class TaskOutcome:
    """What became of one submitted task: its value, or the error after the last attempt.

    Attributes
    ----------
    key : str
        The caller's name for the task (unique per executor).
    ok : bool
    value : Any
        The function's return value when `ok`.
    error : str or None
        Exception type and message of the last attempt when not `ok`.
    attempts : int
        Attempts made, 1 + retries used.
    seconds : float
        Wall time from submission to this outcome.
    where : str
        ``"in-process"`` or the address of the worker that produced the value.
    """

    key: str
    ok: bool
    value: Any = None
    error: str | None = None
    attempts: int = 1
    seconds: float = 0.0
    where: str = ""


@dataclass
class _Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    submitted: float = field(default_factory=time.perf_counter)
    attempts: int = 0


class Executor(ABC):
    """Runs plain functions somewhere and hands back their outcomes as they complete."""

    def __init__(self, retries: int = DEFAULT_RETRIES) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.retries = retries
        self._tasks: dict[str, _Task] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, key: str | None = None, **kwargs: Any) -> str:
        """Queue ``fn(*args, **kwargs)``; returns its key.

        Tasks should be plain functions of file paths or arrays (what a cluster can ship).
        """
        key = key or f"{getattr(fn, '__name__', 'task')}-{len(self._tasks)}"
        if key in self._tasks:
            raise ValueError(f"a task named {key!r} was already submitted")
        self._tasks[key] = _Task(fn, args, kwargs)
        self._start(key)
        return key

    @property
    def pending(self) -> int:
        """Tasks submitted whose outcome has not been handed out yet."""
        return len(self._tasks)

    @abstractmethod
    def outcomes(self, timeout_s: float | None = None) -> Iterator[TaskOutcome]:
        """Outcomes of all pending tasks, in the order they complete.

        A task still without a result `timeout_s` seconds after this call started
        comes back failed ("no result within ..."), so the caller never waits forever.
        """

    def close(self) -> None:  # noqa: B027 - back-ends with nothing to release keep the default
        """Release workers and connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self, key: str) -> None:  # noqa: B027 - the in-process back-end starts nothing ahead
        """Begin running a newly submitted task (a cluster starts at once)."""

    def _finish(self, key: str, *, value: Any = None, error: str | None = None, where: str = "") -> TaskOutcome:
        task = self._tasks.pop(key)
        return TaskOutcome(key=key, ok=error is None, value=value, error=error, attempts=task.attempts,
                           seconds=time.perf_counter() - task.submitted, where=where)


class InProcessExecutor(Executor):
    """Runs tasks in this process: on `threads` threads from submission, or one by one when asked.

    With threads, a task starts as soon as it is submitted, so an exposure is assessed
    while the microscope takes the next one (NumPy and SciPy's FFTs release the GIL).
    Outcomes come in submission order either way, so what a caller records does not
    depend on which thread finished first.

    Parameters
    ----------
    retries : int
        Extra attempts after a failure.
    threads : int
        Tasks run at once; 0 runs each task inside `outcomes`, in the caller's thread.
    """

    def __init__(self, retries: int = DEFAULT_RETRIES, *, threads: int = 0) -> None:
        super().__init__(retries)
        if threads < 0:
            raise ValueError(f"threads must be >= 0, got {threads}")
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="gridscout-task") if threads else None
        self._futures: dict[str, Future] = {}

    def _start(self, key: str) -> None:
        if self._pool is not None:
            task = self._tasks[key]
            self._futures[key] = self._pool.submit(self._attempts, task)

    def outcomes(self, timeout_s: float | None = None) -> Iterator[TaskOutcome]:
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        for key in list(self._tasks):
            left = None if deadline is None else deadline - time.perf_counter()
            if left is not None and left <= 0 and not self._done(key):
                self._futures.pop(key, None)  # a running thread cannot be stopped; its result is dropped
                yield self._finish(key, error=f"TimeoutError: no result within {timeout_s:g} s")
                continue
            future = self._futures.pop(key, None)
            try:
                value, error = future.result(timeout=left) if future else self._attempts(self._tasks[key])
            except FutureTimeout:
                yield self._finish(key, error=f"TimeoutError: no result within {timeout_s:g} s")
                continue
            yield self._finish(key, value=value, error=error, where="in-process")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _done(self, key: str) -> bool:
        future = self._futures.get(key)
        return future is not None and future.done()

    def _attempts(self, task: _Task) -> tuple[Any, str | None]:
        """Run `task` until it succeeds or its retries are spent: (value, None) or (None, error)."""
        while True:
            task.attempts += 1
            try:
                return task.fn(*task.args, **task.kwargs), None
            except Exception as err:  # noqa: BLE001 - any task error becomes a failed outcome
                if task.attempts > self.retries:
                    return None, _describe(err)


class DaskExecutor(Executor):
    """Runs tasks on a Dask distributed cluster through a `distributed.Client`.

    Retries are GridScout's own (a failed or lost task is submitted again, up to
    `retries` times), so both back-ends count attempts the same way. A worker that dies
    mid-task is survived: the scheduler moves its tasks to the other workers.
    """

    def __init__(self, client: Any, retries: int = DEFAULT_RETRIES, *, cluster: Any = None) -> None:
        super().__init__(retries)
        self.client = client
        self._cluster = cluster
        self._futures: dict[Any, str] = {}

    def _start(self, key: str) -> None:
        task = self._tasks[key]
        task.attempts += 1
        future = self.client.submit(task.fn, *task.args, key=f"{key}-attempt{task.attempts}", pure=False, **task.kwargs)
        self._futures[future] = key

    def outcomes(self, timeout_s: float | None = None) -> Iterator[TaskOutcome]:
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        while self._futures:
            future = self._next(deadline)
            if future is None:
                yield from self._time_out(timeout_s)
                return
            key = self._futures.pop(future)
            outcome = self._collect(key, future)
            if outcome is not None:
                yield outcome

    def _next(self, deadline: float | None) -> Any:
        """A finished attempt's future, or None once `deadline` has passed with none finished."""
        from distributed import wait

        left = None if deadline is None else max(deadline - time.perf_counter(), 0.0)
        try:
            done = wait(list(self._futures), timeout=left, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return None
        return next(iter(done))

    def _collect(self, key: str, future: Any) -> TaskOutcome | None:
        """The outcome of a finished attempt, or None when it failed and was submitted again."""
        if future.status == "finished":
            where = self._where(future)
            return self._finish(key, value=future.result(), where=where)
        error = _describe(future.exception()) if future.status == "error" else f"task {future.status}"
        if self._tasks[key].attempts > self.retries:
            return self._finish(key, error=error)
        self._start(key)
        return None

    def _where(self, future: Any) -> str:
        try:
            return ",".join(sorted(self.client.who_has([future]).get(future.key, ()))) or "cluster"
        except Exception:  # noqa: BLE001 - the worker may already be gone; the value is what matters
            return "cluster"

    def _time_out(self, timeout_s: float | None) -> Iterator[TaskOutcome]:
        for future, key in list(self._futures.items()):
            future.cancel()
            del self._futures[future]
            yield self._finish(key, error=f"TimeoutError: no result within {timeout_s:g} s")

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def connect(address: str | None, *, retries: int = DEFAULT_RETRIES) -> Executor:
    """An executor for `address`.

    Parameters
    ----------
    address : str or None
        None, ``""`` or ``"local"``: in this process, on `LOCAL_THREADS` threads. ``"local:N"``: a
        `distributed.LocalCluster` of N single-threaded worker processes, started here
        and stopped on `close`. ``"tcp://host:8786"`` (or ``tls://``, ``ucx://``): an
        existing Dask scheduler, for example one started by dask-jobqueue on Slurm.
    retries : int
        Extra attempts after a failure.

    Raises
    ------
    ComputeAddressError
        An address of another form, or Dask not installed.
    """
    if not address or address == "local":
        return InProcessExecutor(retries, threads=LOCAL_THREADS)
    if address.startswith("local:"):
        workers = _worker_count(address)
        distributed = _import_distributed(address)
        import dask

        # Hand a worker a new task only when it is free: exposures take seconds each, and
        # tasks queued ahead on one worker would wait while another sits idle.
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=40)
        return DaskExecutor(distributed.Client(cluster), retries, cluster=cluster)
    if address.split("://", 1)[0] in ("tcp", "tls", "ucx", "inproc") and "://" in address:
        return DaskExecutor(_import_distributed(address).Client(address, timeout="20s"), retries)
    raise ComputeAddressError(f"compute address {address!r}: use local, local:N or tcp://host:port")


def _worker_count(address: str) -> int:
    count = address.split(":", 1)[1]
    if not count.isdigit() or int(count) < 1:
        raise ComputeAddressError(f"compute address {address!r}: local:N needs a worker count N >= 1")
    return int(count)


def _import_distributed(address: str) -> Any:
    try:
        import distributed
    except ImportError:
        raise ComputeAddressError(
            f"compute address {address!r} needs Dask: pip install 'gridscout[dask]'"
        ) from None
    return distributed


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return last

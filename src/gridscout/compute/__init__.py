"""Where heavy work runs: in-process by default, a Dask cluster by address.

One small interface (`Executor`): submit a plain function with its arguments, get
the outcomes back as they complete. Failures are retried and then reported as a
failed `TaskOutcome`, never raised into the caller's loop, so a session cannot hang
on a task. Nothing here imports the rest of GridScout.

>>> with connect(None) as executor:  # in-process
...     _ = executor.submit(pow, 2, 10, key="two-to-the-ten")
...     [outcome.value for outcome in executor.outcomes()]
[1024]
"""

from .executors import DaskExecutor, Executor, InProcessExecutor, TaskOutcome, connect

__all__ = ["DaskExecutor", "Executor", "InProcessExecutor", "TaskOutcome", "connect"]

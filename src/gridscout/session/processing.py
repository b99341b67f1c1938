"""Exposure processing as events: assessments submitted to an executor come back as events."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..compute import Executor, TaskOutcome
from ..model.events import ExposureAssessed, ProcessingFailed
from ..quality.files import assessment_record


def process_exposures(
    executor: Executor, paths: Iterable[str], *, timeout_s: float | None = None, **options: Any
) -> Iterator[ExposureAssessed | ProcessingFailed]:
    """Assess every exposure file on `executor`, yielding one event per file as each completes.

    Parameters
    ----------
    executor : Executor
        From `gridscout.compute.connect` (in-process or a Dask cluster).
    paths : iterable of str
        Exposure files, readable from wherever the executor runs its tasks.
    timeout_s : float, optional
        Files without a result this long after the last submission become
        `ProcessingFailed` events.
    **options
        Passed to `quality.files.assess_file_with` (dose, particle diameter, optics).
    """
    for path in paths:
        executor.submit(assessment_record, str(path), key=str(path), **options)
    for outcome in executor.outcomes(timeout_s=timeout_s):
        yield event_from_outcome(outcome)


def event_from_outcome(outcome: TaskOutcome) -> ExposureAssessed | ProcessingFailed:
    """The event that records a processing task's outcome."""
    if outcome.ok:
        return ExposureAssessed(exposure=outcome.key, assessment=outcome.value, attempts=outcome.attempts,
                                seconds=outcome.seconds, worker=outcome.where)
    return ProcessingFailed(exposure=outcome.key, error=outcome.error or "unknown error", attempts=outcome.attempts)

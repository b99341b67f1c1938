"""Session events: small typed records of what happened, in the order it happened.

The engine writes each to the store and publishes it; the web interface, the reports
and the learners read the same stream. This module holds the events of exposure
processing; the engine's own (grid loaded, square skipped, ...) join them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """Base of every event: an id and the wall-clock time it was recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID = Field(default_factory=uuid4)
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ExposureAssessed(Event):
    """An exposure's assessment came back from wherever it ran."""

    kind: Literal["exposure_assessed"] = "exposure_assessed"
    exposure: str = Field(description="the exposure's file (or id) the task was given")
    assessment: dict[str, Any] = Field(description="the Assessment, as JSON-ready data")
    attempts: int = Field(ge=1)
    seconds: float = Field(ge=0, description="from submission to result")
    worker: str = Field(description="'in-process' or the worker's address")


class ProcessingFailed(Event):
    """A processing task failed on every attempt (or timed out); the session goes on."""

    kind: Literal["processing_failed"] = "processing_failed"
    exposure: str
    error: str
    attempts: int = Field(ge=1)

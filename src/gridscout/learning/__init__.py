"""The session model that updates target quality from feedback (``docs/planning.md``)."""

from .model import Posterior, SessionModel

__all__ = ["Posterior", "SessionModel"]

"""Time-cost model and acquisition planning (``docs/planning.md``)."""

from .costs import CostModel
from .hierarchy import Hierarchy
from .planner import Planner, PlanningState, Selection

__all__ = ["CostModel", "Hierarchy", "Planner", "PlanningState", "Selection"]

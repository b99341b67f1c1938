"""An autoloader cassette of virtual grids, each with its own seed and character."""

from __future__ import annotations

from itertools import cycle

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..model.errors import InvalidParameterError
from .grid import VirtualGrid
from .spec import Character, GridSpec, random_spec

CASSETTE_CAPACITY = 12
_CHARACTER_CYCLE = (Character.GOOD, Character.MIXED, Character.THICK, Character.GOOD,
                    Character.CONTAMINATED, Character.EMPTY)


class CassetteSlot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    slot: int = Field(ge=1, le=CASSETTE_CAPACITY)
    name: str
    spec: GridSpec


class VirtualCassette(BaseModel):
    """Up to 12 grids in numbered slots (1-based); missing slots are empty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grids: tuple[CassetteSlot, ...]

    @model_validator(mode="after")
    def _unique_slots(self) -> VirtualCassette:
        slots = [g.slot for g in self.grids]
        if len(slots) != len(set(slots)):
            raise InvalidParameterError(f"two grids share a cassette slot: {sorted(slots)}")
        return self

    @classmethod
    def random(cls, n_grids: int, *, seed: int, characters: list[Character | str] | None = None) -> VirtualCassette:
        """`n_grids` grids in slots 1..n, characters cycling good, mixed, thick, good, contaminated, empty.

        Parameters
        ----------
        n_grids : int
            1 to 12.
        seed : int
            Non-negative; the same seed gives the same cassette.
        characters : list, optional
            One character per grid, overriding the cycle.
        """
        check_seed(seed)
        if not isinstance(n_grids, int) or not 1 <= n_grids <= CASSETTE_CAPACITY:
            raise InvalidParameterError(f"a cassette holds 1 to {CASSETTE_CAPACITY} grids, not {n_grids}")
        if characters is not None and len(characters) != n_grids:
            raise InvalidParameterError(f"{len(characters)} characters given for {n_grids} grids")
        rng = np.random.default_rng(seed)
        chosen = characters or [c for c, _ in zip(cycle(_CHARACTER_CYCLE), range(n_grids), strict=False)]
        return cls(grids=tuple(
            CassetteSlot(slot=i + 1, name=f"grid{i + 1:02d}_{Character(c).value}", spec=random_spec(rng, c))
            for i, c in enumerate(chosen)
        ))

    def spec(self, slot: int) -> GridSpec | None:
        """The grid spec in `slot`, or None when the slot is empty."""
        return next((g.spec for g in self.grids if g.slot == slot), None)

    def grid(self, slot: int) -> VirtualGrid | None:
        """The virtual grid in `slot`, or None."""
        spec = self.spec(slot)
        return VirtualGrid(spec) if spec is not None else None


def check_seed(seed: object) -> int:
    """Validate a user-given seed: a non-negative integer below 2**63."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**63:
        raise InvalidParameterError(f"seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
    return int(seed)

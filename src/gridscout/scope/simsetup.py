"""The simulated microscope as an address, so a session can reach the same one again on resume.

``sim:cassette=12,seed=0,record_px=1024,frames=8`` names a simulated cassette of 12
grids from seed 0 with a 1024² record camera taking 8-frame movies; plain ``sim`` is
the default setup.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..model.errors import InvalidParameterError
from ..sim.cassette import CASSETTE_CAPACITY, VirtualCassette
from .presets import default_presets
from .protocol import PresetName
from .simulated import SimulatedMicroscope


class SimulatedSetup(BaseModel):
    """What a simulated microscope is made of.

    Examples
    --------
    >>> setup = SimulatedSetup(cassette=2, seed=4, record_px=512, frames=4)
    >>> setup.address()
    'sim:cassette=2,seed=4,record_px=512,frames=4'
    >>> SimulatedSetup.parse(setup.address()) == setup
    True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cassette: int = Field(12, ge=1, le=CASSETTE_CAPACITY, description="grids in slots 1..n")
    seed: int = Field(0, ge=0, lt=2**63)
    record_px: int | None = Field(None, ge=64, le=8192, description="record camera side; default 4096")
    frames: int | None = Field(None, ge=1, le=200, description="frames per record movie; default 40")

    def address(self) -> str:
        """The ``sim:key=value,...`` form, with the unset options left out."""
        parts = [f"{k}={v}" for k, v in self.model_dump().items() if v is not None]
        return "sim:" + ",".join(parts)

    @classmethod
    def checked(cls, **options: object) -> SimulatedSetup:
        """The setup of `options`; raises InvalidParameterError, in plain words, on a bad value."""
        return cls._validated(options, "setting")

    @classmethod
    def parse(cls, address: str) -> SimulatedSetup:
        """Read ``sim`` or ``sim:key=value,...``; raises InvalidParameterError on anything else."""
        scheme, _, options = address.partition(":")
        if scheme != "sim":
            raise InvalidParameterError(f"{address!r} is not a simulated microscope address (sim:key=value,...)")
        try:
            pairs = dict(item.split("=", 1) for item in options.split(",") if item)
        except ValueError:
            raise InvalidParameterError(f"bad simulated microscope address {address!r}: use sim:key=value,...") from None
        return cls._validated(pairs, f"address {address!r}")

    @classmethod
    def _validated(cls, options: dict[str, object], what: str) -> SimulatedSetup:
        try:
            return cls.model_validate(options)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise InvalidParameterError(f"bad simulated microscope {what} ({problems})") from None

    def microscope(self) -> SimulatedMicroscope:
        """A fresh simulated microscope of this setup; the same setup gives the same microscope."""
        presets = default_presets()
        record = presets[PresetName.RECORD]
        presets[PresetName.RECORD] = record.model_copy(update={
            "shape": (self.record_px, self.record_px) if self.record_px else record.shape,
            "frames": self.frames or record.frames})
        return SimulatedMicroscope(VirtualCassette.random(self.cassette, seed=self.seed), presets=presets,
                                   rng=np.random.default_rng(self.seed))

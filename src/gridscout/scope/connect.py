"""Open a microscope by address: the simulator or SerialEM."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..model.errors import InvalidParameterError
from .protocol import Microscope
from .serialem import DEFAULT_PORT, SerialEMConfig, SerialEMMicroscope
from .simsetup import SimulatedSetup


def open_scope(address: str, *, serialem: SerialEMConfig | None = None) -> Microscope:
    """The microscope at `address`.

    Parameters
    ----------
    address : str
        ``"sim"`` or ``"sim:key=value,..."`` for the simulated microscope (see
        `SimulatedSetup`), or ``"serialem://host:port"`` for SerialEM's external Python
        control (host 127.0.0.1 and port 48888 when left out).
    serialem : SerialEMConfig, optional
        SerialEM only: presets and limits of the installation.

    Raises
    ------
    InvalidParameterError
        The address is neither form.
    ScopeConnectionError
        SerialEM's module is missing or SerialEM does not answer.
    """
    text = address.strip()
    if text.partition(":")[0] == "sim":
        return SimulatedSetup.parse(text).microscope()
    parts = urlsplit(text)
    if parts.scheme == "serialem" and not parts.path.strip("/"):
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise InvalidParameterError(f"microscope address {address!r} has no valid port number") from None
        return SerialEMMicroscope.connect(parts.hostname or "127.0.0.1", port, config=serialem)
    raise InvalidParameterError(f"unknown microscope address {address!r}; use 'sim' or 'serialem://host:{DEFAULT_PORT}'")

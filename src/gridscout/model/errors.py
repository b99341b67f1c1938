"""Typed exceptions. Every message is written for a microscopist, not a programmer."""


class GridScoutError(Exception):
    """Base of every error GridScout raises on purpose."""


class InvalidParameterError(GridScoutError):
    """A parameter is outside what GridScout can work with (seed, size, count...)."""


class ImageError(GridScoutError, ValueError):
    """An image cannot be used: wrong dimensions, NaN pixels, missing pixel size..."""


class FileFormatError(GridScoutError):
    """A file is corrupt, truncated or not in the format its name claims."""


class ScopeError(GridScoutError):
    """The microscope could not do what was asked."""


class StageLimitError(ScopeError):
    """A stage move was asked for beyond the stage's travel."""


class ImageShiftLimitError(ScopeError):
    """An image shift was asked for beyond the calibrated range."""


class NoGridLoadedError(ScopeError):
    """An action needs a grid on the stage and none is loaded."""


class EmptySlotError(ScopeError):
    """The autoloader slot asked for holds no grid, or does not exist."""


class UnknownPresetError(ScopeError):
    """The optics preset asked for is not defined."""


class ScopeConnectionError(ScopeError):
    """GridScout cannot talk to the microscope's control software (not installed, unreachable, busy)."""

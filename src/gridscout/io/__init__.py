"""File formats: MRC now; SerialEM, EPU, STAR and dataset export to come."""

from .mrc import MrcImage, read_mrc, write_mrc

__all__ = ["MrcImage", "read_mrc", "write_mrc"]

"""File formats: MRC and common image files, overlays; SerialEM, EPU, STAR and dataset export to come."""

from .images import draw_polygons, read_image
from .mrc import MrcImage, read_mrc, write_mrc

__all__ = ["MrcImage", "draw_polygons", "read_image", "read_mrc", "write_mrc"]

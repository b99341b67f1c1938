"""File formats: MRC and common image files, overlays; SerialEM .mdoc/.nav (`mdoc`, `nav`), EPU sessions (`epu`),
RELION STAR (`star`) and GridScout datasets (`dataset`), imported from their modules."""

from .images import draw_polygons, read_image
from .mrc import MrcImage, read_mrc, write_mrc

__all__ = ["MrcImage", "draw_polygons", "read_image", "read_mrc", "write_mrc"]

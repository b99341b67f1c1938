"""GridScout: automated cryo-EM grid screening and data collection.

Conventions shared by every module (see ``docs/conventions.md``):

* pixel coordinates are ``(x, y)`` floats, x = column, y = row, pixel centres at integers;
* stage coordinates are micrometres ``(x, y, z)``;
* pixel sizes are in ångström per pixel;
* scores are in [0, 1], higher is better.
"""

__version__ = "0.1.0"

"""``python -m gridscout``: the same as the ``gridscout`` command."""

from .cli import main

main()

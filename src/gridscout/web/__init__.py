"""The web interface: watch, steer and review sessions (`gridscout serve`); see ``docs/web.md``."""

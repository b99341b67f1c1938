"""Running the web app: uvicorn on the settings, and the accounts URL the command line gives."""

from __future__ import annotations

import gc
from pathlib import Path

from ..model.errors import GridScoutError
from .app import WebSettings, create_app

DEFAULT_ACCOUNTS = "gridscout-accounts.sqlite"


def accounts_url(value: str) -> str:
    """A database URL as given, or a file path made into an absolute SQLite URL."""
    return value if "://" in value else f"sqlite:///{Path(value).resolve()}"


def serve(settings: WebSettings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the app until interrupted."""
    import uvicorn

    if settings.db is None and settings.sessions is None:
        raise GridScoutError("give the sessions to serve: --sessions DIR (a folder of session folders) and/or --db URL")
    if settings.sessions is not None and not settings.sessions.is_dir():
        raise GridScoutError(f"--sessions {settings.sessions}: no such folder")
    app = create_app(settings)
    # The imported libraries leave ~150,000 long-lived objects; frozen, they are no longer walked by every
    # full garbage collection, which would otherwise stall all requests for ~0.1 s at a time.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=2)

"""Fixtures for the web tests: a real simulated session in a real store, real accounts, the real app.

One small session (one grid, two squares, one hole each, one exposure per hole) is
screened once per test run; each test builds its own app on it, so the app state never
leaks between tests.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gridscout.scope import PresetName, SimulatedMicroscope
from gridscout.scope.presets import default_presets
from gridscout.session.engine import Engine
from gridscout.session.protocol import Protocol
from gridscout.session.store import ExposureRow, GridRow, HoleRow, ImageRow, SessionRow, SquareRow, Store
from gridscout.sim.cassette import VirtualCassette
from gridscout.web.accounts import Accounts
from gridscout.web.app import WebSettings, create_app

PROTOCOL = {"name": "web-test", "kind": "screening", "atlas": {"tiles": [3, 3]},
            "squares": {"method": "top", "count": 2}, "holes": {"per_square": 1}, "exposures": {"per_hole": 1}}
PASSWORD = "correct horse battery"
USERS = {"alice": ("operator", "lab-a"), "vera": ("viewer", "lab-a"), "bob": ("operator", "lab-b"),
         "root": ("admin", "facility")}


def small_scope(seed: int = 5) -> SimulatedMicroscope:
    """One good grid; a small, few-frame record camera so that assessment is quick."""
    presets = default_presets()
    presets[PresetName.RECORD] = presets[PresetName.RECORD].model_copy(update={"shape": (512, 512), "frames": 4})
    return SimulatedMicroscope(VirtualCassette.random(1, seed=seed, characters=["good"]), presets=presets,
                               rng=np.random.default_rng(seed))


def small_engine(directory: Path, **options) -> Engine:  # noqa: ANN003
    """The engine of the test session, writing into `directory`."""
    return Engine(small_scope(), Protocol.model_validate(PROTOCOL), directory, seed=5, **options)


@dataclass(frozen=True)
class Ids:
    """Ids of every kind of item of the finished session, for calling each route."""

    session: str
    grid: str
    square: str
    hole: str
    exposure: str
    image: str


@pytest.fixture(scope="session")
def sessions_root(tmp_path_factory) -> Path:
    """A folder of session folders with one finished session in ``run1``."""
    root = tmp_path_factory.mktemp("sessions")
    small_engine(root / "run1").run()
    return root


@pytest.fixture(scope="session")
def ids(sessions_root) -> Ids:
    store = Store.in_directory(sessions_root / "run1")
    with store.transaction() as tx:
        exposure = tx.scalars(select(ExposureRow)).first()
        hole = tx.get(HoleRow, exposure.hole_id)
        square = tx.get(SquareRow, hole.square_id)
        found = Ids(session=tx.scalars(select(SessionRow.id)).one(), grid=tx.scalars(select(GridRow.id)).one(),
                    square=square.id, hole=hole.id, exposure=exposure.id,
                    image=tx.scalars(select(ImageRow.id).where(ImageRow.level == "atlas")).one())
    store.close()
    return found


@pytest.fixture(scope="session")
def accounts_template(tmp_path_factory) -> Path:
    """An accounts database with a user of each role (copied per test: hashing passwords is slow on purpose)."""
    path = tmp_path_factory.mktemp("accounts") / "accounts.sqlite"
    accounts = Accounts(f"sqlite:///{path}")
    for name, (role, group) in USERS.items():
        accounts.add_user(name, PASSWORD, role=role, groups=[group])
    accounts.close()
    return path


@pytest.fixture
def app(tmp_path, sessions_root, accounts_template, ids):
    """The real app over the sessions folder, with its own copy of the accounts; the session belongs to lab-a."""
    shutil.copy(accounts_template, tmp_path / "accounts.sqlite")
    application = create_app(WebSettings(accounts_url=f"sqlite:///{tmp_path / 'accounts.sqlite'}",
                                         sessions=sessions_root, poll_interval_s=0.05))
    application.state.accounts.assign_session(ids.session, "lab-a")
    return application


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log `client` in through the form, as a browser does; returns the CSRF token for writes."""
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post("/login", data={"name": name, "password": password, "csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/sessions", answer.text
    return client.get("/api/me").json()["csrf_token"]


@pytest.fixture
def client_for(app):
    """`client_for(name)`: a logged-in TestClient and its CSRF token."""
    clients = []

    def make(name: str) -> tuple[TestClient, str]:
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client, login(client, name)

    yield make
    for client in clients:
        client.__exit__(None, None, None)

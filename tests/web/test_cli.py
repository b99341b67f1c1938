"""`gridscout user add` and `gridscout user assign`: the accounts the server then uses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from gridscout.cli import app
from gridscout.web.accounts import Accounts, AccountsError


def test_user_add_with_password_on_stdin_then_login(tmp_path):
    url = f"sqlite:///{tmp_path / 'accounts.sqlite'}"
    runner = CliRunner()
    added = runner.invoke(app, ["user", "add", "ada", "--group", "lab-a", "--group", "lab-b", "--role", "operator",
                                "--password-stdin", "--accounts", url], input="a long passphrase\n")
    assigned = runner.invoke(app, ["user", "assign", "0b7c6a8e-1111-2222-3333-444455556666", "--group", "lab-b",
                                   "--accounts", url])
    assert added.exit_code == 0 and assigned.exit_code == 0, added.output + assigned.output
    accounts = Accounts(url)
    token, user = accounts.login("ada", "a long passphrase", lifetime=timedelta(minutes=1))
    assert user.role.value == "operator" and user.group_names == ("lab-a", "lab-b")
    assert accounts.user_for_token(token) == user
    assert accounts.login("ada", "a wrong passphrase", lifetime=timedelta(minutes=1)) is None
    sessions = accounts.session_groups(["0b7c6a8e-1111-2222-3333-444455556666"])
    assert set(accounts.group_names()[g] for g in sessions["0b7c6a8e-1111-2222-3333-444455556666"]) == {"lab-b"}
    stored = accounts.engine.connect().exec_driver_sql("SELECT password_hash FROM web_users").scalar()
    assert stored.startswith("$argon2id$") and "passphrase" not in stored


def test_bad_accounts_are_refused(tmp_path):
    accounts = Accounts(f"sqlite:///{tmp_path / 'accounts.sqlite'}")
    with pytest.raises(AccountsError, match="role"):
        accounts.add_user("x", "long enough", role="superuser", groups=["g"])
    with pytest.raises(AccountsError, match="8 characters"):
        accounts.add_user("x", "short", role="viewer", groups=["g"])
    accounts.add_user("x", "long enough", role="viewer", groups=["g"])
    with pytest.raises(AccountsError, match="exists"):
        accounts.add_user("x", "long enough", role="viewer", groups=["g"])

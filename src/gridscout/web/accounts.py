"""Users, groups, the sessions each group may see, and logins: the web side's own tables.

These tables are kept apart from the session store (their own declarative base), so the
store's tables never change for the web interface. They live in their own database
(``--accounts URL``), which may be the same database as a shared session store: the
table names do not clash.

A user has one role: ``viewer`` reads, ``operator`` also steers sessions, ``admin`` sees
and steers every session. Users see the sessions assigned to one of their groups.
Passwords are stored as argon2id hashes; a login is a random token whose SHA-256 is
stored, with its CSRF token and expiry.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime, ForeignKey, String, create_engine, delete, event, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from ..model.errors import GridScoutError

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("no such user")  # verified against for unknown names: same time, no name leak


class AccountsError(GridScoutError):
    """An account operation that cannot be done (unknown user or group, duplicate name...)."""


class Role(StrEnum):
    """What a user may do."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


def _now() -> datetime:
    return datetime.now(UTC)


class AccountsBase(DeclarativeBase):
    """Declarative base of the web-side tables (not the session store's)."""


class GroupRow(AccountsBase):
    """A group of users sharing sessions (a lab, a facility's project)."""

    __tablename__ = "web_groups"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class UserRow(AccountsBase):
    """A person who logs in."""

    __tablename__ = "web_users"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class MembershipRow(AccountsBase):
    """A user belongs to a group."""

    __tablename__ = "web_memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("web_groups.id"), primary_key=True)


class SessionGroupRow(AccountsBase):
    """A session (by the store's session id) is visible to a group."""

    __tablename__ = "web_session_groups"
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("web_groups.id"), primary_key=True)


class LoginRow(AccountsBase):
    """An open login: the SHA-256 of its cookie token, its CSRF token and its expiry."""

    __tablename__ = "web_logins"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class User:
    """A logged-in user as the routes see it."""

    id: int
    name: str
    role: Role
    groups: frozenset[int]
    group_names: tuple[str, ...]
    csrf_token: str = ""

    @property
    def is_admin(self) -> bool:
        """Admins see and steer every session."""
        return self.role is Role.ADMIN

    @property
    def can_control(self) -> bool:
        """Operators and admins may steer the sessions they see."""
        return self.role in (Role.OPERATOR, Role.ADMIN)


class Accounts:
    """The accounts database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL, e.g. ``sqlite:////srv/gridscout/accounts.sqlite``.
    """

    def __init__(self, url: str) -> None:
        try:
            self.engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            AccountsBase.metadata.create_all(self.engine)
        except (SQLAlchemyError, ImportError) as err:
            raise AccountsError(f"cannot open the accounts database: {err}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------------ users and groups
    def add_user(self, name: str, password: str, *, role: Role | str, groups: list[str]) -> None:
        """Create a user in `groups` (created when new); the password is stored argon2-hashed."""
        role = _role(role)
        if not name or len(name) > 100 or not name.isprintable():
            raise AccountsError("a user name must be 1-100 printable characters")
        if len(password) < 8:
            raise AccountsError("a password needs at least 8 characters")
        try:
            with self._sessions.begin() as tx:
                user = UserRow(name=name, password_hash=_HASHER.hash(password), role=role.value)
                tx.add(user)
                tx.flush()
                for group in groups:
                    tx.add(MembershipRow(user_id=user.id, group_id=self._group_id(tx, group, create=True)))
        except IntegrityError:
            raise AccountsError(f"user {name!r} exists already") from None

    def assign_session(self, session_id: str, group: str) -> None:
        """Make session `session_id` visible to `group` (created when new)."""
        with self._sessions.begin() as tx:
            group_id = self._group_id(tx, group, create=True)
            if tx.get(SessionGroupRow, (session_id, group_id)) is None:
                tx.add(SessionGroupRow(session_id=session_id, group_id=group_id))

    def session_groups(self, session_ids: list[str]) -> dict[str, set[int]]:
        """Group ids of each session in `session_ids` (sessions of no group are absent)."""
        with self._sessions() as tx:
            rows = tx.execute(select(SessionGroupRow.session_id, SessionGroupRow.group_id)
                              .where(SessionGroupRow.session_id.in_(session_ids)))
            out: dict[str, set[int]] = {}
            for session_id, group_id in rows:
                out.setdefault(session_id, set()).add(group_id)
            return out

    def group_names(self) -> dict[int, str]:
        """Every group's name by id."""
        with self._sessions() as tx:
            return dict(tx.execute(select(GroupRow.id, GroupRow.name)).all())

    @staticmethod
    def _group_id(tx: Session, name: str, *, create: bool) -> int:
        row = tx.scalars(select(GroupRow).where(GroupRow.name == name)).first()
        if row is None:
            if not create:
                raise AccountsError(f"no group {name!r}")
            if not name or len(name) > 100:
                raise AccountsError("a group name must be 1-100 characters")
            row = GroupRow(name=name)
            tx.add(row)
            tx.flush()
        return row.id

    # ------------------------------------------------------------------ logins
    def login(self, name: str, password: str, *, lifetime: timedelta) -> tuple[str, User] | None:
        """Check the password; returns a new login token and the user, or None."""
        with self._sessions.begin() as tx:
            user = tx.scalars(select(UserRow).where(UserRow.name == name)).first()
            if not _verify(user.password_hash if user else _DUMMY_HASH, password) or user is None:
                return None
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            tx.add(LoginRow(token_sha256=_sha256(token), user_id=user.id, csrf_token=csrf,
                            expires_at=_now() + lifetime))
        return token, self._user(user, csrf)

    def user_for_token(self, token: str) -> User | None:
        """The user of an open login, or None when the token is unknown or expired."""
        with self._sessions() as tx:
            login = tx.get(LoginRow, _sha256(token))
            if login is None or _aware(login.expires_at) <= _now():
                return None
            return self._user(tx.get(UserRow, login.user_id), login.csrf_token)

    def logout(self, token: str) -> None:
        """Close a login."""
        with self._sessions.begin() as tx:
            tx.execute(delete(LoginRow).where(LoginRow.token_sha256 == _sha256(token)))

    def _user(self, row: UserRow, csrf: str) -> User:
        with self._sessions() as tx:
            groups = dict(tx.execute(select(GroupRow.id, GroupRow.name).join(
                MembershipRow, MembershipRow.group_id == GroupRow.id).where(MembershipRow.user_id == row.id)).all())
        return User(id=row.id, name=row.name, role=Role(row.role), groups=frozenset(groups),
                    group_names=tuple(sorted(groups.values())), csrf_token=csrf)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountsError(f"role must be one of {', '.join(r.value for r in Role)}, not {role!r}") from None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()

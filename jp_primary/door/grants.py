"""One-time credentials of the FTP upload door, and the stores that share them between the
API (which issues them) and the door (which may run in another process and checks them).

A grant lets one user store exactly one file at one path until a deadline. The password is a
random 192-bit token shown once to the uploader; only its sha256 is kept. (A slow password hash
would add nothing: a random token of that length cannot be guessed from its digest.)
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import secrets
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

from sqlalchemy import Engine

from jp_primary.backends.base import DirectUpload
from jp_primary.config import Settings
from jp_primary.db.repositories import door_grants
from jp_primary.db.session import new_session
from jp_primary.errors import ConfigurationError

USER_PREFIX = "jpup-"


@dataclass(frozen=True)
class DoorGrant:
    user: str
    password_sha256: str  # hex digest of the password, never the password itself
    upload_id: str
    target: str  # storage key under the door's root that the one STOR must write
    deadline: datetime
    used_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and now < self.deadline

    def password_matches(self, password: str) -> bool:
        return hmac.compare_digest(self.password_sha256, hash_password(password))


@runtime_checkable
class DoorGrants(Protocol):
    """Where grants live. A database-backed store needs one table keyed by ``user`` holding the
    fields of ``DoorGrant``; ``consume`` must be one atomic conditional update
    (``UPDATE ... SET used_at = :now WHERE user = :user AND used_at IS NULL AND deadline > :now``,
    true when one row changed), because two connections may race for the same grant. The door
    calls these methods from its connection threads, so they must be thread-safe and may block.
    """

    def add(self, grant: DoorGrant) -> None: ...

    def get(self, user: str) -> DoorGrant | None: ...

    def consume(self, user: str, now: datetime) -> bool:
        """Mark the grant used if it still is usable at ``now``; True only for the caller that
        did so."""
        ...

    def revoke(self, user: str) -> None:
        """Forget a grant (upload cancelled, expired, or committed)."""
        ...


class InMemoryDoorGrants:
    """Grants in this process only: for tests and for a door running inside the API process."""

    def __init__(self) -> None:
        self._grants: dict[str, DoorGrant] = {}
        self._lock = threading.Lock()

    def add(self, grant: DoorGrant) -> None:
        with self._lock:
            self._grants[grant.user] = grant

    def get(self, user: str) -> DoorGrant | None:
        with self._lock:
            return self._grants.get(user)

    def consume(self, user: str, now: datetime) -> bool:
        with self._lock:
            grant = self._grants.get(user)
            if grant is None or not grant.usable(now):
                return False
            self._grants[user] = replace(grant, used_at=now)
            return True

    def revoke(self, user: str) -> None:
        with self._lock:
            self._grants.pop(user, None)


class DatabaseDoorGrants:
    """Grants in the database (``door_grants`` table), through its repository: what the API and
    a separate ``jp-primary ftpd`` process share."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, grant: DoorGrant) -> None:
        with new_session(self._engine) as session:
            door_grants.add(session, door_grants.StoredGrant(**asdict(grant)))
            session.commit()

    def get(self, user: str) -> DoorGrant | None:
        with new_session(self._engine) as session:
            stored = door_grants.get_open(session, user)
        return None if stored is None else DoorGrant(**asdict(stored))

    def consume(self, user: str, now: datetime) -> bool:
        with new_session(self._engine) as session:
            changed = door_grants.consume(session, user, now)
            session.commit()
        return changed

    def revoke(self, user: str) -> None:
        with new_session(self._engine) as session:
            door_grants.revoke(session, user)
            session.commit()


@dataclass(frozen=True)
class Door:
    """The door as the API sees it: where uploaders reach it and where its grants live."""

    public_url: str
    grants: DoorGrants


def require_filesystem(settings: Settings) -> None:
    """The door writes into the storage root itself: it works with the filesystem backend only."""
    if settings.storage.backend != "filesystem":
        raise ConfigurationError("the FTP upload door works with the filesystem backend only")


def configured_door(settings: Settings, engine: Engine) -> Door | None:
    """The door the API hands out credentials for (``JP_FTPD_PUBLIC_URL``), or None."""
    url = settings.door.public_url
    if url is None:
        return None
    require_filesystem(settings)
    return Door(url, DatabaseDoorGrants(engine))


def hash_password(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def valid_target(target: str) -> str:
    norm = posixpath.normpath(target)
    if target.startswith("/") or norm.startswith("..") or norm in (".", "") or norm != target:
        raise ValueError(f"invalid door target {target!r}")
    return target


def issue_door_credentials(
    grants: DoorGrants, upload_id: str, target: str, deadline: datetime
) -> tuple[str, str]:
    """Create a grant for one upload and return its ``(user, password)``; the password is not
    stored anywhere and cannot be shown again."""
    if deadline.tzinfo is None:
        raise ValueError("deadline must be timezone-aware")
    user = USER_PREFIX + secrets.token_hex(8)
    password = secrets.token_urlsafe(24)
    grants.add(
        DoorGrant(
            user=user,
            password_sha256=hash_password(password),
            upload_id=upload_id,
            target=valid_target(target),
            deadline=deadline.astimezone(UTC),
        )
    )
    return user, password


def door_upload(
    grants: DoorGrants, public_url: str, upload_id: str, target: str, deadline: datetime
) -> DirectUpload:
    """Issue credentials and say where to send the bytes: ``public_url`` is how uploaders reach
    the door (``ftp://host:port`` or ``ftps://host:port``). The login directory is the target's
    directory, so the URL names only the file and clients need no CWD."""
    parts = urlsplit(public_url)
    if parts.scheme not in ("ftp", "ftps") or not parts.hostname:
        raise ValueError("the door's public URL must be ftp://host:port or ftps://host:port")
    user, password = issue_door_credentials(grants, upload_id, target, deadline)
    name = quote(posixpath.basename(target))
    url = f"{parts.scheme}://{user}:{quote(password, safe='')}@{parts.netloc}/{name}"
    return DirectUpload(method="ftp", url=url)

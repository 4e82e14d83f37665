"""The FTP upload door: an FTP(S) server where each login is a one-time grant for one upload.

A grant's user may store exactly one file, at the path bound to the grant, before the deadline;
every other command that touches the file system (RETR, LIST, DELE, RNFR, MKD, APPE, STOU) is
refused, and so is a second STOR; the commands FEAT would advertise but a grant cannot use (MLST,
MLSD, SIZE, MDTM, MFMT, REST) are not served at all, so FEAT does not list them. Files land under
``root``, which is the storage root the service reads (the staging key of the upload), so commit
finds the bytes where it expects them and checks their size and sha256 as for any other upload.
Like the original GridFTP door, authorization reads shared state (``DoorGrants``), so the door may
run in its own process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import AuthenticationFailed
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import ThreadedFTPServer

from jp_primary.backends.filesystem import TMP_PREFIX, publish_file
from jp_primary.door.grants import DoorGrant, DoorGrants

log = logging.getLogger(__name__)
REFUSED = "550 Not allowed with upload credentials."
# Commands the door does not serve, removed from the handler's command table so that FEAT (which
# pyftpdlib builds from that table) advertises only what a grant may use: these answer 500.
UNSERVED = frozenset({"MDTM", "MFMT", "SIZE", "MLST", "MLSD", "REST"})
OnUpload = Callable[[DoorGrant, Path], None]


class GrantAuthorizer:
    """pyftpdlib's authorizer interface, answered from the grants store."""

    def __init__(self, grants: DoorGrants, root: Path) -> None:
        self.grants = grants
        self.root = root

    def _grant(self, user: str) -> DoorGrant | None:
        grant = self.grants.get(user)
        return grant if grant is not None and grant.usable(datetime.now(UTC)) else None

    def target_path(self, grant: DoorGrant) -> str:
        return os.path.join(self.root, *grant.target.split("/"))

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        grant = self._grant(username)
        if grant is None or not grant.password_matches(password):
            raise AuthenticationFailed("Authentication failed.")

    def get_home_dir(self, username: str) -> str:
        grant = self._grant(username)
        if grant is None:
            raise AuthenticationFailed("Authentication failed.")
        home = os.path.dirname(self.target_path(grant))
        os.makedirs(home, exist_ok=True)  # the API may run elsewhere: the door makes the place
        return home

    def has_user(self, username: str) -> bool:
        return self._grant(username) is not None

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        grant = self._grant(username)
        if grant is None or path is None:
            return False
        target = self.target_path(grant)
        if perm == "e":  # CWD to the login directory itself only
            return os.path.normpath(path) == os.path.dirname(target)
        return perm == "w" and os.path.normpath(path) == target

    def get_perms(self, username: str) -> str:
        return "w"

    def get_msg_login(self, username: str) -> str:
        return "Upload credentials accepted: STOR the file named in your URL."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        return None

    def terminate_impersonation(self, username: str) -> None:
        return None


class DoorHandlerMixin:
    """Command overrides shared by the plain and the TLS door handlers."""

    authorizer: GrantAuthorizer
    on_upload: OnUpload | None = None
    username: str
    _door_target: str
    _door_partial: str | None = None

    # pyftpdlib dispatches each command to the method ftp_<COMMAND>, hence the names.
    def ftp_STOR(self, file: str, mode: str = "w") -> str | None:  # noqa: N802
        resuming = bool(getattr(self, "_restart_position", 0))
        if mode != "w" or resuming:
            self.respond(REFUSED)  # no append, no resume: one whole file
            return None
        if not self.authorizer.grants.consume(self.username, datetime.now(UTC)):
            self.respond("550 These upload credentials have been used or have expired.")
            return None
        # Into a temporary name first: the upload becomes visible at its key only when whole.
        self._door_target = file
        self._door_partial = os.path.join(
            os.path.dirname(file), f"{TMP_PREFIX}{os.path.basename(file)}.{secrets.token_hex(6)}"
        )
        result: str | None = super().ftp_STOR(self._door_partial, mode)  # type: ignore[misc]
        if result is None:  # the file could not be opened; pyftpdlib has answered
            self._door_partial = None
        return result

    def respond(self, resp: str, logfun: Callable[..., Any] = log.debug) -> None:
        # pyftpdlib answers 226 before its on_file_received hook runs: move the file into place
        # first, so a client that commits right after 226 finds it.
        partial = self._door_partial
        if partial is not None and resp.startswith("226 Transfer complete"):
            self._door_partial = None
            try:
                publish_file(Path(partial), Path(self._door_target), sync_source=True)
            except OSError:
                log.exception("could not move a door upload into place")
                resp = "451 The upload could not be stored."
        super().respond(resp, logfun)  # type: ignore[misc]

    def ftp_STOU(self, line: str) -> None:  # noqa: N802
        self.respond(REFUSED)

    def on_file_received(self, file: str) -> None:
        grant = self.authorizer.grants.get(self.username)
        if self.on_upload is not None and grant is not None:
            self.on_upload(grant, Path(self._door_target))

    def on_incomplete_file_received(self, file: str) -> None:
        self._door_partial = None
        with contextlib.suppress(OSError):
            os.remove(file)  # a cut transfer leaves nothing (and has used the grant)


@dataclass(frozen=True)
class DoorTLS:
    certfile: Path  # PEM certificate chain (may also hold the key)
    keyfile: Path | None = None


class _DoorServer(ThreadedFTPServer):
    poll_timeout = 0.2  # how quickly connection threads notice a stop

    def __init__(self, address: tuple[str, int], handler: type[FTPHandler]) -> None:
        # pyftpdlib keeps these as class attributes: per server, so two doors never share them.
        self._lock = threading.Lock()
        self._exit = threading.Event()
        super().__init__(address, handler, ioloop=IOLoop())  # not the process-wide loop


def door_handler(
    authorizer: GrantAuthorizer,
    *,
    tls: DoorTLS | None,
    passive_ports: range | None,
    masquerade_address: str | None,
    auth_failed_timeout: float,
    on_upload: OnUpload | None,
) -> type[FTPHandler]:
    """A handler class of its own: pyftpdlib reads its settings from class attributes."""
    base: type[FTPHandler] = TLS_FTPHandler if tls else FTPHandler
    attrs: dict[str, Any] = {
        "authorizer": authorizer,
        "banner": "jp_primary upload door ready.",
        "auth_failed_timeout": auth_failed_timeout,
        "permit_foreign_addresses": False,
        "permit_privileged_ports": False,
        "passive_ports": list(passive_ports) if passive_ports else None,
        "masquerade_address": masquerade_address,
        "on_upload": staticmethod(on_upload) if on_upload else None,
        "proto_cmds": {c: v for c, v in base.proto_cmds.items() if c not in UNSERVED},
    }
    if tls:
        attrs |= {
            "certfile": str(tls.certfile),
            "keyfile": str(tls.keyfile) if tls.keyfile else None,
            "tls_control_required": True,
            "tls_data_required": True,
        }
    return type("DoorHandler", (DoorHandlerMixin, base), attrs)


class FTPDoor:
    """The door server. ``start``/``stop`` run it in a background thread (tests, or inside
    another process); ``serve_forever`` blocks until SIGINT/SIGTERM (``jp-primary ftpd``).
    ``auth_failed_timeout`` delays the answer to a wrong login (pyftpdlib's guess brake): keep
    the default in production, 0 only in tests."""

    def __init__(
        self,
        root: Path,
        grants: DoorGrants,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: DoorTLS | None = None,
        passive_ports: range | None = None,
        masquerade_address: str | None = None,
        auth_failed_timeout: float = 3.0,
        max_connections: int = 256,
        max_connections_per_ip: int = 16,
        on_upload: OnUpload | None = None,
    ) -> None:
        self.root = root.resolve()
        self.authorizer = GrantAuthorizer(grants, self.root)
        handler = door_handler(
            self.authorizer,
            tls=tls,
            passive_ports=passive_ports,
            masquerade_address=masquerade_address,
            auth_failed_timeout=auth_failed_timeout,
            on_upload=on_upload,
        )
        self.server = _DoorServer((host, port), handler)
        self.server.max_cons = max_connections
        self.server.max_cons_per_ip = max_connections_per_ip
        self.host = host
        self.port = int(self.server.socket.getsockname()[1])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        log.info("FTP upload door on %s:%d, root %s", self.host, self.port, self.root)
        self.server.serve_forever(timeout=1.0, blocking=True, handle_exit=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        self.server.close_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="jp-ftpdoor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            self.server.close_all()
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None

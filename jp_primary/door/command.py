"""``jp-primary ftpd``: the FTP upload door next to (or apart from) the API processes."""

from __future__ import annotations

import logging
import sys

from jp_primary.config import Settings
from jp_primary.db import migrate
from jp_primary.db.session import create_db_engine
from jp_primary.door.grants import DatabaseDoorGrants, require_filesystem
from jp_primary.door.server import DoorTLS, FTPDoor
from jp_primary.errors import ConfigurationError


def _passive_ports(spec: str | None) -> range | None:
    if not spec:
        return None
    first, _, last = spec.partition("-")
    try:
        return range(int(first), int(last or first) + 1)
    except ValueError:
        raise ConfigurationError(
            f"JP_FTPD_PASSIVE_PORTS must be FIRST-LAST, got {spec!r}"
        ) from None


def build_door(settings: Settings) -> FTPDoor:
    door = settings.door
    require_filesystem(settings)
    if migrate.pending(settings.database_url):
        raise ConfigurationError("the database schema is not up to date: run `jp-primary migrate`")
    tls = None
    if door.certfile:
        tls = DoorTLS(door.certfile, door.keyfile)
    grants = DatabaseDoorGrants(create_db_engine(settings.database_url, pool_size=4))
    return FTPDoor(
        settings.storage_root,
        grants,
        host=door.host,
        port=door.port,
        tls=tls,
        passive_ports=_passive_ports(door.passive_ports),
        masquerade_address=door.masquerade_address,
    )


def serve_door(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO)
    door = build_door(settings)
    scheme = "ftps" if settings.door.certfile else "ftp"
    print(
        f"jp_primary FTP upload door on {scheme}://{settings.door.host}:{door.port}",
        file=sys.stderr,
        flush=True,
    )
    door.serve_forever()
    return 0

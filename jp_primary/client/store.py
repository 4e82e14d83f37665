"""Storing a file idempotently by content, the rule senders of spooled files follow.

The same bytes already stored under the name (or under the name this rule derived for them
earlier) means done; different bytes under the name go under ``<name>.<sha256 prefix>``: never a
silent overwrite, never a lost file. A job the service does not know is registered first when
the caller says for whom.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jp_primary.client.errors import Conflict, NotFound
from jp_primary.client.sync import Client
from jp_primary.client.transfer import sha256_of


@dataclass(frozen=True)
class Stored:
    name: str
    sha256: str
    created: bool  # False: the same bytes were there already
    registered: bool  # the job was registered on the way


def derived_name(name: str, file_class: str, digest: str) -> str:
    return f"{name or file_class}.{digest[:16]}"


def store_file(
    client: Client,
    jobid: str,
    file_class: str,
    path: Path,
    *,
    name: str = "",
    register_owner: Callable[[], str | None] | None = None,
) -> Stored:
    """Store ``path`` for ``jobid``. When the job is unknown and ``register_owner`` is given, the
    job is registered (owner: what it returns; None = the caller itself): by the PUT itself
    (``X-Register-Jobid``), else, on a 404 (an owner a header cannot carry, a service that does
    not offer it), by a registration and the upload again. Otherwise ``NotFound`` propagates."""
    digest = sha256_of(path)
    assert digest is not None
    registered = False
    owner = register_owner() if register_owner is not None else None
    in_put = register_owner is not None and all(_header_safe(text) for text in (jobid, owner or ""))
    for candidate in (name, derived_name(name, file_class, digest)):
        try:
            answer = client.put_file(
                jobid, file_class, path, name=candidate, sha256=digest, register=in_put, owner=owner
            )
            return Stored(candidate, digest, True, registered or answer.registered)
        except NotFound:
            if register_owner is None or registered:
                raise
            # Registered meanwhile (by L&B itself, say): the upload can go on.
            with contextlib.suppress(Conflict):
                client.register(jobid, owner)
            registered = True
            client.put_file(jobid, file_class, path, name=candidate, sha256=digest)
            return Stored(candidate, digest, True, registered)
        except Conflict:
            if _holds(client, jobid, file_class, candidate, digest):
                return Stored(candidate, digest, False, registered)
    raise Conflict(409, "Conflict", f"{jobid}: other bytes under {name!r} and its variant", {})


def _header_safe(text: str) -> bool:
    """Whether a header can carry ``text`` as it is (printable ASCII)."""
    return text.isascii() and text.isprintable()


def _holds(client: Client, jobid: str, file_class: str, name: str, digest: str) -> bool:
    for stored in client.files(jobid):
        if stored.file_class == file_class and stored.name == name:
            return stored.sha256 == digest
    # A 409 without a stored file: an upload of that name is still unfinished (another sender).
    raise Conflict(409, "Conflict", f"{jobid}: an upload of {name!r} is in progress", {})

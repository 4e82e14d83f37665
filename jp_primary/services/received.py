"""What a commit knows about bytes that a client put into the store itself (presigned POST, the
FTP door): their size and sha256, taken from what the store verified where it can vouch for
them, hashed from the stored bytes only where it cannot.

- **S3**: a presigned POST whose policy pins ``x-amz-checksum-sha256`` (and the exact length)
  is checked by the store, which refuses other bytes and keeps the checksum; ``stat`` (a HEAD
  with ``ChecksumMode=ENABLED``) returns it, so the commit reads no byte of the object. An object
  the store kept no full-object SHA-256 for (a store without checksum support, a direct upload
  declared without ``sha256`` on a store that computes none) is hashed by reading it.
- **Filesystem** (the FTP door), **FTP**: the store keeps no checksum: the bytes are hashed
  (local disk reads on the filesystem backend; the FTP backend offers no direct uploads).

Bytes sent through the API never come here: the service hashed them on the way in.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from jp_primary.backends.base import StorageBackend
from jp_primary.errors import Conflict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    size: int
    sha256: str
    by_store: bool  # the store vouched for the sha256 (no byte was read back)


async def inspect_direct(backend: StorageBackend, key: str) -> Received:
    """Size and sha256 of the object at ``key``, written by a client straight into the store."""
    try:
        info = await backend.stat(key)
    except FileNotFoundError:
        raise Conflict(
            "no bytes were received for this upload: send the file to the URL its start "
            "returned and commit again, or start a new upload for fresh credentials"
        ) from None
    if info.sha256:
        return Received(info.size, info.sha256, by_store=True)
    log.debug("hashing %s: the %s store kept no sha256 of it", key, backend.name)
    digest = hashlib.sha256()
    size = 0
    async for chunk in backend.read(key):
        digest.update(chunk)
        size += len(chunk)
    return Received(size, digest.hexdigest(), by_store=False)

"""Pull tokens: opaque to the subscriber, a batch number bound to its feed inside.

A token names the last batch its holder received, so it survives restarts (everything it refers
to is in the database) and the same token always asks for the same next batch.
"""

from __future__ import annotations

import hashlib

from jp_primary.errors import BadRequest


def _check(feed_id: str, number: int) -> str:
    return hashlib.sha256(f"{feed_id}:{number}".encode()).hexdigest()[:16]


def issue(feed_id: str, number: int) -> str:
    return f"b{number}.{_check(feed_id, number)}"


def well_formed(feed_id: str, token: str) -> bool:
    """Whether ``token`` is one this feed issued (of a feed that may no longer exist)."""
    try:
        parse(feed_id, token)
    except BadRequest:
        return False
    return True


def parse(feed_id: str, token: str) -> int:
    """The batch number in ``token``; 400 when it is not a token this feed issued."""
    head, _, check = token.partition(".")
    if head[:1] == "b" and head[1:].isdigit() and len(head) < 20:
        number = int(head[1:])
        if check == _check(feed_id, number):
            return number
    raise BadRequest(
        "malformed feed token: pass the `next` value of an earlier answer of this feed "
        "unchanged, or no `since` to start at the beginning"
    )

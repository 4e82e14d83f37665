"""Found with defect 5 (a superseded or aborted upload's staging is listed, then removed, in the
serving process): a listing must not change how later transfers on the same connection treat
bytes. FTP's MLSD switches the connection to ASCII (TYPE A); a following RETR or STOR then
turned every LF into CR LF."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jp_primary.backends.base import StorageBackend

pytestmark = pytest.mark.anyio

LINES = b"line one\nline two\r\nthird\n" * 10_000


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_defect_5_transfers_stay_byte_exact_after_a_listing(
    backend: StorageBackend,
) -> None:
    await backend.put_stream("staging/u1/a", _once(LINES), max_size=len(LINES))
    assert [o.key async for o in backend.list("staging/u1/")] == ["staging/u1/a"]
    assert [o.key async for o in backend.list("staging/missing/")] == []
    assert b"".join([c async for c in backend.read("staging/u1/a")]) == LINES
    listed = [o.key async for o in backend.list("staging/")]
    assert listed == ["staging/u1/a"]
    stored = await backend.put_stream("staging/u2/b", _once(LINES), max_size=len(LINES))
    assert stored.size == len(LINES)
    assert (await backend.stat("staging/u2/b")).size == len(LINES)
    assert b"".join([c async for c in backend.read("staging/u2/b")]) == LINES

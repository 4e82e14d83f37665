"""A two-phase upload whose connection is cut midway goes on from the bytes the service kept
(``PUT`` with ``Content-Range``), through a TCP relay that drops the first large request,
against a live ``jp-primary serve`` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jp_primary.client import AsyncClient, Client, Credentials
from jp_primary.client.calls import Retry
from jp_primary.client.transfer import ResumableSend
from jp_primary.services.resumable import PIECE_SIZE

from .support import USER, Live, new_jobid

pytestmark = pytest.mark.slow
FAST = Retry(attempts=4, base=0.05, cap=0.2)


class CuttingRelay:
    """Relays TCP to ``upstream``; the first ``cuts`` connections that carry more than
    ``after`` bytes towards the server are closed there, as a network failure would."""

    def __init__(self, upstream: tuple[str, int], after: int, cuts: int = 1) -> None:
        self.upstream, self.after, self.cuts = upstream, after, cuts
        self.cut = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _should_cut(self, moved: int) -> bool:
        with self._lock:
            if moved > self.after and self.cut < self.cuts:
                self.cut += 1
                return True
            return False

    def _pump(self, src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        moved = 0
        try:
            while block := src.recv(65536):
                moved += len(block)
                if to_server and self._should_cut(moved):
                    break
                dst.sendall(block)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def relay(live: Live) -> Iterator[CuttingRelay]:
    host, port = live.url.removeprefix("http://").rsplit(":", 1)
    # Cut the big PUT after two whole pieces and part of a third have gone through.
    relay = CuttingRelay((host, int(port)), after=2 * PIECE_SIZE + PIECE_SIZE // 2)
    yield relay
    relay.close()


def test_a_cut_send_resumes_from_the_kept_pieces(
    live: Live, relay: CuttingRelay, tmp_path: Path
) -> None:
    data = os.urandom(3 * PIECE_SIZE + 12_345)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    jobid = new_jobid()
    credentials = Credentials(token=live.token(USER))
    moved: list[int] = []
    with Client(f"http://127.0.0.1:{relay.port}", credentials=credentials, retry=FAST) as alice:
        alice.register(jobid)
        stored = alice.upload(
            jobid, "osb", source, name="big", two_phase=True, progress=moved.append
        )
        assert relay.cut == 1  # the connection was really cut
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert alice.read(jobid, "osb", "big") == data
    # The bar went back to what the service kept, whole pieces (the relay let two and a half
    # through; the piece in flight is dropped; the second may still be being stored when the
    # client asks), then on to the end.
    assert sum(moved) == len(data)
    back = next(i for i, step in enumerate(moved) if step < 0)
    assert sum(moved[: back + 1]) in (PIECE_SIZE, 2 * PIECE_SIZE)


def test_the_async_client_resumes_too(live: Live, relay: CuttingRelay, tmp_path: Path) -> None:
    data = os.urandom(3 * PIECE_SIZE)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    jobid = new_jobid()
    credentials = Credentials(token=live.token(USER))

    async def run() -> str:
        url = f"http://127.0.0.1:{relay.port}"
        async with AsyncClient(url, credentials=credentials, retry=FAST) as alice:
            await alice.register(jobid)
            stored = await alice.upload(jobid, "osb", source, name="big", two_phase=True)
            return stored.sha256

    assert asyncio.run(run()) == hashlib.sha256(data).hexdigest()
    assert relay.cut == 1


def test_a_resume_from_a_stale_progress_read_goes_on_from_what_is_held(
    live: Live, tmp_path: Path
) -> None:
    """The cut send may still be storing a piece when the client reads the progress: the resumed
    PUT then starts before what the service holds (409), and the client reads it again."""
    data = os.urandom(3 * PIECE_SIZE + 1)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    jobid = new_jobid()
    token = live.token(USER)
    with Client(live.url, credentials=Credentials(token=token), retry=FAST) as alice:
        alice.register(jobid)
        ticket = alice.start_upload(jobid, "osb", "big", size=len(data))
        held = 2 * PIECE_SIZE
        sent = httpx.put(
            ticket.url,
            content=data[:held],
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Range": f"bytes 0-{held - 1}/{len(data)}",
            },
            timeout=60,
        )
        assert sent.status_code == 204, sent.text
        stale = ResumableSend(source, len(data), None, attempts=4)
        stale.offset = PIECE_SIZE  # what an early progress read said
        alice._send_resumable(ticket, stale)  # noqa: SLF001 - the resume step itself
        assert stale.offset == held
        stored = alice.commit_upload(ticket.upload_id)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert alice.read(jobid, "osb", "big") == data

"""Files on an FTP or explicit-FTPS server through ftplib (passive mode, binary type).

Writes go to a ``.tmp-`` name in the destination directory and are renamed into place
(RNFR/RNTO) once the server confirmed the whole transfer, so a key holds its complete bytes or
does not exist; interrupted temporaries are deleted at once (and by ``jp-primary gc`` if even that
fails). ftplib blocks: every step runs in the backend's bounded thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import posixpath
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TypeVar, cast

from jp_primary.backends.base import (
    CHUNK_SIZE,
    BackendOptions,
    DirectUpload,
    ObjectInfo,
    StoredObject,
    Tally,
)
from jp_primary.backends.ftp_commands import (
    RangeRetriever,
    close_data,
    or_missing,
    parse_modify,
    stat_path,
    widen,
)
from jp_primary.backends.ftp_pool import FTPOptions, FTPPool, translate_errors
from jp_primary.errors import StorageUnavailable

TMP_PREFIX = ".tmp-"
T = TypeVar("T")


def ancestry(directory: str) -> list[str]:
    """``a/b/c`` → ``a``, ``a/b``, ``a/b/c`` (``/a/b`` → ``/a``, ``/a/b``)."""
    lead = "/" if directory.startswith("/") else ""
    parts = [p for p in directory.split("/") if p]
    return [lead + "/".join(parts[: i + 1]) for i in range(len(parts))]


def mkdirs(conn: ftplib.FTP, directory: str, known: set[str] | None = None) -> None:
    """Create ``directory`` and its parents, skipping those in ``known`` (directories seen to
    exist), which learns the new ones. Existing directories answer 550 or 553, which is fine: a
    real failure shows in the STOR or RNTO that follows."""
    known = set() if known is None else known
    for path in ancestry(directory):
        if path in known:
            continue
        with contextlib.suppress(ftplib.error_perm):
            conn.mkd(path)
        known.add(path)


def rename(conn: ftplib.FTP, source: str, target: str) -> None:
    or_missing(conn, source, lambda: conn.rename(source, target))


class FTPBackend:
    name: ClassVar[str] = "ftp"
    renames_cheaply: ClassVar[bool] = True
    keeps_checksums: ClassVar[bool] = False
    signs_urls: ClassVar[bool] = False
    remote: ClassVar[bool] = True
    options_model: ClassVar[type[BackendOptions]] = FTPOptions

    def __init__(self, options: FTPOptions) -> None:
        self.options = options
        self.pool = FTPPool(options)
        self._threads = ThreadPoolExecutor(options.max_connections, thread_name_prefix="jp-ftp")
        # Directories seen to exist (or made) by this process: saves one MKD per path component
        # per upload. Forgotten when a STOR into one fails (removed behind our back).
        self._directories: set[str] = set()

    async def _call(
        self, what: str, fn: Callable[..., T], *args: Any, missing: tuple[str, ...] = ("550",)
    ) -> T:
        def run() -> T:
            with translate_errors(what, missing=missing):
                return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._threads, run)

    def _ensure_directory(self, directory: str, *, again: bool = False) -> None:
        # MKD before STOR rather than after a failed STOR: a refused STOR over FTPS leaves
        # some servers (pyftpdlib among them) with a half-open TLS data channel.
        if not directory:
            return  # the login directory
        if again:
            self._directories.difference_update(ancestry(directory))
        if directory not in self._directories:
            known = set(self._directories)
            self.pool.run(lambda conn: mkdirs(conn, directory, known))
            self._directories |= known

    def _open_store(self, path: str) -> tuple[ftplib.FTP, socket.socket]:
        def store(conn: ftplib.FTP) -> socket.socket:
            return conn.transfercmd(f"STOR {path}")

        directory = posixpath.dirname(path)
        self._ensure_directory(directory)
        try:
            conn, sock = self.pool.hold(store)
            return conn, widen(sock)
        except ftplib.error_perm:
            self._ensure_directory(directory, again=True)  # removed behind our back?
            conn, sock = self.pool.hold(store)
            return conn, widen(sock)

    @staticmethod
    def _finish_transfer(conn: ftplib.FTP, sock: socket.socket) -> None:
        close_data(sock)
        conn.voidresp()

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, max_size: int
    ) -> StoredObject:
        dest = self.pool.path(key)
        tmp = posixpath.join(
            posixpath.dirname(dest),
            f"{TMP_PREFIX}{posixpath.basename(dest)}.{secrets.token_hex(6)}",
        )
        conn, sock = await self._call("store", self._open_store, tmp, missing=())
        tally, sent = Tally(max_size), False
        try:
            await self._send_blocks(chunks, tally, sock)
            await self._call("store", self._finish_transfer, conn, sock, missing=())
            sent = True
            self.pool.release(conn)
            await self._call("rename", self.pool.run, lambda c: rename(c, tmp, dest))
        except BaseException:
            if not sent:
                close_data(sock)
                self.pool.discard(conn)
            await self._remove_quietly(tmp)
            raise
        return tally.stored(key)

    async def _send_blocks(
        self, chunks: AsyncIterator[bytes], tally: Tally, sock: socket.socket
    ) -> None:
        """Gather the body's chunks into blocks of at least ``CHUNK_SIZE``; each block is hashed
        and sent in a worker thread (hashlib and sendall release the GIL) while the event loop
        receives the next one: receiving, hashing and sending overlap, and there is one thread hop
        per block instead of one per socket read. The chunks are handed over as they came (no
        copy on the event loop); the size cap is ``Tally.add``'s, before each chunk is sent."""

        def hash_and_send(block: list[bytes]) -> None:
            for chunk in block:
                sock.sendall(tally.add(chunk))

        in_flight: asyncio.Future[None] | None = None
        block: list[bytes] = []
        gathered = 0
        try:
            async for chunk in chunks:
                block.append(chunk)
                gathered += len(chunk)
                if gathered < CHUNK_SIZE:
                    continue
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(self._call("store", hash_and_send, block))
                block, gathered = [], 0
            if in_flight is not None:
                await in_flight
                in_flight = None
            if block:
                await self._call("store", hash_and_send, block)
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
                # The thread still runs its sendall: the caller closes the socket under it.
                in_flight.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _remove_quietly(self, path: str) -> None:
        """Best effort, finished in the background even when the caller is being cancelled."""
        removal = asyncio.ensure_future(
            self._call("delete", self.pool.run, lambda c: c.delete(path))
        )
        removal.add_done_callback(lambda t: t.cancelled() or t.exception())
        with contextlib.suppress(Exception):
            await asyncio.shield(removal)

    def _move(self, source: str, target: str) -> None:
        directory = posixpath.dirname(target)
        self._ensure_directory(directory)
        try:
            self.pool.run(lambda c: rename(c, source, target))
        except ftplib.error_perm:
            self._ensure_directory(directory, again=True)  # removed behind our back?
            self.pool.run(lambda c: rename(c, source, target))

    async def publish(self, src: str, dst: str) -> None:
        source, target = self.pool.path(src), self.pool.path(dst)
        try:
            await self._call("rename", self._move, source, target)
        except FileNotFoundError:
            await self.stat(dst)  # published by an earlier, interrupted attempt (or missing)

    def _open_retrieve(self, path: str, offset: int) -> tuple[ftplib.FTP, socket.socket]:
        def retrieve(conn: ftplib.FTP) -> socket.socket:
            return widen(conn.transfercmd(f"RETR {path}", rest=offset or None))

        return self.pool.hold(lambda c: or_missing(c, path, lambda: retrieve(c)))

    async def read(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        if length == 0:
            await self.stat(key)  # still report a missing key
            return
        conn, sock = await self._call("read", self._open_retrieve, self.pool.path(key), offset)
        reader: BinaryIO = sock.makefile("rb")
        remaining, at_end = length, False
        try:
            while remaining is None or remaining > 0:
                want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await self._call("read", reader.read, want)
                if not chunk:
                    at_end = True
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            reader.close()
            if at_end:
                await self._call("read", self._finish_transfer, conn, sock)
                self.pool.release(conn)
            else:  # stopped early: the server's answer to an aborted transfer varies, start over
                close_data(sock)
                self.pool.discard(conn)

    async def stat(self, key: str) -> ObjectInfo:
        size, modified = await self._call(
            "stat", self.pool.run, partial(stat_path, path=self.pool.path(key))
        )
        return ObjectInfo(key=key, size=size, modified=modified)

    async def delete(self, key: str) -> None:
        path = self.pool.path(key)
        with contextlib.suppress(FileNotFoundError):
            await self._call("delete", self.pool.run, lambda c: c.delete(path))

    def _listing(self, directory: str) -> list[tuple[str, dict[str, str]]]:
        def listing(conn: ftplib.FTP) -> list[tuple[str, dict[str, str]]]:
            try:
                return list(
                    conn.mlsd(self.pool.directory(directory), facts=["type", "size", "modify"])
                )
            finally:
                # ftplib lists in ASCII (TYPE A); the pooled connection's transfers must stay
                # binary, or a later RETR/STOR on it turns every LF into CR LF.
                conn.voidcmd("TYPE I")

        return self.pool.run(listing)

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        base = self.options.base
        pending = [self.pool.path(prefix) if prefix else base]
        while pending:
            directory = pending.pop()
            try:
                # pyftpdlib answers 501 for a missing directory, most servers 550.
                entries = await self._call("list", self._listing, directory, missing=("550", "501"))
            except FileNotFoundError:
                continue
            for name, facts in entries:
                kind, full = facts.get("type", "").lower(), posixpath.join(directory, name)
                if kind == "dir":
                    pending.append(full)
                elif kind == "file":
                    yield ObjectInfo(
                        key=posixpath.relpath(full, base) if base else full,
                        size=int(facts.get("size", 0)),
                        modified=parse_modify(facts.get("modify")),
                    )

    @contextlib.contextmanager
    def open_reader(self, key: str) -> Iterator[BinaryIO]:
        with RangeRetriever(self.pool, self.pool.path(key)).open() as reader:
            yield cast(BinaryIO, reader)

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self.pool.path(key)
        with tempfile.TemporaryDirectory(prefix="jp-ftp-") as tmp:
            local = Path(tmp) / "object"
            with local.open("wb") as f, translate_errors("read"):
                self.pool.run(
                    lambda c: or_missing(
                        c, path, lambda: c.retrbinary(f"RETR {path}", f.write, CHUNK_SIZE)
                    )
                )
            yield local

    def _check(self, conn: ftplib.FTP) -> None:
        conn.voidcmd("NOOP")
        mkdirs(conn, self.options.base)
        conn.sendcmd(f"MLST {self.pool.directory(self.options.base)}")

    async def check(self) -> None:
        try:
            await self._call("check", self.pool.run, self._check)
        except FileNotFoundError:
            raise StorageUnavailable(
                "FTP base directory is missing and cannot be created"
            ) from None

    def direct_upload(
        self, key: str, *, size: int | None, sha256: str | None, expires: datetime
    ) -> DirectUpload | None:
        return None  # uploaders get one-time credentials from the FTP door instead

    def presigned_download(self, key: str, *, expires: datetime) -> str | None:
        return None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._threads, self.pool.close)
        self._threads.shutdown(wait=False, cancel_futures=True)

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
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TypeVar

from jp_primary.backends.base import (
    CHUNK_SIZE,
    BackendOptions,
    DirectUpload,
    ObjectInfo,
    StoredObject,
    Tally,
)
from jp_primary.backends.ftp_pool import FTPOptions, FTPPool, translate_errors
from jp_primary.errors import StorageUnavailable

TMP_PREFIX = ".tmp-"
T = TypeVar("T")


def parse_facts(line: str) -> dict[str, str]:
    """``type=file;size=5;modify=20261124031500; name`` → its facts (names lower-cased)."""
    facts, _, _name = line.strip().partition("; ")
    pairs = (fact.split("=", 1) for fact in facts.split(";") if "=" in fact)
    return {name.lower(): value for name, value in pairs}


def parse_modify(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def close_data(sock: socket.socket) -> None:
    if isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(OSError, ValueError):
            sock.unwrap()  # a clean TLS shutdown, or some servers report the transfer as failed
    sock.close()


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


def stat_path(conn: ftplib.FTP, path: str) -> tuple[int, datetime | None]:
    """Size and modification time of a file: MLST (RFC 3659), else SIZE and MDTM."""
    try:
        reply = conn.sendcmd(f"MLST {path}")
    except ftplib.error_perm as exc:
        if str(exc)[:3] not in ("500", "502"):  # anything but "command not implemented"
            raise
        size = conn.size(path)
        if size is None:
            raise FileNotFoundError(path) from None
        stamp = conn.sendcmd(f"MDTM {path}").split()[-1]
        return size, parse_modify(stamp)
    lines = [line for line in reply.splitlines() if line.startswith(" ")]
    facts = parse_facts(lines[0]) if lines else {}
    if facts.get("type", "file").lower() != "file" or "size" not in facts:
        raise FileNotFoundError(path)  # a directory is not an object
    return int(facts["size"]), parse_modify(facts.get("modify"))


def or_missing(conn: ftplib.FTP, path: str, op: Callable[[], T]) -> T:
    """Run ``op`` on ``path``; a refusal because ``path`` does not exist becomes
    ``FileNotFoundError`` whatever the code (pyftpdlib answers 550, globus-gridftp-server 500 to
    RNFR and RETR): the refusal is checked with a stat."""
    try:
        return op()
    except ftplib.error_perm:
        try:
            stat_path(conn, path)
        except (ftplib.error_perm, FileNotFoundError):
            raise FileNotFoundError(path) from None
        raise


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
            return self.pool.hold(store)
        except ftplib.error_perm:
            self._ensure_directory(directory, again=True)  # removed behind our back?
            return self.pool.hold(store)

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
            async for chunk in chunks:
                await self._call("store", sock.sendall, tally.add(chunk))
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
            return conn.transfercmd(f"RETR {path}", rest=offset or None)

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

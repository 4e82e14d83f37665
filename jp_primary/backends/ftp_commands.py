"""FTP commands the backend composes (stat, missing-file checks, closing data connections) and
the ranged reader over ``REST`` + ``RETR`` that plugins read through. All of it blocks and runs in
the backend's worker threads (or in a plugin's)."""

from __future__ import annotations

import contextlib
import ftplib
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import BinaryIO, TypeVar

from jp_primary.backends.ftp_pool import FTPPool, translate_errors
from jp_primary.backends.reader import RangeReader

T = TypeVar("T")
# Data sockets: larger kernel buffers keep a loopback or LAN transfer from stalling on a full
# window between two of our (1 MiB) writes.
SOCKET_BUFFER = 4 * 1024 * 1024
# A forward seek up to this far is read through on the open RETR: cheaper than a new data
# connection (and, as aborting a transfer leaves servers in differing states, a new control
# connection) for each tar member; farther seeks start a new RETR at the offset with REST.
SKIP_THROUGH = 256 * 1024


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


def widen(sock: socket.socket) -> socket.socket:
    """Ask for large kernel buffers on a data connection (the kernel may grant less)."""
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
    return sock


class RangeRetriever:
    """``fetch(offset, length)`` for a ``RangeReader`` over one FTP file: reads continue on the
    open ``RETR`` while they move forward (skipping up to ``SKIP_THROUGH`` bytes), else a new
    ``RETR`` starts at the offset (``REST``). Skipped bytes count as fetched."""

    def __init__(self, pool: FTPPool, path: str) -> None:
        self.pool, self.path = pool, path
        self.conn: ftplib.FTP | None = None
        self.sock: socket.socket | None = None
        self.stream: BinaryIO | None = None
        self.at = 0  # offset of the open transfer's next byte
        self.reader: RangeReader | None = None

    def open(self) -> RangeReader:
        with translate_errors("read"):
            size, _ = self.pool.run(lambda c: stat_path(c, self.path))
        self.reader = RangeReader(size, self.fetch, self.close)
        return self.reader

    def fetch(self, offset: int, length: int) -> bytes:
        with translate_errors("read"):
            if self.stream is None or not self.at <= offset <= self.at + SKIP_THROUGH:
                self._stop()
                self._start(offset)
            if offset > self.at:
                skipped = len(self._read(offset - self.at))
                if self.reader is not None:
                    self.reader.fetched += skipped
            return self._read(length)

    def _start(self, offset: int) -> None:
        def retrieve(conn: ftplib.FTP) -> socket.socket:
            return conn.transfercmd(f"RETR {self.path}", rest=offset or None)

        self.conn, sock = self.pool.hold(lambda c: or_missing(c, self.path, lambda: retrieve(c)))
        self.sock = widen(sock)
        self.stream = self.sock.makefile("rb")
        self.at = offset

    def _read(self, length: int) -> bytes:
        assert self.stream is not None
        parts, got = [], 0
        while got < length:
            part = self.stream.read(length - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        self.at += got
        return b"".join(parts)

    def _stop(self, finished: bool = False) -> None:
        """End the open transfer: cleanly when it was read to its end, else drop its control
        connection (servers answer an aborted transfer in differing ways)."""
        if self.stream is None or self.sock is None or self.conn is None:
            return
        conn, sock, stream = self.conn, self.sock, self.stream
        self.conn = self.sock = self.stream = None
        stream.close()
        close_data(sock)
        if finished:
            try:
                conn.voidresp()  # 226: the server saw the transfer through
            except Exception:  # any trouble: the connection is not reused
                self.pool.discard(conn)
                return
            self.pool.release(conn)
            return
        self.pool.discard(conn)

    def close(self) -> None:
        size = self.reader.size if self.reader is not None else -1
        self._stop(finished=self.at >= size)

"""FTP connection settings, a small pool of logged-in connections and error translation.

Control connections die quietly (server idle timeouts, restarts); a call that fails on a
connection taken from the pool is retried once on a fresh one, a call on a fresh connection is
not retried. Everything here blocks and runs in the backend's worker threads.
"""

from __future__ import annotations

import contextlib
import ftplib
import posixpath
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from jp_primary.backends.base import BackendOptions
from jp_primary.errors import StorageUnavailable

T = TypeVar("T")
# Signs of a dropped or broken control connection (421 arrives as error_temp).
DROPPED = (EOFError, OSError, ftplib.error_temp, ftplib.error_reply, ftplib.error_proto)


class FTPOptions(BackendOptions):
    """``JP_FTP_*`` settings (environment or settings file), named without the prefix.

    The URL's path follows RFC 1738 §3.2.2: it is relative to the login directory
    (``ftp://u:p@host/jp/files`` is ``jp/files`` under the account's home), and starts at the
    server's root only when its first segment begins with an encoded slash
    (``ftp://u:p@host/%2Fsrv/jp``). Servers such as globus-gridftp-server do not confine a
    password account to its home, so an absolute path really is absolute there.
    """

    model_config = SettingsConfigDict(env_prefix="JP_FTP_")

    url: str  # ftp://user:password@host:port/base or ftps://... (explicit TLS, PROT P)
    ca_file: Path | None = None  # FTPS: trust these CAs instead of the system store
    timeout: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=4, ge=1, le=32)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("ftp", "ftps") or not parts.hostname:
            raise ValueError("expected ftp://user:password@host:port/base or ftps://...")
        segments = [unquote(s) for s in parts.path.split("/")[1:] if s]
        if any("/" in s for s in segments[1:]) or any(s in (".", "..") for s in segments):
            raise ValueError(
                "the URL path may hold an encoded slash (%2F) only at its start, to make it "
                "absolute, and no . or .. segments"
            )
        return value

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "ftps"

    @property
    def base(self) -> str:
        """The base directory as FTP commands name it: relative to the login directory
        (``""`` being the login directory itself) unless the URL made it absolute."""
        segments = [unquote(s) for s in urlsplit(self.url).path.split("/")[1:] if s]
        absolute = bool(segments) and segments[0].startswith("/")
        path = "/".join(s.strip("/") for s in segments if s.strip("/"))
        return "/" + path if absolute else path


@contextlib.contextmanager
def translate_errors(what: str, *, missing: tuple[str, ...] = ("550",)) -> Iterator[None]:
    """Replies in ``missing`` (550: no such file) become ``FileNotFoundError``; every other failure
    ``StorageUnavailable`` (never echoing the URL: it holds the password)."""
    try:
        yield
    except FileNotFoundError:
        raise  # already decided (a refusal checked with a stat): not a dropped connection
    except ftplib.error_perm as exc:
        if str(exc)[:3] in missing:
            raise FileNotFoundError(what) from exc
        raise StorageUnavailable(f"FTP server refused {what}: {str(exc)[:3]}") from exc
    except (*DROPPED, ftplib.Error) as exc:
        raise StorageUnavailable(f"FTP server unreachable ({type(exc).__name__})") from exc


class FTPPool:
    def __init__(self, options: FTPOptions) -> None:
        self.options = options
        parts = urlsplit(options.url)
        self.host = parts.hostname or ""
        self.port = parts.port or 21
        self.user = unquote(parts.username or "anonymous")
        self.password = unquote(parts.password or "")
        self._idle: list[ftplib.FTP] = []
        self._lock = threading.Lock()

    def path(self, key: str) -> str:
        norm = posixpath.normpath(key)
        if not key or key.startswith("/") or norm.startswith("..") or norm == ".":
            raise ValueError(f"invalid storage key {key!r}")
        return posixpath.join(self.options.base, norm)

    def directory(self, path: str) -> str:
        """``path`` as an argument of MLSD/MLST: ``.`` for the login directory."""
        return path or "."

    def connect(self) -> ftplib.FTP:
        conn: ftplib.FTP
        if self.options.tls:
            cafile = str(self.options.ca_file) if self.options.ca_file else None
            context = ssl.create_default_context(cafile=cafile)
            conn = ftplib.FTP_TLS(context=context, timeout=self.options.timeout)  # noqa: S321
        else:
            # Plain FTP is what the operator chose in JP_FTP_URL (ftps:// for TLS).
            conn = ftplib.FTP(timeout=self.options.timeout)  # noqa: S321
        try:
            conn.connect(self.host, self.port)
            conn.login(self.user, self.password)  # FTP_TLS sends AUTH TLS first
            if isinstance(conn, ftplib.FTP_TLS):
                conn.prot_p()
            conn.voidcmd("TYPE I")
        except BaseException:
            conn.close()
            raise
        return conn

    def acquire(self) -> tuple[ftplib.FTP, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self.connect(), False

    def release(self, conn: ftplib.FTP) -> None:
        with self._lock:
            if len(self._idle) < self.options.max_connections:
                self._idle.append(conn)
                return
        conn.close()

    @staticmethod
    def discard(conn: ftplib.FTP) -> None:
        conn.close()

    def _attempt(self, conn: ftplib.FTP, op: Callable[[ftplib.FTP], T], hold: bool) -> T:
        try:
            result = op(conn)
        except (ftplib.error_perm, FileNotFoundError):
            self.release(conn)  # a refusal leaves the connection usable
            raise
        except BaseException:
            self.discard(conn)
            raise
        if not hold:
            self.release(conn)
        return result

    def run(self, op: Callable[[ftplib.FTP], T]) -> T:
        return self._run(op, hold=False)[1]

    def hold(self, op: Callable[[ftplib.FTP], T]) -> tuple[ftplib.FTP, T]:
        """Like ``run`` but the caller keeps the connection (release or discard it after)."""
        return self._run(op, hold=True)

    def _run(self, op: Callable[[ftplib.FTP], T], hold: bool) -> tuple[ftplib.FTP, T]:
        conn, reused = self.acquire()
        try:
            return conn, self._attempt(conn, op, hold)
        except FileNotFoundError:
            raise  # an answer, not a dropped connection
        except DROPPED:
            if not reused:
                raise
        conn = self.connect()  # the pooled connection had died: one retry on a fresh one
        return conn, self._attempt(conn, op, hold)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(*DROPPED):
                conn.quit()
            conn.close()

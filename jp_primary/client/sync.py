"""``Client``: the blocking client of the whole REST API (``AsyncClient`` is its awaitable twin)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from jp_primary.client import calls, models
from jp_primary.client.calls import Call, Retry
from jp_primary.client.credentials import Credentials
from jp_primary.client.errors import (
    Conflict,
    ConnectionFailed,
    RangeNotSatisfiable,
    StorageUnavailable,
    error_for,
)
from jp_primary.client.transfer import (
    TWO_PHASE_THRESHOLD,
    Partial,
    Progress,
    ResumableSend,
    Source,
    chunks,
    etag_sha256,
    ftp_store,
    post_body,
    rereadable,
    sha256_of,
    source_size,
)

DEFAULT_URL = "http://127.0.0.1:8901"


_CONNECTIONS = 100  # httpx's default limit of connections at once


def http_options(
    url: str | None, credentials: Credentials | None, timeout: float
) -> dict[str, Any]:
    """The httpx arguments both clients are built with."""
    base = (url or os.environ.get("JP_URL") or DEFAULT_URL).rstrip("/")
    creds = credentials if credentials is not None else Credentials.lookup()
    verify: Any = creds.ssl_context() if base.startswith("https:") else True
    headers = {"User-Agent": "jp-primary-client"} | creds.headers()
    # Keep every connection the client opened for reuse (httpx keeps 20 by default): a client
    # shared by more threads or tasks than that (the importer's 32 workers) otherwise closes a
    # connection after each surplus request and opens a new one for the next, a TCP handshake
    # and a socket set-up on both ends per request. Idle ones still close after httpx's expiry.
    limits = httpx.Limits(max_connections=_CONNECTIONS, max_keepalive_connections=_CONNECTIONS)
    return {
        "base_url": base,
        "headers": headers,
        "verify": verify,
        "timeout": timeout,
        "limits": limits,
    }


class Client:
    """The REST API of a jp_primary service, call by call, with typed results.

    Errors raise the class named by the answer's ``error`` (``jp_primary.client.errors``).
    Idempotent calls are retried on 502/503/504 and connection failures with backoff and jitter.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        credentials: Credentials | None = None,
        timeout: float = 60.0,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or Retry()
        self._http = httpx.Client(**http_options(url, credentials, timeout), transport=transport)

    @property
    def url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the machinery ------------------------------------------------------------------------

    def _send(
        self, request: httpx.Request, idempotent: bool, stream: bool = False
    ) -> httpx.Response:
        attempts = self.retry.attempts if idempotent else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.send(request, stream=stream)
            except calls.RETRY_ERRORS as exc:
                if last or calls.hopeless(exc):
                    raise ConnectionFailed(f"{request.method} {request.url}: {exc}") from exc
                time.sleep(self.retry.delay(attempt))
                continue
            if response.status_code < 400:
                return response
            response.read()
            error = error_for(response)
            response.close()
            if last or response.status_code not in calls.RETRY_STATUSES:
                raise error
            time.sleep(self.retry.delay(attempt, calls.retry_after(error)))
        raise AssertionError("unreachable")

    def run(self, call: Call) -> Any:
        request = self._http.build_request(
            call.method, call.path, params=list(call.params), json=call.json, headers=call.headers
        )
        return call.parse(self._send(request, call.idempotent))

    # -- jobs ---------------------------------------------------------------------------------

    def register(self, jobid: str, owner: str | None = None) -> models.Registration:
        return self.run(calls.register(jobid, owner))

    def register_bulk(self, jobs: Sequence[tuple[str, str | None]]) -> list[models.BulkItem]:
        return self.run(calls.register_bulk(jobs))

    def job(self, job: str) -> models.Job:
        """A job by key or by full jobid."""
        return self.run(calls.job(job))

    def whoami(self) -> models.WhoAmI:
        return self.run(calls.whoami())

    def healthz(self) -> dict[str, Any]:
        return self.run(calls.healthz())

    # -- uploads ------------------------------------------------------------------------------

    def put_file(
        self,
        job: str,
        file_class: str,
        source: Source,
        *,
        name: str = "",
        sha256: str | None = None,
        content_type: str | None = None,
        progress: Progress | None = None,
        register: bool = False,
        owner: str | None = None,
    ) -> models.CommittedFile:
        """One-shot upload and commit (``PUT /v1/jobs/{key}/files/{class}``); the digest of a
        path or bytes is computed and sent as ``X-Content-SHA256`` unless given. With
        ``register`` (``job`` the full jobid), a job the service does not know is registered
        first, for ``owner`` (default: the caller); ``registered`` in the answer says whether."""
        digest = sha256 or sha256_of(source)
        headers = calls.one_shot_headers(digest, content_type, register, owner, job)
        path = calls.job_path(job, f"/files/{quote(file_class, safe='')}")

        def request() -> httpx.Request:
            return self._http.build_request(
                "PUT",
                path,
                params={"name": name},
                headers=headers,
                content=chunks(source, progress),
            )

        return calls.committed(self._resend(request, source))

    def put_files_bulk(
        self, items: Sequence[calls.BulkUpload], *, brief: bool = False
    ) -> list[models.BulkFileResult]:
        """Many small one-shot uploads in one request (``POST /v1/files/bulk``, trusted services
        only): one result per item, in order, with the status its ``put_file`` would have had
        (the same bytes already stored: 200). Sent again on a connection failure or a 503: a
        retry answers 200 for what the first attempt stored. ``brief``: the files come without
        their extraction's values."""
        parts = calls.bulk_parts(items)

        def request() -> httpx.Request:
            return self._http.build_request(
                "POST", calls.BULK_FILES, files=parts, params=calls.BRIEF if brief else None
            )

        return calls.bulk_results(self._resend(request, b""))

    def _resend(self, build: Any, source: Source) -> httpx.Response:
        """Send a request whose body is ``source``: again on a retryable failure when the bytes
        can be read again (a fresh request each time, so the body restarts)."""
        attempts = self.retry.attempts if rereadable(source) else 1
        for attempt in range(attempts):
            try:
                return self._send(build(), idempotent=False)
            except (ConnectionFailed, StorageUnavailable) as exc:
                if attempt == attempts - 1:
                    raise
                time.sleep(self.retry.delay(attempt, calls.retry_after(exc)))
        raise AssertionError("unreachable")

    def start_upload(
        self, job: str, file_class: str, name: str = "", **kw: Any
    ) -> models.UploadTicket:
        return self.run(calls.start_upload(job, file_class, name, **kw))

    def send_bytes(
        self, ticket: models.UploadTicket, source: Source, progress: Progress | None = None
    ) -> None:
        """Send the bytes where the ticket says: the API, a presigned S3 POST or the FTP door."""
        if ticket.method == "ftp":
            ftp_store(ticket.url, source, progress)
            return
        if ticket.method == "s3-post":
            body = post_body(source, progress)
            fields = ticket.fields or {}
            try:
                with httpx.Client(timeout=self._http.timeout) as plain:
                    answer = plain.post(ticket.url, data=fields, files={"file": ("file", body)})
            finally:
                if not isinstance(body, bytes):
                    body.close()
            if answer.status_code >= 300:
                raise error_for(answer)
            return

        size = source_size(source)
        if rereadable(source) and size:
            self._send_resumable(ticket, ResumableSend(source, size, progress, self.retry.attempts))
            return

        def request() -> httpx.Request:
            return self._http.build_request(
                "PUT", ticket.url, headers=ticket.headers or {}, content=chunks(source, progress)
            )

        self._resend(request, source)

    def _send_resumable(self, ticket: models.UploadTicket, send: ResumableSend) -> None:
        while True:
            request = self._http.build_request(
                "PUT", ticket.url, headers=send.headers(ticket.headers), content=send.body()
            )
            try:
                self._send(request, idempotent=False)
                return
            except (ConnectionFailed, StorageUnavailable) as exc:
                if not send.failed():
                    raise
                time.sleep(self.retry.delay(send.failures - 1, calls.retry_after(exc)))
            except Conflict:
                if not send.may_be_behind():
                    raise
            found = self.upload_progress(ticket.upload_id)
            if send.resume(found.received, found.complete):
                return

    def upload_progress(self, upload_id: str) -> models.UploadProgress:
        """How many bytes of an upload in progress the service holds."""
        return self.run(calls.upload_progress(upload_id))

    def commit_upload(self, upload_id: str) -> models.CommittedFile:
        return self.run(calls.commit_upload(upload_id))

    def abort_upload(self, upload_id: str) -> None:
        self.run(calls.abort_upload(upload_id))

    def upload(
        self,
        job: str,
        file_class: str,
        source: Source,
        *,
        name: str = "",
        content_type: str | None = None,
        direct: bool = False,
        two_phase: bool | None = None,
        progress: Progress | None = None,
    ) -> models.CommittedFile:
        """Store a file: one-shot for small ones; two-phase (start, send, commit; the send
        retried on a dropped connection) for files over 64 MiB, when ``direct`` asks for the
        store's own URL, or when ``two_phase`` says so."""
        size = source_size(source)
        if two_phase is None:
            two_phase = direct or (size is not None and size > TWO_PHASE_THRESHOLD)
        if not two_phase:
            return self.put_file(
                job, file_class, source, name=name, content_type=content_type, progress=progress
            )
        ticket = self.start_upload(
            job,
            file_class,
            name,
            content_type=content_type,
            size=size,
            sha256=sha256_of(source),
            direct=direct,
        )
        try:
            self.send_bytes(ticket, source, progress)
            return self.commit_upload(ticket.upload_id)
        except BaseException:
            # The first failure is the one to report.
            with contextlib.suppress(Exception):
                self.abort_upload(ticket.upload_id)
            raise

    # -- files --------------------------------------------------------------------------------

    def files(self, job: str) -> list[models.StoredFile]:
        return self.run(calls.files(job))

    def link(self, job: str, file_class: str, name: str = "") -> models.Link:
        return self.run(calls.link(job, file_class, name))

    def read(
        self, job: str, file_class: str, name: str = "", *, byte_range: str | None = None
    ) -> bytes:
        """A whole (small) file, or the part ``byte_range`` (``"0-99"``) names."""
        path = calls.job_path(job, f"/files/{quote(file_class, safe='')}")
        headers = {"Range": f"bytes={byte_range}"} if byte_range else {}
        request = self._http.build_request("GET", path, params={"name": name}, headers=headers)
        return self._send(request, idempotent=True).content

    def download(
        self,
        job: str,
        file_class: str,
        dest: str | Path,
        *,
        name: str = "",
        resume: bool = True,
        progress: Progress | None = None,
        total: Any = None,
    ) -> Path:
        """Save a file to ``dest`` through ``dest.part``: an interrupted download resumes where it
        stopped (Range with If-Range on the ETag); the bytes are checked against the sha256."""
        partial = Partial(Path(dest))
        path = calls.job_path(job, f"/files/{quote(file_class, safe='')}")
        for attempt in range(self.retry.attempts):
            headers = partial.resume_headers() if resume or attempt else {}
            request = self._http.build_request("GET", path, params={"name": name}, headers=headers)
            try:
                response = self._send(request, idempotent=True, stream=True)
            except RangeNotSatisfiable:
                partial.part.unlink(missing_ok=True)  # a stale .part longer than the file
                continue
            try:
                etag = response.headers.get("etag")
                if total is not None:
                    total(response)
                with partial.open(response.status_code, etag) as out:
                    for block in response.iter_bytes(1 << 20):
                        out.write(block)
                        if progress is not None:
                            progress(len(block))
                return partial.finish(etag_sha256(etag))
            except httpx.TransportError:
                if attempt == self.retry.attempts - 1:
                    raise
                time.sleep(self.retry.delay(attempt))
            finally:
                response.close()
        raise ConnectionFailed(f"could not download {path}")

    def file_errors(self, job: str, file_class: str, name: str = "") -> dict[str, Any]:
        return self.run(calls.file_errors(job, file_class, name))

    # -- tags, attributes, records ------------------------------------------------------------

    def add_tags(self, job: str, tags: Sequence[tuple[str, str]]) -> list[models.Tag]:
        return self.run(calls.add_tags(job, tags))

    def tags(self, job: str) -> list[models.Tag]:
        return self.run(calls.tags(job))

    def attributes(self, job: str, names: Sequence[str] = ()) -> models.Attributes:
        return self.run(calls.attributes(job, names))

    def record(self, job: str) -> str:
        """The JobRecord XML document."""
        return self.run(calls.record(job))

    def prov(self, job: str, accept: str = "application/json") -> str:
        return self.run(calls.prov(job, accept))

    # -- batch queries ------------------------------------------------------------------------

    def batch_attributes(self, jobs: Sequence[str], names: Sequence[str]) -> models.BatchAttributes:
        return self.run(calls.batch_attributes(jobs, names))

    def query_pages(
        self,
        where: Sequence[dict[str, Any]],
        select: Sequence[str] = (),
        *,
        latest: bool | None = None,
        limit: int | None = None,
    ) -> Iterator[models.QueryPage]:
        after: str | None = None
        while True:
            page: models.QueryPage = self.run(
                calls.query_page(where, select, latest=latest, limit=limit, after=after)
            )
            yield page
            if not page.next:
                return
            after = page.next

    def query(
        self,
        where: Sequence[dict[str, Any]],
        select: Sequence[str] = (),
        *,
        latest: bool | None = None,
        limit: int | None = None,
    ) -> Iterator[models.QueryJob]:
        """Every job matching ``where``, page after page (``limit`` is the page size)."""
        for page in self.query_pages(where, select, latest=latest, limit=limit):
            yield from page.jobs

    # -- feeds --------------------------------------------------------------------------------

    def subscribe(
        self, attributes: Sequence[str], conditions: Sequence[dict[str, Any]] = (), **kw: Any
    ) -> models.Feed:
        return self.run(calls.subscribe(attributes, conditions, **kw))

    def feeds(self) -> Any:
        return self.run(calls.feeds())

    def feed(self, feed_id: str) -> dict[str, Any]:
        return self.run(calls.feed(feed_id))

    def refresh_feed(self, feed_id: str) -> dict[str, Any]:
        return self.run(calls.refresh_feed(feed_id))

    def delete_feed(self, feed_id: str) -> None:
        self.run(calls.delete_feed(feed_id))

    def changes(
        self,
        feed_id: str,
        since: str | None = None,
        *,
        limit: int | None = None,
        wait: float | None = None,
    ) -> models.FeedChanges:
        return self.run(calls.changes(feed_id, since, limit, wait))

    def pull(
        self,
        feed_id: str,
        since: str | None = None,
        *,
        limit: int | None = None,
        wait: float = 30.0,
        stop_when_idle: bool = False,
    ) -> Iterator[models.FeedChanges]:
        """The pages of a pull-mode feed, long-polling ``wait`` seconds for each; with
        ``stop_when_idle`` it ends at the first empty page after the history is done. Each page's
        ``next`` is the token to resume from."""
        while True:
            page = self.changes(feed_id, since, limit=limit, wait=wait)
            yield page
            since = page.next or since
            if stop_when_idle and page.history_done and not page.records:
                return

"""``AsyncClient``: the awaitable twin of ``Client`` (same calls, same results, same errors)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
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
from jp_primary.client.sync import http_options
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


async def _aiter(blocks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block


class AsyncClient:
    """See ``Client``: every method is the same, awaited."""

    def __init__(
        self,
        url: str | None = None,
        *,
        credentials: Credentials | None = None,
        timeout: float = 60.0,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or Retry()
        self._http = httpx.AsyncClient(
            **http_options(url, credentials, timeout), transport=transport
        )

    @property
    def url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(
        self, request: httpx.Request, idempotent: bool, stream: bool = False
    ) -> httpx.Response:
        attempts = self.retry.attempts if idempotent else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._http.send(request, stream=stream)
            except calls.RETRY_ERRORS as exc:
                if last or calls.hopeless(exc):
                    raise ConnectionFailed(f"{request.method} {request.url}: {exc}") from exc
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            if response.status_code < 400:
                return response
            await response.aread()
            error = error_for(response)
            await response.aclose()
            if last or response.status_code not in calls.RETRY_STATUSES:
                raise error
            await asyncio.sleep(self.retry.delay(attempt, calls.retry_after(error)))
        raise AssertionError("unreachable")

    async def run(self, call: Call) -> Any:
        request = self._http.build_request(
            call.method, call.path, params=list(call.params), json=call.json, headers=call.headers
        )
        return call.parse(await self._send(request, call.idempotent))

    async def _resend(self, build: Any, source: Source) -> httpx.Response:
        attempts = self.retry.attempts if rereadable(source) else 1
        for attempt in range(attempts):
            try:
                return await self._send(build(), idempotent=False)
            except (ConnectionFailed, StorageUnavailable) as exc:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, calls.retry_after(exc)))
        raise AssertionError("unreachable")

    # -- jobs ---------------------------------------------------------------------------------

    async def register(self, jobid: str, owner: str | None = None) -> models.Registration:
        return await self.run(calls.register(jobid, owner))

    async def register_bulk(self, jobs: Sequence[tuple[str, str | None]]) -> list[models.BulkItem]:
        return await self.run(calls.register_bulk(jobs))

    async def job(self, job: str) -> models.Job:
        return await self.run(calls.job(job))

    async def whoami(self) -> models.WhoAmI:
        return await self.run(calls.whoami())

    # -- uploads ------------------------------------------------------------------------------

    async def put_file(
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
        digest = sha256 or await asyncio.to_thread(sha256_of, source)
        headers = calls.one_shot_headers(digest, content_type, register, owner, job)
        path = calls.job_path(job, f"/files/{quote(file_class, safe='')}")

        def request() -> httpx.Request:
            body = _aiter(chunks(source, progress))
            return self._http.build_request(
                "PUT", path, params={"name": name}, headers=headers, content=body
            )

        return calls.committed(await self._resend(request, source))

    async def put_files_bulk(
        self, items: Sequence[calls.BulkUpload], *, brief: bool = False
    ) -> list[models.BulkFileResult]:
        """As ``Client.put_files_bulk``."""
        parts = await asyncio.to_thread(calls.bulk_parts, items)

        def request() -> httpx.Request:
            return self._http.build_request(
                "POST", calls.BULK_FILES, files=parts, params=calls.BRIEF if brief else None
            )

        return calls.bulk_results(await self._resend(request, b""))

    async def start_upload(
        self, job: str, file_class: str, name: str = "", **kw: Any
    ) -> models.UploadTicket:
        return await self.run(calls.start_upload(job, file_class, name, **kw))

    async def send_bytes(
        self, ticket: models.UploadTicket, source: Source, progress: Progress | None = None
    ) -> None:
        if ticket.method == "ftp":
            await asyncio.to_thread(ftp_store, ticket.url, source, progress)
            return
        if ticket.method == "s3-post":
            body = await asyncio.to_thread(post_body, source, progress)
            try:
                async with httpx.AsyncClient(timeout=self._http.timeout) as plain:
                    answer = await plain.post(
                        ticket.url, data=ticket.fields or {}, files={"file": ("file", body)}
                    )
            finally:
                if not isinstance(body, bytes):
                    body.close()
            if answer.status_code >= 300:
                raise error_for(answer)
            return

        size = source_size(source)
        if rereadable(source) and size:
            send = ResumableSend(source, size, progress, self.retry.attempts)
            await self._send_resumable(ticket, send)
            return

        def request() -> httpx.Request:
            body = _aiter(chunks(source, progress))
            return self._http.build_request(
                "PUT", ticket.url, headers=ticket.headers or {}, content=body
            )

        await self._resend(request, source)

    async def _send_resumable(self, ticket: models.UploadTicket, send: ResumableSend) -> None:
        while True:
            request = self._http.build_request(
                "PUT", ticket.url, headers=send.headers(ticket.headers), content=_aiter(send.body())
            )
            try:
                await self._send(request, idempotent=False)
                return
            except (ConnectionFailed, StorageUnavailable) as exc:
                if not send.failed():
                    raise
                await asyncio.sleep(self.retry.delay(send.failures - 1, calls.retry_after(exc)))
            except Conflict:
                if not send.may_be_behind():
                    raise
            found = await self.upload_progress(ticket.upload_id)
            if send.resume(found.received, found.complete):
                return

    async def upload_progress(self, upload_id: str) -> models.UploadProgress:
        return await self.run(calls.upload_progress(upload_id))

    async def commit_upload(self, upload_id: str) -> models.CommittedFile:
        return await self.run(calls.commit_upload(upload_id))

    async def abort_upload(self, upload_id: str) -> None:
        await self.run(calls.abort_upload(upload_id))

    async def upload(
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
        size = source_size(source)
        if two_phase is None:
            two_phase = direct or (size is not None and size > TWO_PHASE_THRESHOLD)
        if not two_phase:
            return await self.put_file(
                job, file_class, source, name=name, content_type=content_type, progress=progress
            )
        ticket = await self.start_upload(
            job,
            file_class,
            name,
            content_type=content_type,
            size=size,
            sha256=await asyncio.to_thread(sha256_of, source),
            direct=direct,
        )
        try:
            await self.send_bytes(ticket, source, progress)
            return await self.commit_upload(ticket.upload_id)
        except BaseException:
            # The first failure is the one to report.
            with contextlib.suppress(Exception):
                await self.abort_upload(ticket.upload_id)
            raise

    # -- files --------------------------------------------------------------------------------

    async def files(self, job: str) -> list[models.StoredFile]:
        return await self.run(calls.files(job))

    async def link(self, job: str, file_class: str, name: str = "") -> models.Link:
        return await self.run(calls.link(job, file_class, name))

    async def read(
        self, job: str, file_class: str, name: str = "", *, byte_range: str | None = None
    ) -> bytes:
        path = calls.job_path(job, f"/files/{quote(file_class, safe='')}")
        headers = {"Range": f"bytes={byte_range}"} if byte_range else {}
        request = self._http.build_request("GET", path, params={"name": name}, headers=headers)
        return (await self._send(request, idempotent=True)).content

    async def download(
        self, job: str, file_class: str, dest: str | Path, *, name: str = "", resume: bool = True
    ) -> Path:
        partial = Partial(Path(dest))
        path = calls.job_path(job, f"/files/{quote(file_class, safe='')}")
        for attempt in range(self.retry.attempts):
            headers = partial.resume_headers() if resume or attempt else {}
            request = self._http.build_request("GET", path, params={"name": name}, headers=headers)
            try:
                response = await self._send(request, idempotent=True, stream=True)
            except RangeNotSatisfiable:
                partial.part.unlink(missing_ok=True)
                continue
            try:
                etag = response.headers.get("etag")
                with partial.open(response.status_code, etag) as out:
                    async for block in response.aiter_bytes(1 << 20):
                        out.write(block)
                return partial.finish(etag_sha256(etag))
            except httpx.TransportError:
                if attempt == self.retry.attempts - 1:
                    raise
                await asyncio.sleep(self.retry.delay(attempt))
            finally:
                await response.aclose()
        raise ConnectionFailed(f"could not download {path}")

    # -- tags, attributes, records ------------------------------------------------------------

    async def add_tags(self, job: str, tags: Sequence[tuple[str, str]]) -> list[models.Tag]:
        return await self.run(calls.add_tags(job, tags))

    async def tags(self, job: str) -> list[models.Tag]:
        return await self.run(calls.tags(job))

    async def attributes(self, job: str, names: Sequence[str] = ()) -> models.Attributes:
        return await self.run(calls.attributes(job, names))

    async def record(self, job: str) -> str:
        return await self.run(calls.record(job))

    # -- batch queries and feeds --------------------------------------------------------------

    async def batch_attributes(
        self, jobs: Sequence[str], names: Sequence[str]
    ) -> models.BatchAttributes:
        return await self.run(calls.batch_attributes(jobs, names))

    async def query(
        self,
        where: Sequence[dict[str, Any]],
        select: Sequence[str] = (),
        *,
        latest: bool | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[models.QueryJob]:
        after: str | None = None
        while True:
            page: models.QueryPage = await self.run(
                calls.query_page(where, select, latest=latest, limit=limit, after=after)
            )
            for job in page.jobs:
                yield job
            if not page.next:
                return
            after = page.next

    async def subscribe(
        self, attributes: Sequence[str], conditions: Sequence[dict[str, Any]] = (), **kw: Any
    ) -> models.Feed:
        return await self.run(calls.subscribe(attributes, conditions, **kw))

    async def feeds(self) -> Any:
        return await self.run(calls.feeds())

    async def feed(self, feed_id: str) -> dict[str, Any]:
        return await self.run(calls.feed(feed_id))

    async def refresh_feed(self, feed_id: str) -> dict[str, Any]:
        return await self.run(calls.refresh_feed(feed_id))

    async def delete_feed(self, feed_id: str) -> None:
        await self.run(calls.delete_feed(feed_id))

    async def changes(
        self,
        feed_id: str,
        since: str | None = None,
        *,
        limit: int | None = None,
        wait: float | None = None,
    ) -> models.FeedChanges:
        return await self.run(calls.changes(feed_id, since, limit, wait))

    async def pull(
        self,
        feed_id: str,
        since: str | None = None,
        *,
        limit: int | None = None,
        wait: float = 30.0,
        stop_when_idle: bool = False,
    ) -> AsyncIterator[models.FeedChanges]:
        while True:
            page = await self.changes(feed_id, since, limit=limit, wait=wait)
            yield page
            since = page.next or since
            if stop_when_idle and page.history_done and not page.records:
                return

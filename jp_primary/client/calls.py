"""The API's JSON calls as data: what to send and how to read the answer.

``Client`` and ``AsyncClient`` each run a :class:`Call` their own way (blocking or awaited), so the
paths, bodies and result types are written once, here. Byte transfers (uploads and downloads)
stream and are written in each client.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from jp_primary.client import models
from jp_primary.client.errors import StorageUnavailable

# Statuses and failures after which an idempotent call is tried again.
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_ERRORS = (httpx.TransportError,)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    parse: Callable[[httpx.Response], Any]
    params: Sequence[tuple[str, str]] = ()
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True


@dataclass(frozen=True)
class Retry:
    """Retries of idempotent calls: exponential backoff with full jitter, at most ``attempts``
    tries, never waiting longer than ``cap`` seconds (a 503's Retry-After counts when larger than
    the jittered wait, up to the cap)."""

    attempts: int = 5
    base: float = 0.25
    cap: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        wait = random.uniform(0, min(self.cap, self.base * 2**attempt))  # noqa: S311
        if retry_after is not None:
            wait = max(wait, min(self.cap, retry_after))
        return wait


def hopeless(exc: Exception) -> bool:
    """A transport failure no retry cures: the server's certificate does not verify."""
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc)


def retry_after(exc: BaseException) -> float | None:
    return exc.retry_after if isinstance(exc, StorageUnavailable) else None


def key_of(job: str) -> str:
    """The key of a job given by key or by full jobid (its last path segment)."""
    return job.rstrip("/").rsplit("/", 1)[-1] if "://" in job else job


def job_path(job: str, rest: str = "") -> str:
    return f"/v1/jobs/{quote(key_of(job), safe='')}{rest}"


def one_shot_headers(
    digest: str | None, content_type: str | None, register: bool, owner: str | None, job: str
) -> dict[str, str]:
    """The headers of a one-shot PUT: its declared digest, and with ``register`` the job to
    register first when the service does not know it (``job`` must then be the full jobid)."""
    headers = {"Content-Type": content_type or "application/octet-stream"}
    if digest:
        headers["X-Content-SHA256"] = digest
    if register:
        if "/" not in job:
            raise ValueError("registering needs the full jobid, not a key")
        headers["X-Register-Jobid"] = job
        if owner is not None:
            headers["X-Register-Owner"] = owner
    return headers


BULK_FILES = "/v1/files/bulk"
BRIEF = {"brief": "true"}  # the answer without the extraction's values


@dataclass(frozen=True)
class BulkUpload:
    """One file of ``put_files_bulk``: what ``put_file`` takes, the bytes read at once (bulk
    requests are for small files; the service takes at most 100 and ``JP_MAX_BULK_BODY``)."""

    job: str  # the full jobid (the manifest names jobs by jobid)
    file_class: str
    source: bytes | str | Path
    name: str = ""
    sha256: str | None = None
    content_type: str | None = None
    register: bool = False
    owner: str | None = None


def bulk_parts(items: Sequence[BulkUpload]) -> list[tuple[str, Any]]:
    """The multipart parts of ``POST /v1/files/bulk``: the manifest, then one file part each."""
    manifest = []
    bodies = []
    for item in items:
        body = item.source if isinstance(item.source, bytes) else Path(item.source).read_bytes()
        entry: dict[str, Any] = {"jobid": item.job, "class": item.file_class, "name": item.name}
        entry["sha256"] = item.sha256 or hashlib.sha256(body).hexdigest()
        if item.content_type is not None:
            entry["content_type"] = item.content_type
        if item.register:
            entry["register"] = True
            if item.owner is not None:
                entry["register_owner"] = item.owner
        manifest.append(entry)
        bodies.append(body)
    parts: list[tuple[str, Any]] = [
        ("manifest", (None, json.dumps({"files": manifest}).encode(), "application/json"))
    ]
    parts += [("file", (str(i), body, "application/octet-stream")) for i, body in enumerate(bodies)]
    return parts


def bulk_results(response: httpx.Response) -> list[models.BulkFileResult]:
    return [models.BulkFileResult.model_validate(r) for r in response.json()["results"]]


def committed(response: httpx.Response) -> models.CommittedFile:
    """A one-shot PUT's answer, saying whether it registered the job."""
    registered = response.headers.get("X-Job-Registered") == "true"
    return models.CommittedFile.model_validate(response.json() | {"registered": registered})


def _model(cls: type[models.Result]) -> Callable[[httpx.Response], Any]:
    return lambda r: cls.model_validate(r.json())


def _models(cls: type[models.Result]) -> Callable[[httpx.Response], Any]:
    return lambda r: [cls.model_validate(item) for item in r.json()]


def _none(_r: httpx.Response) -> None:
    return None


def _json(r: httpx.Response) -> Any:
    return r.json()


def _registration(r: httpx.Response) -> models.Registration:
    return models.Registration(
        job=models.Job.model_validate(r.json()), created=r.status_code == 201
    )


# -- jobs ---------------------------------------------------------------------------------------


def register(jobid: str, owner: str | None = None) -> Call:
    body = {"jobid": jobid} | ({"owner": owner} if owner is not None else {})
    # Registration is idempotent by design: the same jobid and owner again is 200, the same job.
    return Call("POST", "/v1/jobs", _registration, json=body)


def register_bulk(jobs: Sequence[tuple[str, str | None]]) -> Call:
    items = [{"jobid": j} | ({"owner": o} if o is not None else {}) for j, o in jobs]
    return Call(
        "POST",
        "/v1/jobs/bulk",
        lambda r: [models.BulkItem.model_validate(i) for i in r.json()["results"]],
        json={"jobs": items},
    )


def job(job: str) -> Call:
    if "://" in job:
        return Call("GET", "/v1/jobs", _model(models.Job), params=[("jobid", job)])
    return Call("GET", job_path(job), _model(models.Job))


def whoami() -> Call:
    return Call("GET", "/v1/whoami", _model(models.WhoAmI))


def healthz() -> Call:
    return Call("GET", "/healthz", _json)


# -- uploads and files --------------------------------------------------------------------------


def start_upload(
    job: str,
    file_class: str,
    name: str = "",
    *,
    content_type: str | None = None,
    size: int | None = None,
    sha256: str | None = None,
    direct: bool = False,
) -> Call:
    body: dict[str, Any] = {"class": file_class, "name": name, "direct": direct}
    body |= {k: v for k, v in (("content_type", content_type), ("size", size)) if v is not None}
    if sha256 is not None:
        body["sha256"] = sha256
    # Not retried: a second start supersedes the first, and the caller holds the first's id.
    return Call(
        "POST", job_path(job, "/uploads"), _model(models.UploadTicket), json=body, idempotent=False
    )


def commit_upload(upload_id: str) -> Call:
    return Call(
        "POST",
        f"/v1/uploads/{quote(upload_id, safe='')}/commit",
        _model(models.CommittedFile),
        idempotent=False,
    )


def upload_progress(upload_id: str) -> Call:
    return Call("GET", f"/v1/uploads/{quote(upload_id, safe='')}", _model(models.UploadProgress))


def abort_upload(upload_id: str) -> Call:
    return Call("DELETE", f"/v1/uploads/{quote(upload_id, safe='')}", _none)


def files(job: str) -> Call:
    return Call("GET", job_path(job, "/files"), _models(models.StoredFile))


def link(job: str, file_class: str, name: str = "") -> Call:
    return Call(
        "GET",
        job_path(job, f"/files/{quote(file_class, safe='')}"),
        _model(models.Link),
        params=[("name", name), ("link", "1")],
    )


def file_errors(job: str, file_class: str, name: str = "") -> Call:
    return Call(
        "GET",
        job_path(job, f"/files/{quote(file_class, safe='')}/errors"),
        _json,
        params=[("name", name)],
    )


# -- tags, attributes, records ------------------------------------------------------------------


def add_tags(job: str, tags: Sequence[tuple[str, str]]) -> Call:
    body = {"tags": [{"name": n, "value": v} for n, v in tags]}
    # Not retried: every call appends (a lost answer would record the tags twice).
    return Call("POST", job_path(job, "/tags"), _models(models.Tag), json=body, idempotent=False)


def tags(job: str) -> Call:
    return Call("GET", job_path(job, "/tags"), _models(models.Tag))


def attributes(job: str, names: Sequence[str] = ()) -> Call:
    return Call(
        "GET",
        job_path(job, "/attributes"),
        _model(models.Attributes),
        params=[("name", n) for n in names],
    )


def record(job: str) -> Call:
    return Call("GET", job_path(job, "/record"), lambda r: r.text)


def prov(job: str, accept: str = "application/json") -> Call:
    return Call("GET", job_path(job, "/prov"), lambda r: r.text, headers={"Accept": accept})


# -- batch queries ------------------------------------------------------------------------------


def batch_attributes(jobs: Sequence[str], names: Sequence[str]) -> Call:
    ids = list(jobs)
    body: dict[str, Any] = {"names": list(names)}
    if all("://" in j for j in ids):
        body["jobids"] = ids
    else:
        body["keys"] = [key_of(j) for j in ids]
    return Call("POST", "/v1/jobs/attributes", _model(models.BatchAttributes), json=body)


def query_page(
    where: Sequence[dict[str, Any]],
    select: Sequence[str] = (),
    *,
    latest: bool | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> Call:
    body: dict[str, Any] = {"where": list(where), "select": list(select)}
    body |= {
        k: v for k, v in (("latest", latest), ("limit", limit), ("after", after)) if v is not None
    }
    # A read: retrying it is safe.
    return Call("POST", "/v1/query", _model(models.QueryPage), json=body)


# -- feeds --------------------------------------------------------------------------------------


def subscribe(
    attributes: Sequence[str],
    conditions: Sequence[dict[str, Any]] = (),
    *,
    history: bool = True,
    continuous: bool = True,
    destination: str | None = None,
    ttl_seconds: int | None = None,
    notify_removed: bool = False,
) -> Call:
    body: dict[str, Any] = {
        "attributes": list(attributes),
        "conditions": list(conditions),
        "history": history,
        "continuous": continuous,
        "notify_removed": notify_removed,
    }
    if destination is not None:
        body["destination"] = destination
    if ttl_seconds is not None:
        body["ttl_seconds"] = ttl_seconds
    return Call("POST", "/v1/feeds", _model(models.Feed), json=body, idempotent=False)


def feeds() -> Call:
    return Call("GET", "/v1/feeds", _json)


def feed(feed_id: str) -> Call:
    return Call("GET", f"/v1/feeds/{quote(feed_id, safe='')}", _json)


def refresh_feed(feed_id: str) -> Call:
    return Call("POST", f"/v1/feeds/{quote(feed_id, safe='')}/refresh", _json)


def delete_feed(feed_id: str) -> Call:
    return Call("DELETE", f"/v1/feeds/{quote(feed_id, safe='')}", _none)


def changes(
    feed_id: str, since: str | None = None, limit: int | None = None, wait: float | None = None
) -> Call:
    params = [
        (k, str(v))
        for k, v in (("since", since), ("limit", limit), ("wait", wait))
        if v is not None
    ]
    return Call(
        "GET",
        f"/v1/feeds/{quote(feed_id, safe='')}/changes",
        _model(models.FeedChanges),
        params=params,
    )

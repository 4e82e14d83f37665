"""The web view's routes. Each calls the services as the REST routes do, under a route policy."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from jp_primary.api.deps import Caller, Services, base_url
from jp_primary.api.params import FileClass, FileName, JobKey
from jp_primary.api.policies import Anyone, AnyUser, AnyUserForJobRead, AnyUserForJobWrite
from jp_primary.api.provenance import crate_response, prov_response
from jp_primary.api.schemas import TagIn
from jp_primary.api.web import grouping, session
from jp_primary.api.web.render import page
from jp_primary.attributes.conditions import Condition
from jp_primary.attributes.names import LB_ATTRIBUTES, SYSTEM_REGTIME
from jp_primary.auth.authenticate import Credentials
from jp_primary.errors import InvalidInput, JPError, NotFound
from jp_primary.services.provenance import provdoc
from jp_primary.services.provenance.outcome import run_of
from jp_primary.services.query import Query as JobQuery
from jp_primary.services.tags import Tag
from jp_primary.text import (
    SUBJECT_MAX,
    AttributeNameText,
    SubjectText,
    ValueText,
    text_problem,
)

router = APIRouter(prefix="/ui", include_in_schema=False)


def _next(target: str | None) -> str:
    """Only a path of this web view (no open redirect to another site)."""
    if not target or text_problem(target, SUBJECT_MAX) is not None:
        return "/ui/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or "\\" in parts.path:
        return "/ui/"
    return parts.path


@router.get("/", dependencies=[Anyone])
async def home(request: Request) -> Response:
    """The start page: the sign-in state and the job search."""
    return page(request, "home.html")


@router.get("/sign-in", dependencies=[Anyone])
async def sign_in_form(
    request: Request,
    next: Annotated[SubjectText, Query(description="the page to return to")] = "/ui/",  # noqa: A002
) -> Response:
    """The sign-in form (a token; a certificate needs none)."""
    return page(request, "sign_in.html", next=_next(next))


@router.post("/sign-in", dependencies=[Anyone])
async def sign_in(request: Request, services: Services) -> Response:
    """Check the pasted token as any bearer token is checked, then keep it in the cookie."""
    fields = await session.form(request)
    token = "".join(fields.get("token", "").split())  # pasted tokens pick up line breaks
    target = _next(fields.get("next"))
    try:
        identity = services.authenticator.authenticate(Credentials(bearer=token or None))
    except JPError as exc:
        return page(request, "sign_in.html", 401, next=target, problem=exc.detail)
    if identity is None:
        return page(request, "sign_in.html", 401, next=target, problem="paste a token")
    response = RedirectResponse(target, 303)
    session.sign_in(request, response, token)
    return response


@router.post("/sign-out", dependencies=[Anyone])
async def sign_out(request: Request) -> Response:
    """Forget the kept token (a client certificate still identifies the browser)."""
    await session.form(request)
    response = RedirectResponse("/ui/", 303)
    session.sign_out(request, response)
    return response


SEARCH_OPERATORS = ("eq", "ne", "lt", "gt", "prefix", "exists")
SearchOperator = Literal["eq", "ne", "lt", "gt", "prefix", "exists"]
PAGE_SIZE = 25
SHOWN = (f"{LB_ATTRIBUTES}:status", SYSTEM_REGTIME)


@router.get("/search")
async def search(
    request: Request,
    services: Services,
    jobid: Annotated[SubjectText | None, Query()] = None,
    attr: Annotated[AttributeNameText | None, Query()] = None,
    op: SearchOperator = "eq",
    value: Annotated[ValueText | None, Query()] = None,
    after: Annotated[SubjectText | None, Query()] = None,
    caller: Caller = AnyUser,
) -> Response:
    """Find a job by its jobid, or list the jobs whose attribute satisfies a condition (all the
    jobs the caller may see without one), a page at a time (POST /v1/query underneath)."""
    if jobid and jobid.strip():
        try:
            found = await services.files.job_by_jobid(caller, jobid.strip())
        except NotFound:
            return page(request, "search.html", jobid=jobid, missing=True, **_form(attr, op, value))
        return RedirectResponse(f"/ui/jobs/{quote(found.job.key, safe='')}", 303)
    where = []
    if attr and attr.strip():
        given = None if op == "exists" else (value or "")
        where.append(Condition(attr.strip(), op, given))
    query = JobQuery(where, SHOWN, latest=True, limit=PAGE_SIZE, after=after or None)
    found_page = await services.query.query(caller, query)
    rows = [(job, {v.name: v.value for v in job.values}) for job in found_page.jobs]
    following = None
    if found_page.next:
        params = {k: v for k, v in _form(attr, op, value).items() if v}
        following = "/ui/search?" + urlencode(params | {"after": found_page.next})
    return page(
        request,
        "search.html",
        rows=rows,
        status_name=SHOWN[0],
        regtime_name=SHOWN[1],
        following=following,
        paged=bool(after),
        first="/ui/search?" + urlencode({k: v for k, v in _form(attr, op, value).items() if v}),
        operators=SEARCH_OPERATORS,
        **_form(attr, op, value),
    )


def _form(attr: str | None, op: str, value: str | None) -> dict[str, str]:
    return {"attr": attr or "", "op": op, "value": value or ""}


@router.get("/jobs/{key}")
async def job_page(
    key: JobKey, request: Request, services: Services, caller: Caller = AnyUserForJobRead
) -> Response:
    """A job's page: its status timeline, files, tags and attributes."""
    snapshot = await services.provenance.snapshot(caller, key)
    return page(
        request,
        "job.html",
        job=snapshot.job,
        files=snapshot.files,
        run=run_of(snapshot),
        groups=grouping.grouped(snapshot.values),
        tags=grouping.tags(snapshot.values),
    )


@router.post("/jobs/{key}/tags")
async def add_tag(
    key: JobKey, request: Request, services: Services, caller: Caller = AnyUserForJobWrite
) -> Response:
    """Record a tag from the job page's form, then show the page again."""
    fields = await session.form(request)
    try:
        tag = TagIn(name=fields.get("name", ""), value=fields.get("value", ""))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"the tag was not recorded: {problems}") from None
    await services.tags.record(caller, key, [Tag(tag.name, tag.value)])
    return RedirectResponse(f"/ui/jobs/{key}#tags", 303)


@router.get("/jobs/{key}/files/{file_class}")
async def download(
    key: JobKey,
    file_class: FileClass,
    services: Services,
    name: FileName = "",
    caller: Caller = AnyUserForJobRead,
) -> Response:
    """A stored file's bytes, as an attachment."""
    row = await services.files.find(caller, key, file_class, name)
    await services.files.ensure_present(row)
    filename = name or f"{key}.{row.file_class}"
    plain = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return StreamingResponse(
        services.files.read(row, 0, None),
        media_type=row.content_type or "application/octet-stream",
        headers={
            "Content-Length": str(row.size),
            "ETag": f'"{row.sha256}"',
            "Content-Disposition": f'attachment; filename="{plain}"; '
            f"filename*=UTF-8''{quote(filename, safe='')}",
        },
    )


@router.get("/jobs/{key}/prov")
async def job_prov(
    key: JobKey,
    request: Request,
    services: Services,
    format: Literal["json", "provn", "xml", "turtle"] = "json",  # noqa: A002
    caller: Caller = AnyUserForJobRead,
) -> Response:
    """The job's PROV document, as the API gives it, for the browser to save."""
    media, suffix = _PROV_FORMATS[format]
    fmt = next(f for f in provdoc.FORMATS if f.media_type == media)
    answer = await prov_response(services, caller, key, fmt, base_url(request, services))
    answer.headers["Content-Disposition"] = f'attachment; filename="{key}.{suffix}"'
    return answer


@router.get("/jobs/{key}/ro-crate")
async def job_crate(
    key: JobKey, request: Request, services: Services, caller: Caller = AnyUserForJobRead
) -> Response:
    """The job's Process Run Crate, as the API gives it, for the browser to save."""
    return await crate_response(services, caller, key, False, base_url(request, services))


_PROV_FORMATS = {  # ?format= → (media type, file name suffix)
    "json": ("application/json", "prov.json"),
    "provn": ("text/provenance-notation", "provn"),
    "xml": ("application/provenance+xml", "prov.xml"),
    "turtle": ("text/turtle", "ttl"),
}

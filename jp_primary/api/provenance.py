"""A job's provenance in standard formats: PROV (``/prov``) and a Process Run Crate
(``/ro-crate``), both derived from what is stored, read-only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from jp_primary.api.deps import Caller, Services, base_url
from jp_primary.api.errors import Responses, responses
from jp_primary.api.params import JobKey
from jp_primary.api.policies import AnyUserForJobRead
from jp_primary.auth.identity import Identity
from jp_primary.errors import NotAcceptable
from jp_primary.services.container import AppServices
from jp_primary.services.provenance import crate, provdoc

router = APIRouter(prefix="/v1/jobs/{key}", tags=["provenance"])

PROV: Responses = {
    200: {
        "content": {f.media_type: {} for f in provdoc.FORMATS},
        "description": "The job's provenance: PROV-JSON unless Accept asks for PROV-N, PROV-XML "
        "or PROV-O (Turtle or JSON-LD)",
    }
}
CRATE: Responses = {
    200: {
        "content": {"application/zip": {}},
        "description": "A Process Run Crate (RO-Crate zip), streamed",
    }
}


def _accepted(header: str | None) -> list[tuple[float, int, str]]:
    """The media ranges of ``Accept`` as (q, order, range), best first; none means any."""
    ranges = []
    for order, part in enumerate((header or "*/*").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranges.append((-q, order, media.lower()))
    return sorted(ranges)


def negotiate(header: str | None) -> provdoc.ProvFormat:
    for _q, _order, media in _accepted(header):
        for fmt in provdoc.FORMATS:
            kind, _, _sub = fmt.media_type.partition("/")
            if media in (fmt.media_type, "*/*", f"{kind}/*"):
                return fmt
    offered = ", ".join(f.media_type for f in provdoc.FORMATS)
    raise NotAcceptable(f"this resource is available as {offered}; ask for one of them in Accept")


async def prov_response(
    services: AppServices, caller: Identity, key: str, fmt: provdoc.ProvFormat, base: str
) -> Response:
    snapshot = await services.provenance.snapshot(caller, key)
    body = provdoc.serialize(provdoc.document(snapshot, base), fmt)
    return Response(body, media_type=fmt.media_type, headers={"Vary": "Accept"})


async def crate_response(
    services: AppServices, caller: Identity, key: str, links: bool, base: str
) -> Response:
    snapshot = await services.provenance.snapshot(caller, key)
    metadata, entries = crate.build(snapshot, base, links)
    for entry in entries:
        if entry.view is not None:
            await services.files.ensure_present(entry.view.file)
    body = crate.stream_zip(metadata, entries, services.provenance.read, datetime.now(UTC))
    name = f"{snapshot.job.key}.crate.zip"
    return StreamingResponse(
        body,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/prov", response_class=Response, responses=responses(401, 403, 404, 406, 422, extra=PROV)
)
async def get_prov(
    key: JobKey, request: Request, services: Services, caller: Caller = AnyUserForJobRead
) -> Response:
    """The job's provenance as W3C PROV (OGC API - Processes Part 4 ``/jobs/{id}/prov``)."""
    fmt = negotiate(request.headers.get("accept"))
    return await prov_response(services, caller, key, fmt, base_url(request, services))


@router.get(
    "/ro-crate", response_class=Response, responses=responses(401, 403, 404, 422, extra=CRATE)
)
async def get_ro_crate(
    key: JobKey,
    request: Request,
    services: Services,
    files: Literal["include", "links"] = "include",
    caller: Caller = AnyUserForJobRead,
) -> Response:
    """The job as a Process Run Crate zip: its stored files inside (or, with files=links,
    referenced by their download URLs), each with its sha256, and the run as a CreateAction."""
    links = files == "links"
    return await crate_response(services, caller, key, links, base_url(request, services))
